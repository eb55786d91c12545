/**
 * `palisade up` runs a whole mesh locally (`palisade apply` and `palisade
 * delete`, in apply.ts, change a running one's config).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifests } from '../../api/index.js';
import { readConfig } from '../../config/index.js';
import { PalisadeError } from '../../errors/index.js';
import { startMesh, type MeshInfo } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import { parseHostPort } from './control.js';
import type { CliIO, Command } from '../command.js';

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
  if (info.apiServer !== undefined)
    io.stdout(
      `API server: ${info.apiServer.url}   (kubectl --kubeconfig ${rel(info.apiServer.kubeconfig)} get virtualservices -A)\n`,
    );
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
                   [--apiserver [--apiserver-listen 127.0.0.1:6443]]

Reads every YAML file directly in MESHDIR (default: the current directory):
Kubernetes Services and ServiceAccounts, Palisade Workloads (the processes to
run), Istio networking and security resources. Each Workload replica runs on
its own loopback address (127.10.x.y for its sidecar, 127.11.x.y for the app)
with a sidecar; the ingress gateway listens on 127.12.0.1 (Gateway port 80 →
8080, 443 → 8443). TLS credentials named by Gateways and not in MESHDIR are
generated, with their CA in <state-dir>/ingress-ca.pem for curl --cacert.
State (config, CA, tokens, logs) goes to --state-dir (default
.palisade/<mesh name>). Exits non-zero with the reason if the mesh cannot
become ready; Ctrl-C stops every process.

--apiserver keeps the mesh's config in an API server instead of a directory:
palisade apiserver (embedded store in <state-dir>/apiserver, durable across
restarts) runs on --apiserver-listen, the mesh's objects are loaded into it
(server-side apply), the control plane watches it (palisade control
--kubeconfig) and the admin kubeconfig is written to <state-dir>/kubeconfig:
kubectl --kubeconfig <state-dir>/kubeconfig works, and palisade apply/delete
go through the API server, authenticated and authorized like kubectl.`,
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
        apiserver: { type: 'boolean' },
        'apiserver-listen': { type: 'string' },
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
      ...(values.apiserver === true
        ? {
            apiServer: parseHostPort(
              values['apiserver-listen'] ?? '127.0.0.1:6443',
              '--apiserver-listen',
            ),
          }
        : {}),
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
            `palisade up: ${event.name} restarted ${String(event.restarts)} times within ${String(event.windowMs / 1000)} s; back-off: next try in ${String(Math.round(event.delayMs / 1000))} s (see its log)\n`,
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
