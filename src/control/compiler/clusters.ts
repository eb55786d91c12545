/**
 * Clusters and endpoints for one proxy: `outbound|port|subset|host` per
 * service port and DestinationRule subset, with the DestinationRule's traffic
 * policy (load balancing, connection pool → circuit breakers, outlier
 * detection, TLS) translated as Istio does; `inbound|port||` clusters to the
 * local app; PassthroughCluster / BlackHoleCluster.
 *
 * TLS: Istio's auto mTLS — with no DestinationRule TLS setting, traffic to a
 * service whose workloads have sidecars uses ISTIO_MUTUAL; `DISABLE` turns it
 * off. ISTIO_MUTUAL clusters verify the server's SPIFFE ID against the
 * service accounts of the workloads behind the service (secure naming).
 */
import { workloadSpiffeId } from '../../identity/index.js';
import type { ExtensionProvider } from '../../policy/index.js';
import type { DestinationRule } from '../../api/networking/index.js';
import type { PathNormalization } from '../../policy/index.js';
import {
  EXTENSION_TYPE_URLS,
  objectToStruct,
  TYPE_URLS,
  type CircuitBreakerThresholds,
  type Cluster,
  type ClusterLoadAssignment,
  type LbPolicy,
  type OutlierDetection,
  type TransportSocket,
} from '../../xds/index.js';
import type { ConfigSnapshot } from '../config/config-snapshot.js';
import type {
  EndpointView,
  PortProtocol,
  Registry,
  ServicePortView,
  ServiceView,
} from '../registry/service-registry.js';
import {
  durationOf,
  inboundClusterName,
  outboundClusterName,
  SECRET_DEFAULT,
  SECRET_ROOTCA,
  sdsSecret,
} from './envoy-values.js';
import type { ProxyNode } from './proxy-node.js';

type DrSpec = DestinationRule['spec'];
type TrafficPolicy = NonNullable<DrSpec['trafficPolicy']>;
type CoreTrafficPolicy = Omit<TrafficPolicy, 'portLevelSettings'>;

/** Context shared by the cluster and route builders. */
export interface CompileContext {
  readonly snapshot: ConfigSnapshot;
  readonly registry: Registry;
  readonly trustDomain: string;
  /** meshConfig `trustDomainAliases`: policy principals also match under these. */
  readonly trustDomainAliases?: readonly string[];
  readonly rootNamespace: string;
  /** meshConfig `pathNormalization.normalization` (Istio's default: BASE) for every HCM. */
  readonly pathNormalization?: PathNormalization;
  /** meshConfig `extensionProviders`: the external authorizers CUSTOM policies name. */
  readonly extensionProviders?: readonly ExtensionProvider[];
}

/** The DestinationRule for `host` as seen from `fromNamespace` (Istio: own ns, then host's ns, then root). */
export function destinationRuleFor(
  context: CompileContext,
  service: ServiceView,
  fromNamespace: string,
): DestinationRule | undefined {
  const candidates: DestinationRule[] = [];
  for (const o of context.snapshot.ofKind('DestinationRule')) {
    const dr = o.resource as DestinationRule;
    const ns = dr.metadata.namespace ?? 'default';
    const resolved = context.registry.resolveHost(dr.spec.host, ns);
    if (resolved?.hostname === service.hostname || dr.spec.host === service.hostname)
      candidates.push(dr);
  }
  const rank = (dr: DestinationRule): number => {
    const ns = dr.metadata.namespace ?? 'default';
    if (ns === fromNamespace) return 0;
    if (ns === service.namespace) return 1;
    if (ns === context.rootNamespace) return 2;
    return 3;
  };
  return candidates.sort((a, b) => rank(a) - rank(b))[0];
}

/** The effective policy for a port and subset: subset > port level > top level (Istio merges by field). */
function effectivePolicy(
  dr: DestinationRule | undefined,
  port: number,
  subset: string,
): CoreTrafficPolicy {
  if (dr === undefined) return {};
  const layers: (CoreTrafficPolicy | undefined)[] = [];
  const top = dr.spec.trafficPolicy;
  layers.push(top);
  layers.push(top?.portLevelSettings?.find((p) => p.port?.number === port));
  const sub = dr.spec.subsets?.find((s) => s.name === subset)?.trafficPolicy;
  layers.push(sub);
  layers.push(sub?.portLevelSettings?.find((p) => p.port?.number === port));
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const [k, v] of Object.entries(layer))
      if (k !== 'portLevelSettings' && k !== 'port') out[k] = v;
  }
  return out;
}

