/**
 * `palisade control`: Palisade's istiod. Assembles the config source (a
 * watched directory), the registry, the compiler, the ADS server with its
 * debug API, and the CA's CSR service, and keeps them in step: an accepted
 * config change or a proxy (dis)connecting rebuilds the registry and triggers
 * a debounced push; each proxy's resources are compiled once per generation.
 */
import type { ExtensionProvider } from '../policy/index.js';
import type { Secret } from '../api/core/index.js';
import { PalisadeError } from '../errors/index.js';
import { isIP } from 'node:net';
import {
  controlPlaneSpiffeId,
  exportPrivateKeyPem,
  generateKeyPair,
  issueSvid,
  startCaServer,
  type CaServer,
  type LoadedCa,
} from '../identity/index.js';
import type { Logger } from '../logging/index.js';
import { DEFAULT_ROOT_NAMESPACE, type PathNormalization } from '../policy/index.js';
import {
  nodeWorkloadName,
  parseNodeId,
  structToObject,
  TYPE_URLS,
  type ResourceKind,
} from '../xds/index.js';
import { compileProxy, type MeshSettings, type ProxyResources } from './compiler/compile-proxy.js';
import { GATEWAY_LABELS, type ProxyNode, type ProxyType } from './compiler/proxy-node.js';
import { createConfigDirSource } from './config/config-dir-source.js';
import type { ConfigSource } from './config/config-source.js';
import { formatProblem } from './config/config-snapshot.js';
import {
  addDebugService,
  createDebugToken,
  writeDebugToken,
  type SyncStatusReply,
} from './debug/debug-service.js';
import {
  createControlMetrics,
  startMonitoringServer,
  type MonitoringServer,
} from './metrics/index.js';
import { startAdsServer, type AdsServer } from './discovery/ads-server.js';
import { buildRegistry, type InstanceView, type Registry } from './registry/service-registry.js';

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** The config source: a watched directory of YAML … */
  readonly configDir?: string;
  /** … or the Kubernetes API of this kubeconfig (informers); exactly one of the two. */
  readonly kubeconfig?: string;
  readonly ca: LoadedCa;
  readonly logger: Logger;
  /** xDS (and debug) listen address. */
  readonly host: string;
  readonly port: number;
  /** CA (CSR signing) HTTPS listen port on `host` (0 picks one). */
  readonly caPort: number;
  readonly rootNamespace?: string;
  readonly mesh?: Partial<MeshSettings>;
  /** meshConfig `trustDomainAliases` (the trust domain itself is the CA's). */
  readonly trustDomainAliases?: readonly string[];
  /** meshConfig `pathNormalization.normalization` of every HCM (default BASE, as Istio). */
  readonly pathNormalization?: PathNormalization;
  /** meshConfig `extensionProviders` (external authorizers of CUSTOM policies). */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** Quiet period of the config watch and of the push (default 100 ms, PILOT_DEBOUNCE_AFTER). */
  readonly debounceMs?: number;
  /** Longest delay after the first change of a steady stream (default 10 s, PILOT_DEBOUNCE_MAX). */
  readonly debounceMaxMs?: number;
  /**
   * Serve proxyless gRPC clients that carry no token (gRPC's xDS bootstrap has
   * no call credentials). They get routing config only — never secrets or an
   * identity — like Istio's plaintext xDS port. Off unless asked for.
   */
  readonly allowUnauthenticatedProxyless?: boolean;
  /**
   * Serve xDS (and the debug API) in plaintext. Off by default: the port
   * speaks TLS with a certificate from the mesh CA. For loopback tests and
   * proxyless gRPC clients whose xDS bootstrap has no TLS channel credentials.
   */
  readonly xdsPlaintext?: boolean;
  /**
   * Where to write the operator's debug token (0600), which the debug API
   * requires; a new random token at every start. Kept in memory only when
   * undefined (in-process callers read `debugToken`).
   */
  readonly debugTokenFile?: string;
  /**
   * Port of the monitoring endpoint (`GET /metrics`, istiod's :15014) on
   * `host`; 0 picks one. No endpoint when undefined.
   */
  readonly monitoringPort?: number;
}

