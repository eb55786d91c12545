/**
 * `palisade up` runs a whole mesh locally (`palisade apply` and `palisade
 * delete`, in apply.ts, change a running one's config).
 */
import { existsSync, fstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifests } from '../../api/index.js';
import { readConfig } from '../../config/index.js';
import { PalisadeError } from '../../errors/index.js';
import { chooseIsolation, findOnPath, startMesh, type MeshInfo } from '../../runtime/index.js';
import {
  createMeshData,
  startDashboardServer,
  type DashboardServer,
} from '../../dashboard/index.js';
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

/**
 * Starts the dashboard (src/dashboard) in this process on 127.0.0.1:`port`,
 * or on a free port when that one is taken, and records its URL in mesh.json
 * (`dashboardUrl`) for `palisade dashboard`'s users and tests.
 */
async function startDashboard(
  info: MeshInfo,
  port: number,
): Promise<{ server: DashboardServer; close: () => Promise<void> }> {
  const data = createMeshData({ stateDir: info.stateDir });
  let server: DashboardServer;
  try {
    server = await startDashboardServer({ data, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) {
      data.close();
      throw error;
    }
    server = await startDashboardServer({ data, port: 0 });
  }
  const file = join(info.stateDir, 'mesh.json');
  const written = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, `${JSON.stringify({ ...written, dashboardUrl: server.url }, null, 2)}\n`);
  void data.scrape();
  return {
    server,
    close: async () => {
      data.close();
      await server.close();
    },
  };
}