/** A workload's SPIFFE ID through identity's one builder (`spiffe://<td>/ns/<ns>/sa/<sa>`). */
function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return workloadSpiffeId({ trustDomain, namespace, serviceAccount });
}

/** SPIFFE IDs allowed to serve a service (secure naming). */
export function serviceIdentities(context: CompileContext, service: ServiceView): string[] {
  const accounts = new Set<string>();
  for (const w of context.registry.workloadsOf(service))
    accounts.add(spiffeIdOf(context.trustDomain, w.namespace, w.serviceAccount));
  for (const instance of context.registry.instances)
    if (instance.namespace === service.namespace && service.selector !== undefined) {
      const match = Object.entries(service.selector).every(([k, v]) => instance.labels[k] === v);
      if (match)
        accounts.add(spiffeIdOf(context.trustDomain, instance.namespace, instance.serviceAccount));
    }
  return [...accounts].sort();
}

function istioMutualSocket(sni: string, identities: readonly string[]): TransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.upstreamTls,
      sni,
      common_tls_context: {
        alpn_protocols: ['istio-peer-exchange', 'istio', 'http/1.1'],
        tls_certificate_sds_secret_configs: [sdsSecret(SECRET_DEFAULT)],
        combined_validation_context: {
          default_validation_context: {
            match_subject_alt_names: identities.map((id) => ({ exact: id })),
          },
          validation_context_sds_secret_config: sdsSecret(SECRET_ROOTCA),
        },
      },
    },
  };
}

function userTlsSocket(tls: NonNullable<CoreTrafficPolicy['tls']>, host: string): TransportSocket {
  const validation: Record<string, unknown> = {};
  if (tls.caCertificates !== undefined) validation['trusted_ca'] = { filename: tls.caCertificates };
  if (tls.subjectAltNames !== undefined)
    validation['match_subject_alt_names'] = tls.subjectAltNames.map((s) => ({ exact: s }));
  const common: Record<string, unknown> = {};
  if (Object.keys(validation).length > 0) common['validation_context'] = validation;
  if (tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined && tls.privateKey !== undefined)
    common['tls_certificates'] = [
      {
        certificate_chain: { filename: tls.clientCertificate },
        private_key: { filename: tls.privateKey },
      },
    ];
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.upstreamTls,
      sni: tls.sni ?? host,
      common_tls_context: common,
    },
  };
}

const LB_POLICY: Record<string, LbPolicy> = {
  ROUND_ROBIN: 'ROUND_ROBIN',
  LEAST_REQUEST: 'LEAST_REQUEST',
  LEAST_CONN: 'LEAST_REQUEST',
  RANDOM: 'RANDOM',
  PASSTHROUGH: 'CLUSTER_PROVIDED',
  UNSPECIFIED: 'ROUND_ROBIN',
};

