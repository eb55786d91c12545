/**
 * `palisade up` runs a whole mesh locally; `palisade apply` and
 * `palisade delete` change a running one's config (validated first, rejected
 * whole on error), as kubectl does for a cluster.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { readManifests } from '../../api/index.js';
import { readConfig } from '../../config/index.js';
import {
  callDebug,
  formatProblem,
  validateManifests,
  type SyncStatusReply,
} from '../../control/index.js';
import { PalisadeError } from '../../errors/index.js';
import { findMeshState, objectFileName, startMesh, type MeshInfo } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { CliIO, Command } from '../command.js';
import { debugAccessAt } from './debug-access.js';

/** The compiled CLI entry that child processes run. */
const CLI_ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));

function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new PalisadeError('PAL_ERR_USAGE', `${flag}: ${value} is not a port`);
  return n;
}

function summary(info: MeshInfo, io: CliIO, mtls: string): void {
  const rel = (p: string): string => (p.startsWith(`${io.cwd}/`) ? p.slice(io.cwd.length + 1) : p);
  const sidecars = info.proxies.filter((p) => p.name.endsWith('-sidecar'));
  io.stdout(
    `Palisade mesh "${info.name}" is up: ${String(info.apps.length)} app instances, ${String(sidecars.length)} sidecars, ingress and egress gateways; mTLS ${mtls}.\n`,
  );
  for (const url of info.ingress.urls) {
    const https = url.startsWith('https:');
    io.stdout(
      `Ingress: ${url}/productpage${https && info.ingress.caFile !== undefined ? `   (curl --cacert ${rel(info.ingress.caFile)} ${url}/productpage)` : ''}\n`,
    );
  }
  const first = sidecars[0];
  if (first !== undefined)
    io.stdout(
      `Metrics: ${first.adminUrl}/stats/prometheus   (${first.name}; every proxy's admin URL is in ${rel(join(info.stateDir, 'mesh.json'))})\n`,
    );
  io.stdout(`Control: ${info.control}   (palisade proxy-status --control ${info.control})\n`);
  io.stdout(`Logs:    ${rel(join(info.stateDir, 'logs'))}/\n`);
  io.stdout(
    `Change it: palisade apply -f FILE   (e.g. ${rel(join(info.meshDir, 'samples'))}/virtual-service-all-v1.yaml)\n`,
  );
  io.stdout('Ctrl-C stops the mesh.\n');
}

/** The mesh-wide PeerAuthentication mode, for the summary. */
function meshMtls(info: MeshInfo): string {
  try {
    const manifests = readManifests([info.configDir]);
    for (const m of manifests) {
      const o = m.object as {
        kind?: string;
        metadata?: { namespace?: string };
        spec?: { selector?: unknown; mtls?: { mode?: string } };
      };
      if (
        o.kind === 'PeerAuthentication' &&
        o.metadata?.namespace === 'istio-system' &&
        o.spec?.selector === undefined
      )
        return `${o.spec?.mtls?.mode ?? 'PERMISSIVE'} mesh-wide`;
    }
  } catch {
    return 'PERMISSIVE (default)';
  }
  return 'PERMISSIVE (default)';
}

