/**
 * `palisade up`: a whole mesh on one machine. Reads a mesh directory (every
 * YAML file directly in it), validates it as one unit, and runs:
 * - the control plane (`palisade control`) on a config directory in the state
 *   directory, with the mesh CA;
 * - per Workload replica: the app (command/args/env, listening on its own
 *   loopback address) and a sidecar (`palisade proxy`) on the instance address,
 *   with `HTTP_PROXY` pointing the app at the sidecar's outbound listener;
 * - the ingress gateway (and the egress gateway when a Gateway selects it).
 * Processes are supervised (restart with backoff, logs per process); the
 * call resolves once every sidecar has its certificate and config and the
 * ingress answers, or rejects with the reason and stops everything.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { readManifests } from '../api/index.js';
import type { Gateway } from '../api/networking/index.js';
import type { Workload } from '../api/palisade/index.js';
import {
  createSnapshot,
  formatProblem,
  gatewayBindPort,
  validateManifests,
  type ConfigSnapshot,
} from '../control/index.js';
import { PalisadeError } from '../errors/index.js';
import {
  CA_FILES,
  createTlsCa,
  initCaDirectory,
  issueServerCertificate,
  loadCaDirectory,
} from '../identity/index.js';
import { allocateAddresses, assertPortFree } from './address-allocation.js';
import type { MeshApiInfo } from './mesh-api.js';
import { loadMeshIntoApiServer } from './mesh-apiserver.js';
import { objectFileName } from './object-file-name.js';
import { createSupervisor, type Supervisor, type SupervisorEvent } from './supervisor.js';

/** Options of {@link startMesh}. */
export interface MeshOptions {
  readonly meshDir: string;
  readonly stateDir: string;
  /** The `palisade` CLI entry (a JS file run with `node`). */
  readonly cli: string;
  readonly controlPort?: number;
  readonly caPort?: number;
  /** First admin port; proxies get consecutive ports from here (127.0.0.1). */
  readonly adminBasePort?: number;
  readonly readyTimeoutMs?: number;
  readonly logLevel?: string;
  readonly onEvent?: (event: SupervisorEvent) => void;
  /** Progress lines for the user. */
  readonly onProgress?: (line: string) => void;
  /**
   * Run an API server (`palisade apiserver`, embedded store in
   * `<state>/apiserver`) on this address in front of the control plane, which
   * then reads its config from it (`--kubeconfig`) instead of `<state>/config`.
   */
  readonly apiServer?: { readonly host: string; readonly port: number };
}

/** One running proxy, for the summary and tests. */
export interface MeshProxy {
  readonly name: string;
  readonly nodeId: string;
  readonly ip: string;
  readonly adminUrl: string;
}

/** What `palisade up` writes to `<state>/mesh.json` and returns. */
export interface MeshInfo {
  readonly name: string;
  readonly meshDir: string;
  readonly stateDir: string;
  readonly configDir: string;
  readonly control: string;
  readonly caUrl: string;
  readonly ingress: {
    readonly ip: string;
    readonly urls: readonly string[];
    readonly caFile: string | undefined;
  };
  readonly proxies: readonly MeshProxy[];
  readonly apps: readonly { readonly name: string; readonly address: string }[];
  /** With `up --apiserver`: the API server the mesh's config lives in (apply/delete go there). */
  readonly apiServer?: MeshApiInfo;
}

/** A running mesh. */
export interface RunningMesh {
  readonly info: MeshInfo;
  readonly supervisor: Supervisor;
  stop(): Promise<void>;
}

const INGRESS_IP = '127.12.0.1';
const EGRESS_IP = '127.12.0.2';
const ROOT_NAMESPACE = 'istio-system';

export { objectFileName } from './object-file-name.js';