/** Adds the DestinationRule traffic policy fields to a cluster (Istio's translation). */
function applyTrafficPolicy(cluster: Cluster, policy: CoreTrafficPolicy): void {
  const lb = policy.loadBalancer;
  if (lb?.consistentHash !== undefined) {
    const ch = lb.consistentHash;
    cluster.lb_policy = ch.maglev !== undefined ? 'MAGLEV' : 'RING_HASH';
    const ring = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    if (ch.maglev === undefined && ring !== undefined)
      cluster.ring_hash_lb_config = { minimum_ring_size: { value: String(ring) } };
    if (ch.maglev?.tableSize !== undefined)
      cluster.maglev_lb_config = { table_size: { value: String(ch.maglev.tableSize) } };
  } else if (lb?.simple !== undefined) {
    cluster.lb_policy = LB_POLICY[lb.simple] ?? 'ROUND_ROBIN';
  }
  const pool = policy.connectionPool;
  if (pool?.tcp?.connectTimeout !== undefined)
    cluster.connect_timeout = durationOf(pool.tcp.connectTimeout);
  const thresholds: CircuitBreakerThresholds = {};
  if (pool?.tcp?.maxConnections !== undefined)
    thresholds.max_connections = { value: pool.tcp.maxConnections };
  if (pool?.http?.http1MaxPendingRequests !== undefined)
    thresholds.max_pending_requests = { value: pool.http.http1MaxPendingRequests };
  if (pool?.http?.http2MaxRequests !== undefined)
    thresholds.max_requests = { value: pool.http.http2MaxRequests };
  if (pool?.http?.maxRetries !== undefined)
    thresholds.max_retries = { value: pool.http.maxRetries };
  if (Object.keys(thresholds).length > 0)
    cluster.circuit_breakers = { thresholds: [{ priority: 'DEFAULT', ...thresholds }] };
  if (pool?.http?.maxRequestsPerConnection !== undefined && pool.http.maxRequestsPerConnection > 0)
    cluster.max_requests_per_connection = { value: pool.http.maxRequestsPerConnection };
  const od = policy.outlierDetection;
  if (od !== undefined) {
    const outlier: OutlierDetection = {};
    const c5xx = od.consecutive5xxErrors ?? od.consecutiveErrors;
    if (c5xx !== undefined) {
      outlier.consecutive_5xx = { value: c5xx };
      outlier.enforcing_consecutive_5xx = { value: c5xx > 0 ? 100 : 0 };
    }
    if (od.consecutiveGatewayErrors !== undefined) {
      outlier.consecutive_gateway_failure = { value: od.consecutiveGatewayErrors };
      outlier.enforcing_consecutive_gateway_failure = { value: 100 };
    }
    if (od.interval !== undefined) outlier.interval = durationOf(od.interval);
    if (od.baseEjectionTime !== undefined)
      outlier.base_ejection_time = durationOf(od.baseEjectionTime);
    if (od.maxEjectionPercent !== undefined)
      outlier.max_ejection_percent = { value: od.maxEjectionPercent };
    cluster.outlier_detection = outlier;
  }
}

/**
 * Istio speaks HTTP/2 to a port whose protocol is gRPC or HTTP2, and to an
 * HTTP port whose DestinationRule says `h2UpgradePolicy: UPGRADE`
 * (DO_NOT_UPGRADE keeps HTTP/1.1): Envoy's upstream HttpProtocolOptions.
 */
export function http2ProtocolOptions(): Record<string, Record<string, unknown>> {
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': EXTENSION_TYPE_URLS.httpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
}

function speaksHttp2(protocol: PortProtocol, policy: CoreTrafficPolicy): boolean {
  const upgrade = policy.connectionPool?.http?.h2UpgradePolicy;
  if (protocol === 'GRPC' || protocol === 'HTTP2') return true;
  return protocol === 'HTTP' && upgrade === 'UPGRADE';
}

/** One built cluster plus its endpoints. */
export interface BuiltCluster {
  readonly cluster: Cluster;
  readonly assignment: ClusterLoadAssignment | undefined;
}

function assignment(
  name: string,
  endpoints: readonly EndpointView[],
  trustDomain: string,
): ClusterLoadAssignment {
  return {
    '@type': TYPE_URLS.endpoint,
    cluster_name: name,
    endpoints:
      endpoints.length === 0
        ? []
        : [
            {
              locality: {},
              load_balancing_weight: { value: 1 },
              lb_endpoints: endpoints.map((e) => ({
                endpoint: {
                  address: { socket_address: { address: e.instance.address, port_value: e.port } },
                },
                health_status: e.instance.healthy ? 'HEALTHY' : 'UNHEALTHY',
                metadata: {
                  filter_metadata: {
                    istio: objectToStruct({
                      workload: e.instance.workload,
                      namespace: e.instance.namespace,
                      service_account: spiffeIdOf(
                        trustDomain,
                        e.instance.namespace,
                        e.instance.serviceAccount,
                      ),
                    }),
                  },
                },
              })),
            },
          ],
  };
}

function staticEndpoints(service: ServiceView, port: ServicePortView): EndpointView[] {
  return service.staticEndpoints.map((e) => ({
    instance: {
      id: `${service.name}/${e.address}`,
      address: e.address,
      namespace: service.namespace,
      labels: e.labels,
      serviceAccount: 'default',
      workload: service.name,
      portNames: e.ports,
      healthy: true,
    },
    port: e.ports[port.name] ?? (typeof port.targetPort === 'number' ? port.targetPort : port.port),
  }));
}

/** The outbound clusters (and endpoints) for one service port, one per subset plus the default. */
/**
 * Built clusters depend on the proxy only through its namespace (which
 * DestinationRule applies), so they are shared by every proxy of a namespace
 * for one registry generation: a push to N proxies builds them once.
 */