export const upCommand: Command = {
  path: ['up'],
  summary: 'Run a whole mesh locally: control plane, apps with sidecars, gateways',
  usage: `Usage: palisade up [-f MESHDIR] [--state-dir DIR] [--control-port 15010] [--ca-port 15012]
                   [--admin-base-port 15100] [--timeout-ms 90000]

Reads every YAML file directly in MESHDIR (default: the current directory):
Kubernetes Services and ServiceAccounts, Palisade Workloads (the processes to
run), Istio networking and security resources. Each Workload replica runs on
its own loopback address (127.10.x.y for its sidecar, 127.11.x.y for the app)
with a sidecar; the ingress gateway listens on 127.12.0.1 (Gateway port 80 →
8080, 443 → 8443). TLS credentials named by Gateways and not in MESHDIR are
generated, with their CA in <state-dir>/ingress-ca.pem for curl --cacert.
State (config, CA, tokens, logs) goes to --state-dir (default
.palisade/<mesh name>). Exits non-zero with the reason if the mesh cannot
become ready; Ctrl-C stops every process.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        file: { type: 'string', short: 'f' },
        'state-dir': { type: 'string' },
        'control-port': { type: 'string' },
        'ca-port': { type: 'string' },
        'admin-base-port': { type: 'string' },
        'timeout-ms': { type: 'string' },
      },
      false,
    );
    const meshDir = resolve(io.cwd, values.file ?? '.');
    if (!existsSync(meshDir))
      throw new PalisadeError('PAL_ERR_FILE_READ', `${meshDir}: no such directory`);
    const name =
      meshDir
        .split('/')
        .filter((s) => s !== '')
        .at(-1) ?? 'mesh';
    const stateDir = resolve(io.cwd, values['state-dir'] ?? join('.palisade', name));
    const config = readConfig();
    const mesh = await startMesh({
      meshDir,
      stateDir,
      cli: CLI_ENTRY,
      controlPort: port(values['control-port'], '--control-port', 15010),
      caPort: port(values['ca-port'], '--ca-port', 15012),
      adminBasePort: port(values['admin-base-port'], '--admin-base-port', 15100),
      readyTimeoutMs: Number(values['timeout-ms'] ?? 90_000),
      logLevel: config.logLevel,
      onProgress: (line) => {
        io.stderr(`palisade up: ${line}\n`);
      },
      onEvent: (event) => {
        if (event.type === 'restarting')
          io.stderr(
            `palisade up: ${event.name} exited; restarting in ${String(event.delayMs)} ms\n`,
          );
        if (event.type === 'failed')
          io.stderr(
            `palisade up: ${event.name} failed ${String(event.restarts)} times; not restarting (see its log)\n`,
          );
      },
    });
    summary(mesh.info, io, meshMtls(mesh.info));
    await new Promise<void>((resolveStop) => {
      const stop = (): void => {
        io.stderr('palisade up: stopping\n');
        void mesh.stop().then(resolveStop);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};

async function configVersion(info: MeshInfo): Promise<SyncStatusReply | undefined> {
  try {
    const access = debugAccessAt(info.stateDir, info.stateDir, false);
    return await callDebug<SyncStatusReply>(info.control, 'SyncStatus', {}, access, 2000);
  } catch {
    return undefined;
  }
}

/** True when every connected proxy has ACKed what it was last sent. */
function allSynced(status: SyncStatusReply): boolean {
  return status.proxies.every((p) =>
    Object.values(p.types).every((t) => t.sent === null || (t.acked === t.sent && t.nack === null)),
  );
}

/**
 * Waits (bounded, 10 s) until the control plane has taken a change — its
 * config version moved or it reported problems — and then until every proxy
 * has ACKed the resulting push, so traffic right after `apply` sees the change.
 */
async function awaitAccepted(
  info: MeshInfo,
  before: number | undefined,
): Promise<SyncStatusReply | undefined> {
  const deadline = Date.now() + 10_000;
  let status: SyncStatusReply | undefined;
  for (;;) {
    status = await configVersion(info);
    if (status !== undefined && status.configProblems.length > 0) return status;
    if (status !== undefined && (before === undefined || status.configVersion > before)) break;
    if (Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  // The push is debounced (~100 ms); then every proxy must ACK it.
  await new Promise((r) => setTimeout(r, 300));
  for (;;) {
    status = await configVersion(info);
    if (status === undefined || allSynced(status) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function loadTarget(args: readonly string[], io: CliIO): { info: MeshInfo; files: string[] } {
  const { values } = parseCommandArgs(
    args,
    { file: { type: 'string', short: 'f', multiple: true }, 'state-dir': { type: 'string' } },
    false,
  );
  const files = (values.file ?? []).map((f) => resolve(io.cwd, f));
  if (files.length === 0) throw new PalisadeError('PAL_ERR_USAGE', 'missing -f FILE|DIR');
  const state = findMeshState(values['state-dir'], io.cwd);
  const info = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as MeshInfo;
  return { info, files };
}

export const applyCommand: Command = {
  path: ['apply'],
  summary: 'Apply resources to the running local mesh (validated first; rejected whole on error)',
  usage: `Usage: palisade apply -f FILE|DIR [-f ...] [--state-dir DIR]

Validates every object in the files; if any is invalid nothing is applied and
every problem is printed with its file, object and field. Otherwise each object
is created or replaced in the running mesh's config (found under .palisade/,
or --state-dir) and the command waits until the control plane has taken it.`,
  run: async (args, io) => {
    const { info, files } = loadTarget(args, io);
    const result = validateManifests(readManifests(files));
    if (!result.ok)
      throw new PalisadeError(
        'PAL_ERR_VALIDATION',
        `nothing applied:\n  ${result.problems.map(formatProblem).join('\n  ')}`,
      );
    const before = (await configVersion(info))?.configVersion;
    const staged: { tmp: string; final: string; line: string }[] = [];
    for (const o of result.objects) {
      const final = join(info.configDir, objectFileName(o.kind, o.namespace, o.name));
      const text = stringify(o.resource);
      const existing = existsSync(final) ? readFileSync(final, 'utf8') : undefined;
      const what = `${o.kind} ${o.namespace === '' ? '' : `${o.namespace}/`}${o.name}`;
      if (existing === text) {
        io.stdout(`${what} unchanged\n`);
        continue;
      }
      const tmp = `${final}.tmp`;
      writeFileSync(tmp, text, { mode: 0o600 });
      staged.push({
        tmp,
        final,
        line: `${what} ${existing === undefined ? 'created' : 'configured'}`,
      });
    }
    for (const s of staged) renameSync(s.tmp, s.final);
    for (const s of staged) io.stdout(`${s.line}\n`);
    if (staged.length === 0) return 0;
    const after = await awaitAccepted(info, before);
    if (after !== undefined && after.configProblems.length > 0) {
      io.stderr(`the control plane rejected the change:\n  ${after.configProblems.join('\n  ')}\n`);
      return 1;
    }
    return 0;
  },
};

export const deleteCommand: Command = {
  path: ['delete'],
  summary: 'Delete resources from the running local mesh',
  usage: `Usage: palisade delete -f FILE|DIR [-f ...] [--state-dir DIR]

Removes every object named in the files from the running mesh's config.
An object that is not there is reported (exit 1); the others are still deleted.`,
  run: async (args, io) => {
    const { info, files } = loadTarget(args, io);
    const result = validateManifests(readManifests(files));
    if (!result.ok)
      throw new PalisadeError(
        'PAL_ERR_VALIDATION',
        `nothing deleted:\n  ${result.problems.map(formatProblem).join('\n  ')}`,
      );
    const before = (await configVersion(info))?.configVersion;
    let missing = 0;
    let deleted = 0;
    for (const o of result.objects) {
      const final = join(info.configDir, objectFileName(o.kind, o.namespace, o.name));
      const what = `${o.kind} ${o.namespace === '' ? '' : `${o.namespace}/`}${o.name}`;
      if (!existsSync(final)) {
        io.stderr(`${what} not found\n`);
        missing += 1;
        continue;
      }
      rmSync(final);
      deleted += 1;
      io.stdout(`${what} deleted\n`);
    }
    if (deleted > 0) await awaitAccepted(info, before);
    return missing > 0 ? 1 : 0;
  },
};