/** Reads and validates the YAML files directly in `meshDir` (not subdirectories). */
export function readMeshDir(meshDir: string): ConfigSnapshot {
  const manifests = readManifests([meshDir]).filter((m) => dirname(m.file) === resolve(meshDir));
  if (manifests.length === 0)
    throw new PalisadeError('PAL_ERR_FILE_READ', `${meshDir}: no YAML manifests found`);
  const result = validateManifests(manifests);
  if (!result.ok)
    throw new PalisadeError(
      'PAL_ERR_VALIDATION',
      `the mesh in ${meshDir} is invalid; nothing was started:\n  ${result.problems.map(formatProblem).join('\n  ')}`,
    );
  return createSnapshot(1, result.objects);
}

/** Writes every object of `snapshot` to `configDir`, one file each (replacing what was there). */
export function writeConfigDir(configDir: string, snapshot: ConfigSnapshot): void {
  rmSync(configDir, { recursive: true, force: true });
  mkdirSync(configDir, { recursive: true });
  for (const o of snapshot.objects.values()) {
    const file = join(configDir, objectFileName(o.kind, o.namespace, o.name));
    writeFileSync(file, stringify(o.resource), { mode: 0o600 });
  }
}

function tcpReady(host: string, port: number): Promise<boolean> {
  return new Promise((resolveReady) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolveReady(true);
    });
    socket.once('error', () => {
      resolveReady(false);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolveReady(false);
    });
  });
}

function httpJson(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet) => {
    const req = httpGet(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        resolveGet({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', () => {
      resolveGet({ status: 0, body: '' });
    });
    req.on('timeout', () => {
      req.destroy();
    });
  });
}

/** Ingress credentials Gateways name that the mesh does not provide: generated, with a CA for curl. */
async function generateCredentials(
  snapshot: ConfigSnapshot,
  configDir: string,
  stateDir: string,
): Promise<string | undefined> {
  const present = new Set(snapshot.ofKind('Secret').map((o) => o.name));
  const wanted = new Map<string, Set<string>>();
  for (const o of snapshot.ofKind('Gateway')) {
    const gateway = o.resource as Gateway;
    for (const server of gateway.spec.servers) {
      const credential = server.tls?.credentialName;
      if (credential === undefined || present.has(credential)) continue;
      const hosts = wanted.get(credential) ?? new Set<string>();
      for (const h of server.hosts) {
        const host = h.includes('/') ? (h.split('/')[1] ?? h) : h;
        if (host !== '*' && !host.startsWith('*')) hosts.add(host);
      }
      wanted.set(credential, hosts);
    }
  }
  if (wanted.size === 0) return undefined;
  const caFile = join(stateDir, 'ingress-ca.pem');
  const ca = await createTlsCa('Palisade local ingress CA');
  writeFileSync(caFile, ca.certPem);
  for (const [credential, hosts] of wanted) {
    const leaf = await issueServerCertificate(ca, {
      dnsNames: ['localhost', ...hosts],
      ips: [INGRESS_IP, '127.0.0.1'],
    });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: credential, namespace: ROOT_NAMESPACE },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem },
    };
    const file = join(configDir, objectFileName('Secret', ROOT_NAMESPACE, credential));
    writeFileSync(file, stringify(secret), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return caFile;
}