const clusterCache = new WeakMap<object, Map<string, BuiltCluster[]>>();

export function buildServiceClusters(
  context: CompileContext,
  proxy: ProxyNode,
  service: ServiceView,
  port: ServicePortView,
): BuiltCluster[] {
  let cache = clusterCache.get(context.registry);
  if (cache === undefined) {
    cache = new Map();
    clusterCache.set(context.registry, cache);
  }
  const key = `${proxy.namespace}|${service.hostname}|${String(port.port)}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const built = buildServiceClustersUncached(context, proxy, service, port);
  cache.set(key, built);
  return built;
}

function buildServiceClustersUncached(
  context: CompileContext,
  proxy: ProxyNode,
  service: ServiceView,
  port: ServicePortView,
): BuiltCluster[] {
  const dr = destinationRuleFor(context, service, proxy.namespace);
  const subsets: { name: string; labels: Record<string, string> | undefined }[] = [
    { name: '', labels: undefined },
    ...(dr?.spec.subsets ?? []).map((s) => ({ name: s.name, labels: s.labels })),
  ];
  const identities = serviceIdentities(context, service);
  const out: BuiltCluster[] = [];
  for (const subset of subsets) {
    const name = outboundClusterName(port.port, subset.name, service.hostname);
    const policy = effectivePolicy(dr, port.port, subset.name);
    const cluster: Cluster = {
      '@type': TYPE_URLS.cluster,
      name,
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} }, service_name: name },
      connect_timeout: { seconds: '10', nanos: 0 },
      lb_policy: 'ROUND_ROBIN',
    };
    applyTrafficPolicy(cluster, policy);
    if (speaksHttp2(port.protocol, policy))
      cluster.typed_extension_protocol_options = http2ProtocolOptions();
    const mode =
      policy.tls?.mode ??
      (service.external || service.autoMtls === false ? 'DISABLE' : 'ISTIO_MUTUAL');
    if (mode === 'ISTIO_MUTUAL') {
      const sni = `outbound_.${String(port.port)}_.${subset.name}_.${service.hostname}`;
      cluster.transport_socket = istioMutualSocket(sni, identities);
    } else if ((mode === 'SIMPLE' || mode === 'MUTUAL') && policy.tls !== undefined) {
      cluster.transport_socket = userTlsSocket(policy.tls, service.hostname);
    }
    const endpoints =
      service.source === 'ServiceEntry' && service.staticEndpoints.length > 0
        ? staticEndpoints(service, port)
        : service.source === 'ServiceEntry' &&
            service.selector === undefined &&
            service.resolution === 'DNS'
          ? [
              {
                instance: {
                  id: service.hostname,
                  address: service.hostname,
                  namespace: service.namespace,
                  labels: {},
                  serviceAccount: 'default',
                  workload: service.name,
                  portNames: {},
                  healthy: true,
                },
                port: port.port,
              },
            ]
          : context.registry.endpoints(service, port, subset.labels);
    out.push({ cluster, assignment: assignment(name, endpoints, context.trustDomain) });
  }
  return out;
}

/** `inbound|port||`: STATIC to the local app. */
export function buildInboundCluster(
  proxy: ProxyNode,
  port: number,
  protocol: PortProtocol,
): Cluster {
  const name = inboundClusterName(port);
  return {
    ...(protocol === 'GRPC' || protocol === 'HTTP2'
      ? { typed_extension_protocol_options: http2ProtocolOptions() }
      : {}),
    '@type': TYPE_URLS.cluster,
    name,
    type: 'STATIC',
    connect_timeout: { seconds: '10', nanos: 0 },
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: {
                address: { socket_address: { address: proxy.appAddress, port_value: port } },
              },
            },
          ],
        },
      ],
    },
  };
}

/** PassthroughCluster (ALLOW_ANY) and BlackHoleCluster (REGISTRY_ONLY), as Istio names them. */
export function buildSpecialClusters(): Cluster[] {
  return [
    {
      '@type': TYPE_URLS.cluster,
      name: 'PassthroughCluster',
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      connect_timeout: { seconds: '10', nanos: 0 },
    },
    {
      '@type': TYPE_URLS.cluster,
      name: 'BlackHoleCluster',
      type: 'STATIC',
      connect_timeout: { seconds: '10', nanos: 0 },
    },
  ];
}
