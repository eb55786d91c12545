/**
 * `palisade check netpol` — would a connection between two pods be allowed
 * by the cluster's NetworkPolicies, and which policies decided; or the whole
 * pod-to-pod reachability matrix for one port (`--matrix`), in the shape of
 * the Kubernetes netpol e2e truth tables.
 */
import { isIP } from 'node:net';
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  clusterObjectsFrom,
  createNetworkPolicyEngine,
  type DirectionVerdict,
  podKey,
  type Protocol,
} from '../../kubernetes/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade check netpol -f CLUSTER_FILE_OR_DIR --from NS/POD|IP --to NS/POD --port PORT [--protocol TCP] [-o json]
  palisade check netpol -f CLUSTER_FILE_OR_DIR --matrix --port PORT [--protocol TCP] -o json

The cluster files hold Namespaces (labels), Pods (labels, status.podIP,
container ports with names), NetworkPolicies (networking.k8s.io/v1) and
AdminNetworkPolicies / BaselineAdminNetworkPolicies
(policy.networking.k8s.io/v1alpha1); any other kind is named in a warning.
A connection is allowed when the source's egress and the destination's
ingress both allow it. Each direction goes through the tiers
AdminNetworkPolicy (by priority; Allow, Deny or Pass) -> NetworkPolicy (a
pod selected by one is isolated) -> BaselineAdminNetworkPolicy -> allowed.
A pod's traffic to itself is always allowed, and the output says so.
Exit 0 when allowed, 1 when denied (always 0 for --matrix).

Options:
  -f, --filename PATH   cluster manifests (file or directory; repeatable)
      --from NS/POD|IP  the client pod, or an address (a pod's, or one outside
                        the cluster: matched only by ipBlock / networks)
      --to NS/POD       the server pod
      --port PORT       destination port (1-65535)
      --protocol P      TCP (default), UDP or SCTP
      --matrix          every pod to every pod: {"pods": [...], "matrix": [[...]]}
  -o, --output FORMAT   text (default) or json
`;

function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--port must be a number from 1 to 65535, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}

function parseProtocol(text: string | undefined): Protocol {
  const p = (text ?? 'TCP').toUpperCase();
  if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP') {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--protocol must be TCP, UDP or SCTP, not ${JSON.stringify(text)}`,
    );
  }
  return p;
}

function describe(label: string, v: DirectionVerdict): string {
  return `  ${label}: ${v.allowed ? 'allowed' : 'denied'} — ${v.reason}\n`;
}

export const checkNetpolCommand: Command = {
  path: ['check', 'netpol'],
  summary: 'Check pod-to-pod reachability under Kubernetes NetworkPolicies',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values } = parseCommandArgs(
        args,
        {
          filename: { type: 'string', short: 'f', multiple: true },
          from: { type: 'string' },
          to: { type: 'string' },
          port: { type: 'string' },
          protocol: { type: 'string' },
          matrix: { type: 'boolean' },
          output: { type: 'string', short: 'o' },
        },
        false,
      );
      const files = values.filename ?? [];
      if (files.length === 0)
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      const output = values.output ?? 'text';
      if (output !== 'text' && output !== 'json') {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--output must be text or json, not ${JSON.stringify(output)}`,
        );
      }
      const port = parsePort(requireOption(values.port, '--port'));
      const protocol = parseProtocol(values.protocol);
      const objects = clusterObjectsFrom(readManifests(files), { validatePods: false });
      for (const what of objects.ignored)
        io.stderr(`warning: ${what} ignored: check netpol does not implement this kind\n`);
      const engine = createNetworkPolicyEngine(objects);

      if (values.matrix === true) {
        const m = engine.matrix(port, protocol);
        if (output === 'json') {
          io.stdout(`${JSON.stringify({ pods: m.pods, matrix: m.matrix })}\n`);
        } else {
          const width = Math.max(4, ...m.pods.map((p) => p.length));
          io.stdout(`${''.padEnd(width)} ${m.pods.map((p) => p.padEnd(width)).join(' ')}\n`);
          m.matrix.forEach((row, i) => {
            io.stdout(
              `${(m.pods[i] ?? '').padEnd(width)} ${row.map((b) => (b ? '.' : 'X').padEnd(width)).join(' ')}\n`,
            );
          });
        }
        return 0;
      }

      const fromKey = requireOption(values.from, '--from');
      const toKey = requireOption(values.to, '--to');
      // --from may be an address: a pod's (the pod then) or one outside the cluster.
      const from =
        isIP(fromKey) === 0
          ? engine.pod(fromKey)
          : (objects.pods.find((p) => p.ip === fromKey) ?? {
              namespace: '',
              name: fromKey,
              labels: {},
              ip: fromKey,
              ports: [],
              external: true,
            });
      const to = engine.pod(toKey);
      for (const [key, pod] of [
        [fromKey, from],
        [toKey, to],
      ] as const) {
        if (pod === undefined) {
          throw new PalisadeError(
            'PAL_ERR_K8S_POD_NOT_FOUND',
            `pod ${JSON.stringify(key)} is not in ${files.join(', ')} (expected NS/POD)`,
          );
        }
      }
      if (from === undefined || to === undefined) return 2;
      const v = engine.evaluate({ from, to, port, protocol });
      const fromName = podKey(from);
      if (output === 'json') {
        io.stdout(
          `${JSON.stringify(
            {
              allowed: v.allowed,
              ...(v.loopback === true
                ? { loopback: true, reason: 'traffic from a pod to itself is always allowed' }
                : {}),
              from: fromName,
              to: toKey,
              port,
              protocol,
              egress: v.egress,
              ingress: v.ingress,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        io.stdout(
          `${v.allowed ? 'allowed' : 'denied'}: ${fromName} -> ${toKey} ${protocol}/${String(port)}${
            v.loopback === true ? ' (loopback: a pod may always connect to itself)' : ''
          }\n`,
        );
        io.stdout(describe(`egress of ${fromName}`, v.egress));
        io.stdout(describe(`ingress of ${toKey}`, v.ingress));
      }
      return v.allowed ? 0 : 1;
    }),
};