/** Starts the mesh; resolves when it is ready, rejects (after stopping everything) when it cannot become ready. */
export async function startMesh(options: MeshOptions): Promise<RunningMesh> {
  const meshDir = resolve(options.meshDir);
  const stateDir = resolve(options.stateDir);
  const progress = options.onProgress ?? (() => undefined);
  const snapshot = readMeshDir(meshDir);
  const workloads = snapshot.ofKind('Workload').map((o) => o.resource as Workload);
  mkdirSync(stateDir, { recursive: true });
  const configDir = join(stateDir, 'config');
  writeConfigDir(configDir, snapshot);
  const caDir = join(stateDir, 'ca');
  if (!existsSync(join(caDir, CA_FILES.rootCert))) await initCaDirectory(caDir);
  const ca = await loadCaDirectory(caDir);
  const ingressCa = await generateCredentials(snapshot, configDir, stateDir);

  const controlPort = options.controlPort ?? 15010;
  const caPort = options.caPort ?? 15012;
  const adminBase = options.adminBasePort ?? 15100;
  await assertPortFree('127.0.0.1', controlPort, 'the control plane (xDS)');
  await assertPortFree('127.0.0.1', caPort, 'the control plane (CA)');
  const apiListen = options.apiServer;
  if (apiListen !== undefined)
    await assertPortFree(apiListen.host, apiListen.port, 'the API server');
  const apiDataDir = join(stateDir, 'apiserver');
  const kubeconfigFile = join(stateDir, 'kubeconfig');

  const placed = allocateAddresses(
    workloads.map((w) => ({
      name: `${w.metadata.name}.${w.metadata.namespace ?? 'default'}`,
      replicas: w.spec.replicas ?? 1,
    })),
  );
  const tokensDir = join(stateDir, 'tokens');
  mkdirSync(tokensDir, { recursive: true });
  const tokenFile = async (namespace: string, serviceAccount: string): Promise<string> => {
    const file = join(tokensDir, `${namespace}.${serviceAccount}.jwt`);
    writeFileSync(
      file,
      await ca.tokens.mint({ namespace, serviceAccount, ttlMs: 30 * 24 * 3600 * 1000 }),
      { mode: 0o600 },
    );
    return file;
  };

  const baseEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? stateDir,
    PALISADE_LOG_LEVEL: options.logLevel ?? 'info',
  };
  const node = process.execPath;
  const control = `127.0.0.1:${String(controlPort)}`;
  const caUrl = `https://127.0.0.1:${String(caPort)}`;
  const rootCert = join(caDir, CA_FILES.rootCert);
  const proxies: MeshProxy[] = [];
  const apps: { name: string; address: string }[] = [];
  const specs: Parameters<Supervisor['start']>[0][] = [
    {
      name: 'control',
      command: node,
      args: [
        options.cli,
        'control',
        ...(apiListen === undefined
          ? ['--config-dir', configDir]
          : ['--kubeconfig', kubeconfigFile]),
        '--listen',
        control,
        '--ca-dir',
        caDir,
        '--ca-listen',
        `127.0.0.1:${String(caPort)}`,
      ],
      env: baseEnv,
      cwd: stateDir,
    },
  ];
  let adminPort = adminBase;
  const proxySpec = async (p: {
    name: string;
    nodeId: string;
    ip: string;
    namespace: string;
    serviceAccount: string;
    metadata: Record<string, unknown>;
  }): Promise<void> => {
    // Admin ports are internal: skip ones something else holds (bounded search).
    for (let tries = 0; ; tries += 1) {
      try {
        await assertPortFree('127.0.0.1', adminPort, `${p.name} (admin)`);
        break;
      } catch (error) {
        if (tries >= 100) throw error;
        adminPort += 1;
      }
    }
    await assertPortFree(p.ip, 15001, `${p.name} (outbound)`);
    const token = await tokenFile(p.namespace, p.serviceAccount);
    specs.push({
      name: p.name,
      command: node,
      args: [
        options.cli,
        'proxy',
        '--xds',
        control,
        '--node-id',
        p.nodeId,
        '--metadata',
        JSON.stringify({
          NAMESPACE: p.namespace,
          SERVICE_ACCOUNT: p.serviceAccount,
          ...p.metadata,
        }),
        '--token-file',
        token,
        '--ca-url',
        caUrl,
        '--ca-root-cert',
        rootCert,
        '--trust-domain',
        ca.trustDomain,
        '--admin-port',
        String(adminPort),
      ],
      env: baseEnv,
      cwd: stateDir,
    });
    proxies.push({
      name: p.name,
      nodeId: p.nodeId,
      ip: p.ip,
      adminUrl: `http://127.0.0.1:${String(adminPort)}`,
    });
    adminPort += 1;
  };

  for (const w of workloads) {
    const namespace = w.metadata.namespace ?? 'default';
    const serviceAccount = w.spec.serviceAccount ?? 'default';
    for (const instance of placed.filter((p) => p.workload === `${w.metadata.name}.${namespace}`)) {
      const name = `${w.metadata.name}-${String(instance.replica)}`;
      const appIp = instance.address.replace(/^127\.10\./, '127.11.');
      for (const port of w.spec.ports) {
        await assertPortFree(instance.address, port.port, `${name} (sidecar inbound)`);
        await assertPortFree(appIp, port.port, `${name} (app)`);
      }
      const env: Record<string, string> = {
        ...baseEnv,
        HOST: appIp,
        PORT: String(w.spec.ports[0]?.port ?? 8080),
        HTTP_PROXY: `http://${instance.address}:15001`,
        http_proxy: `http://${instance.address}:15001`,
        NO_PROXY: '',
        POD_NAME: name,
        POD_NAMESPACE: namespace,
      };
      for (const e of w.spec.env ?? []) env[e.name] = e.value;
      specs.push({
        name,
        command: w.spec.command === 'node' ? node : w.spec.command,
        args: w.spec.args ?? [],
        env,
        cwd: meshDir,
      });
      apps.push({ name, address: `${appIp}:${String(w.spec.ports[0]?.port ?? 0)}` });
      await proxySpec({
        name: `${name}-sidecar`,
        nodeId: `sidecar~${instance.address}~${name}.${namespace}~${namespace}.svc.cluster.local`,
        ip: instance.address,
        namespace,
        serviceAccount,
        metadata: {
          LABELS: w.spec.labels ?? {},
          WORKLOAD_NAME: w.metadata.name,
          APP_ADDRESS: appIp,
          PROXY_TYPE: 'sidecar',
          INSTANCE_IPS: instance.address,
        },
      });
    }
  }

  const gateways = snapshot.ofKind('Gateway').map((o) => o.resource as Gateway);
  const ingressPorts = gateways
    .filter((g) => g.spec.selector?.['istio'] === 'ingressgateway')
    .flatMap((g) =>
      g.spec.servers.map((s) => ({
        port: gatewayBindPort(s.port.number),
        tls: s.tls !== undefined,
      })),
    );
  for (const p of ingressPorts) await assertPortFree(INGRESS_IP, p.port, 'the ingress gateway');
  await proxySpec({
    name: 'istio-ingressgateway',
    nodeId: `router~${INGRESS_IP}~istio-ingressgateway-0.${ROOT_NAMESPACE}~${ROOT_NAMESPACE}.svc.cluster.local`,
    ip: INGRESS_IP,
    namespace: ROOT_NAMESPACE,
    serviceAccount: 'istio-ingressgateway-service-account',
    metadata: { PROXY_TYPE: 'ingress' },
  });
  // The egress gateway always runs (as in Istio's demo profile): Gateways selecting it may be applied later.
  await proxySpec({
    name: 'istio-egressgateway',
    nodeId: `router~${EGRESS_IP}~istio-egressgateway-0.${ROOT_NAMESPACE}~${ROOT_NAMESPACE}.svc.cluster.local`,
    ip: EGRESS_IP,
    namespace: ROOT_NAMESPACE,
    serviceAccount: 'istio-egressgateway-service-account',
    metadata: { PROXY_TYPE: 'egress' },
  });

  const supervisor = createSupervisor({
    logDir: join(stateDir, 'logs'),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  const info: MeshInfo = {
    name: basename(meshDir),
    meshDir,
    stateDir,
    configDir,
    control,
    caUrl,
    ingress: {
      ip: INGRESS_IP,
      urls: ingressPorts.map(
        (p) => `${p.tls ? 'https' : 'http'}://${INGRESS_IP}:${String(p.port)}`,
      ),
      caFile: ingressCa,
    },
    proxies,
    apps,
    ...(apiListen === undefined
      ? {}
      : {
          apiServer: {
            url: `https://${apiListen.host.includes(':') ? `[${apiListen.host}]` : apiListen.host}:${String(apiListen.port)}`,
            kubeconfig: kubeconfigFile,
          },
        }),
  };
  writeFileSync(join(stateDir, 'mesh.json'), `${JSON.stringify(info, null, 2)}\n`);

  const [first, ...rest] = specs;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  if (apiListen !== undefined) {
    supervisor.start({
      name: 'apiserver',
      command: node,
      args: [
        options.cli,
        'apiserver',
        '--data-dir',
        apiDataDir,
        '--listen',
        `${apiListen.host}:${String(apiListen.port)}`,
      ],
      env: baseEnv,
      cwd: stateDir,
    });
    progress(`API server on ${info.apiServer?.url ?? ''}`);
    try {
      // What the control plane would read from <state>/config (mesh dir plus generated credentials).
      const loaded = validateManifests(readManifests([configDir]));
      if (!loaded.ok)
        throw new PalisadeError(
          'PAL_ERR_VALIDATION',
          loaded.problems.map(formatProblem).join('\n  '),
        );
      await loadMeshIntoApiServer({
        dataDir: apiDataDir,
        stateDir,
        snapshot: createSnapshot(1, loaded.objects),
        deadline,
        failed: () => supervisor.failed(),
      });
    } catch (error) {
      await supervisor.stop();
      throw error;
    }
  }
  if (first !== undefined) supervisor.start(first);
  const waitUntil = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    while (!(await check())) {
      const failed = supervisor.failed();
      if (failed.length > 0)
        throw new PalisadeError(
          'PAL_ERR_RUNTIME_NOT_READY',
          `${failed.join(', ')} kept crashing; see ${join(stateDir, 'logs')}`,
        );
      if (Date.now() > deadline)
        throw new PalisadeError(
          'PAL_ERR_RUNTIME_NOT_READY',
          `${what} did not become ready within ${String(options.readyTimeoutMs ?? 60_000)} ms; see ${join(stateDir, 'logs')}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    progress(`control plane on ${control}`);
    await waitUntil('the control plane', () => tcpReady('127.0.0.1', controlPort));
    for (const spec of rest) supervisor.start(spec);
    progress(`${String(apps.length)} app instances and ${String(proxies.length)} proxies starting`);
    for (const p of proxies)
      await waitUntil(`proxy ${p.name}`, async () => {
        const ready = await httpJson(`${p.adminUrl}/ready`);
        if (ready.status !== 200) return false;
        const certs = await httpJson(`${p.adminUrl}/certs`);
        return certs.status === 200 && certs.body.includes('"serial_number"');
      });
    for (const a of apps) {
      const [host, port] = a.address.split(':');
      await waitUntil(`app ${a.name}`, () => tcpReady(host ?? '', Number(port)));
    }
    for (const p of ingressPorts)
      await waitUntil(`the ingress gateway on port ${String(p.port)}`, () =>
        tcpReady(INGRESS_IP, p.port),
      );
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  return {
    info,
    supervisor,
    async stop() {
      await supervisor.stop();
    },
  };
}

/** The state of a running mesh, found from `--state-dir` or the only mesh under `.palisade/`. */
export function findMeshState(stateDir: string | undefined, cwd: string): string {
  if (stateDir !== undefined) return resolve(cwd, stateDir);
  const root = resolve(cwd, '.palisade');
  const candidates = existsSync(root)
    ? readdirSync(root).filter((d) => existsSync(join(root, d, 'mesh.json')))
    : [];
  if (candidates.length === 1 && candidates[0] !== undefined) return join(root, candidates[0]);
  throw new PalisadeError(
    'PAL_ERR_USAGE',
    candidates.length === 0
      ? `no mesh is running (no mesh.json under ${root}): start it with npm start (palisade up -f examples/bookinfo), or pass --state-dir`
      : `several meshes under ${root} (${candidates.join(', ')}): pass --state-dir`,
  );
}
