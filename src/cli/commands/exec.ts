/**
 * `palisade exec NAME -- CMD [ARGS…]` runs a command inside a pod's network
 * namespace (`kubectl exec` for `palisade up --isolation netns`), with the
 * pod's /etc/hosts (cluster names of the mesh Services) and its capture
 * rules, so `curl http://reviews:9080/…` goes through the pod's sidecar.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import { findMeshState } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

interface PodEntry {
  readonly name: string;
  readonly netns?: string;
  readonly podIP?: string;
}

export const execCommand: Command = {
  path: ['exec'],
  summary: "Run a command in a workload replica's network namespace (like kubectl exec)",
  usage: `Usage: palisade exec [--state-dir DIR] NAME -- CMD [ARGS...]

Runs CMD inside the network namespace of the pod NAME of a mesh started with
\`palisade up --isolation netns\` (NAME as in mesh.json: productpage-v1-0, or
productpage-v1 for its first replica; istio-ingressgateway for the gateway),
with the pod's /etc/hosts, so Service names resolve to their virtual IPs and
the pod's capture rules send the traffic through its sidecar. CMD runs as
root on the host's file system; exits with CMD's exit status. Needs root.`,
  run: async (args, io) => {
    const dash = args.indexOf('--');
    if (dash === -1)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        'missing `--` before the command (palisade exec NAME -- CMD)',
      );
    const { values, positionals } = parseCommandArgs(args.slice(0, dash), {
      'state-dir': { type: 'string' },
    });
    const name = positionals[0];
    const command = args.slice(dash + 1);
    if (name === undefined || positionals.length > 1)
      throw new PalisadeError('PAL_ERR_USAGE', 'expected one pod NAME before `--`');
    if (command.length === 0) throw new PalisadeError('PAL_ERR_USAGE', 'missing CMD after `--`');
    const state = findMeshState(values['state-dir'], io.cwd);
    const info = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as {
      isolation?: string;
      pods?: PodEntry[];
    };
    const pods = info.pods ?? [];
    const pod = pods.find((p) => p.name === name) ?? pods.find((p) => p.name === `${name}-0`);
    if (info.isolation !== 'netns' || pod?.netns === undefined)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        info.isolation !== 'netns'
          ? `the mesh in ${state} runs on loopback (no pod namespaces): start it with palisade up --isolation netns`
          : `no pod ${name} in ${join(state, 'mesh.json')} (pods: ${pods.map((p) => p.name).join(', ')})`,
      );
    const child = spawn('ip', ['netns', 'exec', pod.netns, ...command], {
      stdio: ['inherit', 'pipe', 'pipe'],
      cwd: io.cwd,
    });
    child.stdout.on('data', (chunk: Buffer) => {
      io.stdout(chunk.toString());
    });
    child.stderr.on('data', (chunk: Buffer) => {
      io.stderr(chunk.toString());
    });
    return new Promise<number>((resolve) => {
      child.once('error', (err) => {
        io.stderr(`palisade exec: ${err.message}\n`);
        resolve(1);
      });
      child.once('close', (code, signal) => {
        resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
      });
    });
  },
};