/** A running control plane. */
export interface ControlPlane {
  readonly xdsPort: number;
  readonly caUrl: string;
  readonly config: ConfigSource;
  readonly ads: AdsServer<ProxyNode>;
  /** The operator's credential for the debug API (also in `debugTokenFile`). */
  readonly debugToken: string;
  /** `http://host:port/metrics` when `monitoringPort` was given. */
  readonly monitoringUrl?: string;
  /** The registry as of now (tests, debug). */
  registry(): Registry;
  close(): Promise<void>;
}

const PROXY_TYPES = new Set<ProxyType>(['sidecar', 'ingress', 'egress', 'proxyless']);

/**
 * A proxyless gRPC client: routing config only (no listeners of its own, no
 * secrets). Without a token its NAMESPACE and LABELS are taken as declared —
 * they choose routes (sourceLabels, Sidecar scope), never identity.
 */
function proxylessNode(
  id: string,
  ip: string,
  meta: Record<string, unknown>,
  claims: { namespace: string; serviceAccount: string } | undefined,
): ProxyNode {
  const labels: Record<string, string> = {};
  const declared = meta['LABELS'];
  if (typeof declared === 'object' && declared !== null)
    for (const [k, v] of Object.entries(declared)) if (typeof v === 'string') labels[k] = v;
  return {
    id,
    type: 'proxyless',
    ip,
    appAddress: '',
    namespace: claims?.namespace ?? (text(meta['NAMESPACE']) || 'default'),
    serviceAccount: claims?.serviceAccount ?? (text(meta['SERVICE_ACCOUNT']) || 'default'),
    labels,
    workload: undefined,
  };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function decodeSecretValue(secret: Secret, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain;
  const b64 = secret.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

/** Gateway credentials from TLS Secrets, as SDS secrets `kubernetes://<name>` (+ `-cacert`). */
function credentialsOf(config: ConfigSource): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const o of config.current.ofKind('Secret')) {
    const secret = o.resource as Secret;
    const cert = decodeSecretValue(secret, 'tls.crt');
    const key = decodeSecretValue(secret, 'tls.key');
    const ca = decodeSecretValue(secret, 'ca.crt');
    const name = `kubernetes://${secret.metadata.name}`;
    if (cert !== undefined && key !== undefined)
      out.set(name, {
        '@type': TYPE_URLS.secret,
        name,
        tls_certificate: {
          certificate_chain: { inline_string: cert },
          private_key: { inline_string: key },
        },
      });
    if (ca !== undefined)
      out.set(`${name}-cacert`, {
        '@type': TYPE_URLS.secret,
        name: `${name}-cacert`,
        validation_context: { trusted_ca: { inline_string: ca } },
      });
  }
  return out;
}

/** Lifetime of the xDS server certificate (re-issued at every start). */
const XDS_CERT_TTL_MS = 365 * 24 * 3600 * 1000;

/**
 * The xDS port's certificate, issued by the mesh CA: the control plane's
 * SPIFFE ID (what proxies check), plus DNS/IP SANs for the listen address so
 * ordinary TLS clients can verify it too.
 */
