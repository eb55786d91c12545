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
import { formatNodeId } from '../xds/index.js';
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
import { freeLoopbackPort, prometheusProcess, startMeshTracing } from './observability.js';
import { createPods, POD_ADMIN_PORT, type MeshPods, type Pod } from './netns/index.js';

/** Loopback mode: Node apps get a global fetch that honours HTTP_PROXY (see the preload's comment). */
const HTTP_PROXY_PRELOAD = new URL('./preload/http-proxy.js', import.meta.url).href;

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
  /** Run Prometheus (this binary) scraping every proxy (observability.ts). */
  readonly prometheus?: { readonly binary: string } | undefined;
  /** Run the trace receiver and make every proxy export spans to it. */
  readonly tracing?: boolean | undefined;
  /** `netns`: each replica and gateway in its own network namespace (see src/runtime/netns). Default loopback. */
  readonly isolation?: 'netns' | 'loopback';
  /** netns mode: the pod CIDR (default 10.244.0.0/24; its first address is the host's on the bridge). */
  readonly podCidr?: string;
  /** netns mode: the service CIDR ClusterIPs come from (default 10.96.0.0/16). */
  readonly serviceCidr?: string;
  /**
   * Run an API server (`palisade apiserver`, embedded store in
   * `<state>/apiserver`) on this address in front of the control plane, which
   * then reads its config from it (`--kubeconfig`) instead of `<state>/config`.
   */
  readonly apiServer?: { readonly host: string; readonly port: number };
}

/** netns mode: a pod as mesh.json lists it. */
export interface MeshPod {
  readonly name: string;
  readonly netns: string;
  readonly podIP: string;
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
  readonly apps: readonly {
    readonly name: string;
    readonly address: string;
    readonly netns?: string;
    readonly podIP?: string;
  }[];
  readonly isolation: 'netns' | 'loopback';
  /** netns mode: the service CIDR ClusterIPs come from (`apply` allocates new Services' there). */
  readonly serviceCidr?: string;
  /** netns mode: every pod (replicas and gateways) with its namespace and address. */
  readonly pods: readonly MeshPod[];
  /** Prometheus UI/API, with `--prometheus`. */
  readonly prometheusUrl?: string;
  /** The trace receiver (`/api/traces`), with `--tracing`. */
  readonly tracesUrl?: string;
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
    // Host: localhost — the admin endpoint answers only loopback Host headers; in netns mode it is
    // reached at the pod IP through a DNAT to the pod's 127.0.0.1 (src/runtime/netns/pods.ts).
    const req = httpGet(url, { timeout: 2000, headers: { host: 'localhost' } }, (res) => {
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
  ingressIp = INGRESS_IP,
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
      ips: [ingressIp, '127.0.0.1'],
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
  const cleanup: { pods?: MeshPods } = {};
  try {
    return await startMeshWith(options, cleanup);
  } catch (error) {
    // netns mode: nothing of a mesh that did not start stays behind.
    cleanup.pods?.teardown();
    throw error;
  }
}

async function startMeshWith(
  options: MeshOptions,
  cleanup: { pods?: MeshPods },
): Promise<RunningMesh> {
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
  // netns mode: the bridge, service VIPs (spec.clusterIP in configDir) and the gateway pods first.
  const netns =
    options.isolation === 'netns'
      ? createPods({
          stateDir,
          configDir,
          podCidr: options.podCidr ?? '10.244.0.0/24',
          serviceCidr: options.serviceCidr ?? '10.96.0.0/16',
          services: snapshot.ofKind('Service').map((o) => ({
            namespace: o.namespace,
            name: o.name,
            clusterIP: (o.resource as { spec?: { clusterIP?: string } }).spec?.clusterIP,
          })),
          fileOf: (namespace, name) => objectFileName('Service', namespace, name),
        })
      : undefined;
  if (netns !== undefined) cleanup.pods = netns;
  const pods: MeshPod[] = [];
  const addPod = (name: string, namespace: string, capture: boolean): Pod | undefined => {
    const pod = netns?.add(name, namespace, capture);
    if (pod !== undefined) pods.push({ name, netns: pod.netns, podIP: pod.podIP });
    return pod;
  };
  const ingressPod = addPod('istio-ingressgateway', ROOT_NAMESPACE, false);
  const egressPod = addPod('istio-egressgateway', ROOT_NAMESPACE, false);
  const ingressIp = ingressPod?.podIP ?? INGRESS_IP;
  const ingressCa = await generateCredentials(snapshot, configDir, stateDir, ingressIp);

  const controlPort = options.controlPort ?? 15010;
  const caPort = options.caPort ?? 15012;
  const adminBase = options.adminBasePort ?? 15100;
  // netns mode: pods reach the control plane on the host's bridge address.
  const controlHost = netns?.network.hostIp ?? '127.0.0.1';
  await assertPortFree(controlHost, controlPort, 'the control plane (xDS)');
  await assertPortFree(controlHost, caPort, 'the control plane (CA)');
  // istiod's monitoring port 15014 next to the default xDS port, else the next free one.
  const monitoringPort = await freeLoopbackPort(
    controlPort + 4,
    'the control plane (metrics)',
    controlHost,
  );
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
  const tracing =
    options.tracing === true ? await startMeshTracing(netns?.network.hostIp) : undefined;
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
  const control = `${controlHost}:${String(controlPort)}`;
  const caUrl = `https://${controlHost}:${String(caPort)}`;
  const rootCert = join(caDir, CA_FILES.rootCert);
  const proxies: MeshProxy[] = [];
  const apps: { name: string; address: string; netns?: string; podIP?: string }[] = [];
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
        `${controlHost}:${String(caPort)}`,
        '--monitoring-port',
        String(monitoringPort),
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
    pod?: Pod | undefined;
    capture?: boolean;
  }): Promise<void> => {
    // Admin ports are internal: skip ones something else holds (bounded search).
    for (let tries = 0; p.pod === undefined; tries += 1) {
      try {
        await assertPortFree('127.0.0.1', adminPort, `${p.name} (admin)`);
        break;
      } catch (error) {
        if (tries >= 100) throw error;
        adminPort += 1;
      }
    }
    if (p.pod === undefined) await assertPortFree(p.ip, 15001, `${p.name} (outbound)`);
    const pod = p.pod;
    const token = await tokenFile(p.namespace, p.serviceAccount);
    const proxyArgs = [
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
      pod === undefined ? token : (netns?.shareWithProxy(token) ?? token),
      '--ca-url',
      caUrl,
      '--ca-root-cert',
      pod === undefined ? rootCert : (netns?.shareWithProxy(rootCert) ?? rootCert),
      '--trust-domain',
      ca.trustDomain,
      '--admin-port',
      String(pod === undefined ? adminPort : POD_ADMIN_PORT),
      // Capture (n19b's contract): the proxy announces INTERCEPTION_MODE=REDIRECT and gets virtual listeners.
      ...(p.capture === true ? ['--interception', 'redirect'] : []),
      ...(tracing?.proxyArgs ?? []),
    ];
    // netns mode: the proxy runs in its pod as UID/GID 1337, which the capture rules exempt.
    const run =
      pod === undefined ? { command: node, args: proxyArgs } : netns?.proxy(pod, node, proxyArgs);
    specs.push({
      name: p.name,
      command: run?.command ?? node,
      args: run?.args ?? proxyArgs,
      env: baseEnv,
      cwd: stateDir,
    });
    proxies.push({
      name: p.name,
      nodeId: p.nodeId,
      ip: p.ip,
      adminUrl:
        pod === undefined
          ? `http://127.0.0.1:${String(adminPort)}`
          : `http://${pod.podIP}:${String(POD_ADMIN_PORT)}`,
    });
    if (pod === undefined) adminPort += 1;
  };