function summary(info: MeshInfo, io: CliIO, mtls: string, dashboardUrl: string): void {
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
  io.stdout(`Dashboard: ${dashboardUrl}\n`);
  if (info.prometheusUrl !== undefined) io.stdout(`Prometheus: ${info.prometheusUrl}\n`);
  if (info.tracesUrl !== undefined) io.stdout(`Traces: ${info.tracesUrl}\n`);
  const pod = info.pods.find((p) => p.name === first?.name.replace(/-sidecar$/, ''));
  if (pod !== undefined)
    io.stdout(
      `Pods:    ${String(info.pods.length)} network namespaces, pod IPs in mesh.json   (palisade exec ${pod.name} -- ip -br addr)\n`,
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
                   [--admin-base-port 15100] [--dashboard-port 20001] [--timeout-ms 90000]
                   [--prometheus | --no-prometheus] [--tracing]
                   [--isolation auto|netns|loopback] [--pod-cidr 10.244.0.0/24]
                   [--service-cidr 10.96.0.0/16]
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
become ready; Ctrl-C stops every process. The dashboard (palisade dashboard)
runs on 127.0.0.1:--dashboard-port (a free port if that one is taken; 0: any)
and its URL is printed as "Dashboard: URL".

--prometheus (the default when a \`prometheus\` binary is on PATH) runs
Prometheus on 127.0.0.1:9090 (or the next free port) scraping every proxy
every 5 s, data in <state-dir>/prometheus; --no-prometheus leaves it out.
--tracing runs a trace receiver (OTLP/HTTP on 127.0.0.1:4318 or the next free
port) that keeps the last 1,000 traces, and makes every proxy trace every
request and export its spans there (GET <Traces URL>api/traces).

--isolation netns puts each replica and gateway in its own network namespace
(a pod) on a bridge, with a pod IP from --pod-cidr, proxy-init's capture rules
and the sidecar as UID 1337; Services get ClusterIPs from --service-cidr and
resolve by name in every pod; the control plane listens on the bridge's host
address. loopback is the layout above. auto (the default, or
$PALISADE_ISOLATION) picks netns when running as root and \`ip netns\` works.
The choice is printed first: "Isolation: network namespaces (reason)".


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
        'dashboard-port': { type: 'string' },
        'timeout-ms': { type: 'string' },
        prometheus: { type: 'boolean' },
        'no-prometheus': { type: 'boolean' },
        tracing: { type: 'boolean' },
        isolation: { type: 'string' },
        'pod-cidr': { type: 'string' },
        'service-cidr': { type: 'string' },
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
    if (values.prometheus === true && values['no-prometheus'] === true)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--prometheus and --no-prometheus exclude each other',
      );
    const prometheusBinary =
      values['no-prometheus'] === true ? undefined : findOnPath('prometheus', process.env['PATH']);
    if (values.prometheus === true && prometheusBinary === undefined)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--prometheus: no prometheus binary on PATH (apt-get install prometheus)',
      );
    const isolation = chooseIsolation(
      values.isolation ?? process.env['PALISADE_ISOLATION'] ?? 'auto',
    );
    io.stdout(
      `Isolation: ${isolation.mode === 'netns' ? 'network namespaces' : 'loopback'} (${isolation.reason})\n`,
    );
    // One handler for SIGINT/SIGTERM for the whole life of `up`, so no signal ever meets
    // Node's default action (death by signal, no teardown): while the mesh starts it exits
    // (the netns teardown runs from the process 'exit' handler); once the mesh runs it stops
    // it; a further signal while stopping is reported and otherwise ignored.
    let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
      io.stderr(`palisade up: ${signal} while starting: stopped\n`);
      process.exit(1);
    };
    const signalled = (signal: NodeJS.Signals): void => {
      onSignal(signal);
    };
    process.on('SIGINT', signalled);
    process.on('SIGTERM', signalled);
    const mesh = await startMesh({
      ...(prometheusBinary === undefined ? {} : { prometheus: { binary: prometheusBinary } }),
      tracing: values.tracing === true,
      isolation: isolation.mode,
      ...(values['pod-cidr'] === undefined ? {} : { podCidr: values['pod-cidr'] }),
      ...(values['service-cidr'] === undefined ? {} : { serviceCidr: values['service-cidr'] }),
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
    // A signal while the dashboard starts: stop right after it (below).
    let stopRequested = false;
    onSignal = () => {
      stopRequested = true;
    };
    const dashboardPort =
      values['dashboard-port'] === '0'
        ? 0
        : port(values['dashboard-port'], '--dashboard-port', 20001);
    let dashboard: Awaited<ReturnType<typeof startDashboard>>;
    try {
      dashboard = await startDashboard(mesh.info, dashboardPort);
    } catch (error) {
      await mesh.stop();
      throw error;
    }
    summary(mesh.info, io, meshMtls(mesh.info), dashboard.server.url);
    await new Promise<void>((resolveStop) => {
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        io.stderr('palisade up: stopping\n');
        void dashboard
          .close()
          .then(() => mesh.stop())
          .then(resolveStop);
      };
      onSignal = (signal) => {
        if (stopping) io.stderr(`palisade up: ${signal} while stopping: still stopping\n`);
        stop();
      };
      stopWhenParentGoes(stop);
      if (stopRequested) stop();
    });
    process.removeListener('SIGINT', signalled);
    process.removeListener('SIGTERM', signalled);
    // A stdin still being read keeps the event loop (and so this process) alive.
    process.stdin.destroy();
    return 0;
  },
};

/**
 * When standard input is a pipe (a test harness, a supervisor, `npm start` under another
 * program), its end means the process that started this mesh is gone: stop the mesh rather
 * than leave the control plane, sidecars and apps running on their fixed ports. A terminal,
 * /dev/null (`nohup`, background jobs) or a file never trigger it.
 */
function stopWhenParentGoes(stop: () => void): void {
  let stat;
  try {
    stat = fstatSync(0);
  } catch {
    return;
  }
  if (!stat.isFIFO() && !stat.isSocket()) return;
  let stopped = false;
  const once = (): void => {
    if (stopped) return;
    stopped = true;
    process.stdin.destroy();
    stop();
  };
  process.stdin.on('data', () => undefined);
  process.stdin.once('end', once);
  process.stdin.once('error', once);
  process.stdin.resume();
}