async function xdsServerCertificate(
  ca: LoadedCa,
  host: string,
): Promise<{ certChainPem: string; keyPem: string }> {
  const keys = await generateKeyPair(true);
  const unspecified = host === '0.0.0.0' || host === '::' || host === '';
  const ips = new Set(['127.0.0.1', '::1']);
  const dns = new Set(['localhost']);
  if (!unspecified) {
    if (isIP(host) === 0) dns.add(host);
    else ips.add(host);
  }
  const issued = await issueSvid(ca.signer, {
    spiffeId: controlPlaneSpiffeId(ca.trustDomain),
    publicKey: keys.publicKey,
    dnsNames: [...dns],
    ipAddresses: [...ips],
    ttlMs: XDS_CERT_TTL_MS,
  });
  return { certChainPem: issued.certChainPem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Starts the control plane; throws with every problem when the initial config is invalid. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { logger, ca } = options;
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const mesh: MeshSettings = {
    outboundTrafficPolicy: options.mesh?.outboundTrafficPolicy ?? 'ALLOW_ANY',
    ...(options.mesh?.numTrustedProxies === undefined
      ? {}
      : { numTrustedProxies: options.mesh.numTrustedProxies }),
  };
  const instances = new Map<string, InstanceView>();
  let generation = 0;
  let registry: Registry | undefined;
  let credentials = new Map<string, Record<string, unknown>>();
  const cache = new Map<string, { generation: number; resources: ProxyResources }>();
  let ads: AdsServer<ProxyNode> | undefined;

  const rebuild = (): void => {
    registry = buildRegistry(config.current, [...instances.values()]);
    credentials = credentialsOf(config);
    generation += 1;
    ads?.push();
  };
  const sourceOptions = {
    logger,
    onSnapshot: () => {
      if (registry !== undefined) rebuild();
    },
    ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
    ...(options.debounceMaxMs === undefined ? {} : { debounceMaxMs: options.debounceMaxMs }),
  };
  if ((options.configDir === undefined) === (options.kubeconfig === undefined))
    throw new PalisadeError('PAL_ERR_USAGE', 'give exactly one of --config-dir and --kubeconfig');
  const config: ConfigSource =
    options.kubeconfig === undefined
      ? createConfigDirSource({ dir: options.configDir ?? '', ...sourceOptions })
      : // Loaded on use: @kubernetes/client-node is large (seconds to import on a
        // busy machine), and every CLI command imports the control plane.
        await (
          await import('./config/api-source.js')
        ).openApiConfigSource({ kubeconfig: options.kubeconfig, ...sourceOptions });
  rebuild();

  const resourcesFor = (proxy: ProxyNode): ProxyResources => {
    // Keyed by type too: an unauthenticated proxyless client may claim any node id.
    const key = `${proxy.type}|${proxy.id}`;
    const hit = cache.get(key);
    if (hit?.generation === generation) return hit.resources;
    const resources = compileProxy(
      {
        snapshot: config.current,
        registry: registry ?? buildRegistry(config.current, []),
        trustDomain: ca.trustDomain,
        ...(options.trustDomainAliases === undefined
          ? {}
          : { trustDomainAliases: options.trustDomainAliases }),
        ...(options.pathNormalization === undefined
          ? {}
          : { pathNormalization: options.pathNormalization }),
        ...(options.extensionProviders === undefined
          ? {}
          : { extensionProviders: options.extensionProviders }),
        rootNamespace,
        mesh,
        trustBundlePem: ca.trustBundle.toPem(),
        credentials,
      },
      proxy,
    );
    cache.set(key, { generation, resources });
    return resources;
  };

  const authenticate = async (
    token: string | undefined,
    node: { id?: string; metadata?: unknown },
  ): Promise<ProxyNode> => {
    const id = node.id ?? '';
    const meta = structToObject(node.metadata);
    const { type: kind, ip } = parseNodeId(id);
    // Istio's proxyless gRPC bootstrap marks the node with GENERATOR=grpc.
    const type = (text(meta['PROXY_TYPE']) ||
      (text(meta['GENERATOR']) === 'grpc'
        ? 'proxyless'
        : kind === 'router'
          ? 'ingress'
          : 'sidecar')) as ProxyType;
    if (!PROXY_TYPES.has(type)) throw new Error(`unknown PROXY_TYPE ${JSON.stringify(type)}`);
    if (token === undefined) {
      if (type === 'proxyless' && options.allowUnauthenticatedProxyless === true)
        return proxylessNode(id, ip, meta, undefined);
      throw new Error(
        type === 'proxyless'
          ? 'missing bearer service-account token (gRPC clients that cannot send one need the control plane started with --allow-unauthenticated-proxyless)'
          : 'missing bearer service-account token',
      );
    }
    let claims;
    try {
      claims = await ca.tokens.verify(token);
    } catch (error) {
      throw new Error(
        `service-account token rejected: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    const namespace = text(meta['NAMESPACE']);
    const serviceAccount = text(meta['SERVICE_ACCOUNT']);
    if (namespace !== claims.namespace || serviceAccount !== claims.serviceAccount)
      throw new Error(
        `node ${id} claims ${namespace}/${serviceAccount} but the token is for ${claims.namespace}/${claims.serviceAccount}`,
      );
    if (type === 'proxyless') return proxylessNode(id, ip, meta, claims);
    if (ip === '') throw new Error(`node id ${JSON.stringify(id)} has no instance IP`);
    const appAddress = text(meta['APP_ADDRESS']) || '127.0.0.1';
    if (type !== 'sidecar') {
      if (namespace !== rootNamespace)
        throw new Error(
          `gateway proxies run in the root namespace ${rootNamespace}, not ${namespace}`,
        );
      return {
        id,
        type,
        ip,
        appAddress,
        namespace,
        serviceAccount,
        labels: GATEWAY_LABELS[type],
        workload: undefined,
      };
    }
    const workloadName = text(meta['WORKLOAD_NAME']);
    const workload = registry?.workloads.find(
      (w) => w.name === workloadName && w.namespace === namespace,
    );
    if (workload === undefined)
      throw new Error(`no Workload ${namespace}/${workloadName} in the config`);
    if (workload.serviceAccount !== serviceAccount)
      throw new Error(
        `Workload ${namespace}/${workloadName} runs as ${workload.serviceAccount}, not ${serviceAccount}`,
      );
    return {
      id,
      type,
      ip,
      appAddress,
      namespace,
      serviceAccount,
      labels: workload.labels,
      ...(text(meta['INTERCEPTION_MODE']) === 'REDIRECT'
        ? { interception: 'REDIRECT' as const }
        : {}),
      workload,
    };
  };

  // Gateways are instances too (no service ports): NetworkPolicy sees them as pods.
  const instanceOf = (proxy: ProxyNode): InstanceView | undefined =>
    proxy.type === 'proxyless'
      ? undefined
      : proxy.workload === undefined
        ? {
            id: proxy.id,
            address: proxy.ip,
            namespace: proxy.namespace,
            labels: proxy.labels,
            serviceAccount: proxy.serviceAccount,
            workload: `istio-${proxy.type}gateway`,
            portNames: {},
            healthy: true,
          }
        : {
            id: proxy.id,
            address: proxy.ip,
            namespace: proxy.namespace,
            labels: proxy.labels,
            serviceAccount: proxy.serviceAccount,
            workload: proxy.workload.name,
            portNames: Object.fromEntries(
              proxy.workload.ports
                .filter((p) => p.name !== undefined)
                .map((p) => [p.name ?? '', p.port]),
            ),
            healthy: true,
          };

  const debugToken = createDebugToken();
  if (options.debugTokenFile !== undefined)
    try {
      writeDebugToken(options.debugTokenFile, debugToken);
    } catch (error) {
      config.close();
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `cannot write the debug token to ${options.debugTokenFile}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  let caServer: CaServer | undefined;
  let monitoring: MonitoringServer | undefined;
  const metrics = createControlMetrics();
  try {
    caServer = await startCaServer({
      ca,
      host: options.host,
      port: options.caPort,
      onDecision: (d) => {
        metrics.record({
          type: 'csr',
          signed: d.code === undefined,
          ...(d.code === undefined ? {} : { error: d.code }),
        });
      },
    });
    ads = await startAdsServer<ProxyNode>({
      transport:
        options.xdsPlaintext === true ? 'plaintext' : await xdsServerCertificate(ca, options.host),
      host: options.host,
      port: options.port,
      logger,
      authenticate,
      resources: resourcesFor,
      onMetric: (event) => {
        metrics.record(event);
      },
      onConnect(proxy) {
        const instance = instanceOf(proxy);
        if (instance !== undefined) {
          instances.set(proxy.id, instance);
          rebuild();
        }
      },
      onDisconnect(proxy) {
        cache.delete(`${proxy.type}|${proxy.id}`);
        if (proxy.type !== 'proxyless' && instances.delete(proxy.id)) rebuild();
      },
      configure(server) {
        addDebugService(
          server,
          {
            syncStatus: (): SyncStatusReply => ({
              configVersion: config.current.version,
              configProblems: config.problems.map(formatProblem),
              proxies: (ads?.connected() ?? []).map((c) => {
                const current = resourcesFor(c.proxy);
                return {
                  id: c.id,
                  type: c.proxy.type,
                  namespace: c.proxy.namespace,
                  workload: c.proxy.workload?.name ?? c.proxy.type,
                  connectedAt: c.connectedAt.toISOString(),
                  current: Object.fromEntries(
                    (Object.keys(current) as ResourceKind[]).map((k) => [
                      k,
                      String(current[k].size),
                    ]),
                  ),
                  types: Object.fromEntries(
                    (Object.keys(c.sync) as ResourceKind[]).map((k) => [
                      k,
                      {
                        sent: c.sync[k].sentVersion ?? null,
                        acked: c.sync[k].ackedVersion ?? null,
                        nack: c.sync[k].nack?.message ?? null,
                        nackVersion: c.sync[k].nack?.version ?? null,
                      },
                    ]),
                  ),
                };
              }),
            }),
            proxyConfig: (id) => {
              const c = ads?.connected().find((p) => {
                const node = parseNodeId(p.id);
                return (
                  p.id === id || node.ip === id || node.id === id || nodeWorkloadName(node) === id
                );
              });
              if (c === undefined) return undefined;
              const redacted = Object.fromEntries(
                (Object.keys(c.sent) as ResourceKind[]).map((k) => [
                  k,
                  c.sent[k].map((r) =>
                    k === 'secret' && 'tls_certificate' in r
                      ? { ...r, tls_certificate: '[redacted]' }
                      : r,
                  ),
                ]),
              );
              return { id: c.id, resources: redacted };
            },
          },
          { token: debugToken },
        );
      },
      ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
      ...(options.debounceMaxMs === undefined ? {} : { debounceMaxMs: options.debounceMaxMs }),
    });
    if (options.monitoringPort !== undefined)
      monitoring = await startMonitoringServer({
        host: options.host,
        port: options.monitoringPort,
        metrics: () =>
          metrics.render((ads?.connected() ?? []).map((c) => ({ type: c.proxy.type }))),
      });
  } catch (error) {
    config.close();
    await caServer?.close();
    await ads?.close();
    throw new PalisadeError(
      'PAL_ERR_CONTROL_UNREACHABLE',
      `cannot listen on ${options.host}:${String(options.port)}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const server = ads;
  const caSrv = caServer;
  logger.info(
    {
      xds: `${options.host}:${String(server.port)}`,
      ca: caSrv.url,
      objects: config.current.objects.size,
    },
    'control plane ready',
  );
  return {
    xdsPort: server.port,
    caUrl: caSrv.url,
    config,
    ads: server,
    debugToken,
    ...(monitoring === undefined ? {} : { monitoringUrl: monitoring.url }),
    registry: () => registry ?? buildRegistry(config.current, []),
    async close() {
      config.close();
      await server.close();
      await caSrv.close();
      await monitoring?.close();
    },
  };
}