  for (const w of workloads) {
    const namespace = w.metadata.namespace ?? 'default';
    const serviceAccount = w.spec.serviceAccount ?? 'default';
    for (const instance of placed.filter((p) => p.workload === `${w.metadata.name}.${namespace}`)) {
      const name = `${w.metadata.name}-${String(instance.replica)}`;
      // netns mode: a pod with capture; the app listens on all its addresses, the sidecar is transparent.
      const pod = addPod(name, namespace, true);
      const instanceIp = pod?.podIP ?? instance.address;
      const appIp =
        pod === undefined ? instance.address.replace(/^127\.10\./, '127.11.') : '127.0.0.1';
      for (const port of pod === undefined ? w.spec.ports : []) {
        await assertPortFree(instance.address, port.port, `${name} (sidecar inbound)`);
        await assertPortFree(appIp, port.port, `${name} (app)`);
      }
      const env: Record<string, string> =
        pod === undefined
          ? {
              ...baseEnv,
              HOST: appIp,
              PORT: String(w.spec.ports[0]?.port ?? 8080),
              HTTP_PROXY: `http://${instance.address}:15001`,
              http_proxy: `http://${instance.address}:15001`,
              NO_PROXY: '',
              // Node's fetch ignores HTTP_PROXY: the preload makes it honour it, as curl does.
              NODE_OPTIONS: `--import=${HTTP_PROXY_PRELOAD}`,
              POD_NAME: name,
              POD_NAMESPACE: namespace,
            }
          : {
              ...baseEnv,
              HOST: '0.0.0.0',
              PORT: String(w.spec.ports[0]?.port ?? 8080),
              POD_NAME: name,
              POD_NAMESPACE: namespace,
              POD_IP: pod.podIP,
            };
      for (const e of w.spec.env ?? []) env[e.name] = e.value;
      const command = w.spec.command === 'node' ? node : w.spec.command;
      const run =
        pod === undefined
          ? { command, args: [...(w.spec.args ?? [])] }
          : (netns?.app(pod, command, w.spec.args ?? []) ?? { command, args: [] });
      specs.push({ name, command: run.command, args: run.args, env, cwd: meshDir });
      apps.push({
        name,
        address: `${pod?.podIP ?? appIp}:${String(w.spec.ports[0]?.port ?? 0)}`,
        ...(pod === undefined ? {} : { netns: pod.netns, podIP: pod.podIP }),
      });
      await proxySpec({
        name: `${name}-sidecar`,
        nodeId: formatNodeId({ ip: instanceIp, name, namespace }),
        ip: instanceIp,
        namespace,
        serviceAccount,
        metadata: {
          LABELS: w.spec.labels ?? {},
          WORKLOAD_NAME: w.metadata.name,
          APP_ADDRESS: appIp,
          PROXY_TYPE: 'sidecar',
          INSTANCE_IPS: instanceIp,
          ...(pod === undefined ? {} : { INTERCEPTION_MODE: 'REDIRECT' }),
        },
        pod,
        capture: pod !== undefined,
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
  if (ingressPod === undefined)
    for (const p of ingressPorts) await assertPortFree(INGRESS_IP, p.port, 'the ingress gateway');
  await proxySpec({
    name: 'istio-ingressgateway',
    nodeId: `router~${ingressIp}~istio-ingressgateway-0.${ROOT_NAMESPACE}~${ROOT_NAMESPACE}.svc.cluster.local`,
    ip: ingressIp,
    namespace: ROOT_NAMESPACE,
    serviceAccount: 'istio-ingressgateway-service-account',
    metadata: {
      PROXY_TYPE: 'ingress',
      // As Istio's gateway Deployments: peers report it by workload and app.
      WORKLOAD_NAME: 'istio-ingressgateway',
      LABELS: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
    },
    pod: ingressPod,
  });
  // The egress gateway always runs (as in Istio's demo profile): Gateways selecting it may be applied later.
  await proxySpec({
    name: 'istio-egressgateway',
    nodeId: `router~${egressPod?.podIP ?? EGRESS_IP}~istio-egressgateway-0.${ROOT_NAMESPACE}~${ROOT_NAMESPACE}.svc.cluster.local`,
    ip: egressPod?.podIP ?? EGRESS_IP,
    namespace: ROOT_NAMESPACE,
    serviceAccount: 'istio-egressgateway-service-account',
    metadata: {
      PROXY_TYPE: 'egress',
      // As Istio's gateway Deployments: peers report it by workload and app.
      WORKLOAD_NAME: 'istio-egressgateway',
      LABELS: { app: 'istio-egressgateway', istio: 'egressgateway' },
    },
    pod: egressPod,
  });

  const prometheus =
    options.prometheus === undefined
      ? undefined
      : await prometheusProcess({
          binary: options.prometheus.binary,
          stateDir,
          proxies,
          control: `${controlHost}:${String(monitoringPort)}`,
        });
  if (prometheus !== undefined) specs.push(prometheus.spec);
  const supervisor = createSupervisor({
    logDir: join(stateDir, 'logs'),
    onEvent: (event) => {
      // netns mode: a later `up` kills the control plane of this one if it dies by SIGKILL.
      if (event.type === 'started' && event.name === 'control')
        netns?.network.recordHostPid(event.pid);
      options.onEvent?.(event);
    },
  });
  const info: MeshInfo = {
    name: basename(meshDir),
    meshDir,
    stateDir,
    configDir,
    control,
    caUrl,
    ingress: {
      ip: ingressIp,
      urls: ingressPorts.map((p) => `${p.tls ? 'https' : 'http'}://${ingressIp}:${String(p.port)}`),
      caFile: ingressCa,
    },
    proxies,
    apps,
    ...(prometheus === undefined ? {} : { prometheusUrl: prometheus.url }),
    ...(tracing === undefined ? {} : { tracesUrl: `${tracing.receiver.url}/` }),
    isolation: netns === undefined ? 'loopback' : 'netns',
    ...(netns === undefined ? {} : { serviceCidr: options.serviceCidr ?? '10.96.0.0/16' }),
    pods,
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
    await waitUntil('the control plane', () => tcpReady(controlHost, controlPort));
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
      // netns mode: a connection from the host would be captured by the sidecar; look at the pod's sockets.
      await waitUntil(`app ${a.name}`, () =>
        netns === undefined
          ? tcpReady(host ?? '', Number(port))
          : Promise.resolve(netns.listening(supervisor.pids().get(a.name) ?? 0, Number(port))),
      );
    }
    for (const p of ingressPorts)
      await waitUntil(`the ingress gateway on port ${String(p.port)}`, () =>
        tcpReady(ingressIp, p.port),
      );
    if (prometheus !== undefined) {
      const url = new URL(prometheus.url);
      await waitUntil('Prometheus', () => tcpReady(url.hostname, Number(url.port)));
    }
  } catch (error) {
    await supervisor.stop();
    await tracing?.receiver.close();
    throw error;
  }
  return {
    info,
    supervisor,
    async stop() {
      await supervisor.stop();
      netns?.teardown();
      await tracing?.receiver.close();
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
