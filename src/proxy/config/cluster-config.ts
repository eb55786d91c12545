/**
 * Clusters (CDS) and their endpoints (EDS): the checks that decide what to NACK
 * (discovery type, LB policy and its ring/Maglev settings, upstream TLS, HTTP
 * protocol options, health checks), and the compilation of an accepted
 * resource into the typed {@link ClusterConfig} the cluster layer reads per
 * request — done once, before the update is ACKed (typed-config.ts).
 */
import type { Cluster, ClusterLoadAssignment, WrappedNumber } from '../../xds/index.js';
import { durationMs } from '../envoy-values.js';
import { compileHealthCheck, healthCheckProblems } from '../outbound/health-check-config.js';
import type { ClusterPolicy, Endpoint } from '../outbound/load-balancer.js';
import { parseUpstreamTls } from '../outbound/upstream-tls.js';
import { HTTP_PROTOCOL_OPTIONS_KEY, upstreamHttp2Mode } from '../h2-upstream.js';
import type { ClusterConfig, XdsResource } from '../xds-client/xds-resource.js';
import { isRecord, unsupportedKeys } from './fields.js';

const SUPPORTED_LB_POLICIES: ReadonlySet<string> = new Set([
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'CLUSTER_PROVIDED',
  'RING_HASH',
  'MAGLEV',
]);
/** Envoy's largest Maglev table. */
const MAGLEV_MAX_TABLE = 5_000_011;

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d += 1) if (n % d === 0) return false;
  return true;
}
const SUPPORTED_CLUSTER_TYPES: ReadonlySet<string> = new Set(['EDS', 'STATIC', 'ORIGINAL_DST']);

/** Cluster fields whose values this build must understand to honour them. */
export function collectClusterProblems(resource: XdsResource, problems: string[]): void {
  const type = resource['type'];
  if (typeof type === 'string' && !SUPPORTED_CLUSTER_TYPES.has(type))
    problems.push(`unsupported cluster type ${type}`);
  const lb = resource['lb_policy'];
  if (typeof lb === 'string' && !SUPPORTED_LB_POLICIES.has(lb))
    problems.push(`unsupported lb_policy ${lb}`);
  for (const key of unsupportedKeys(
    resource['ring_hash_lb_config'],
    new Set(['minimum_ring_size', 'maximum_ring_size']),
  ))
    problems.push(`ring_hash_lb_config: unsupported field ${key}`);
  for (const key of unsupportedKeys(resource['maglev_lb_config'], new Set(['table_size'])))
    problems.push(`maglev_lb_config: unsupported field ${key}`);
  const table = isRecord(resource['maglev_lb_config'])
    ? resource['maglev_lb_config']['table_size']
    : undefined;
  if (isRecord(table)) {
    const size = Number(table['value']);
    if (!isPrime(size) || size > MAGLEV_MAX_TABLE)
      problems.push(
        `maglev_lb_config.table_size: ${String(table['value'])} must be a prime no larger than ${String(MAGLEV_MAX_TABLE)}`,
      );
  }
  if (resource['transport_socket'] !== undefined) parseUpstreamTls(resource, problems);
  collectProtocolOptionProblems(resource['typed_extension_protocol_options'], problems);
  problems.push(...healthCheckProblems(asCluster(resource)));
}

/**
 * Upstream HttpProtocolOptions: HTTP/1.1 or HTTP/2 explicitly, or the
 * downstream's protocol — with no tuning fields (none is implemented).
 */
function collectProtocolOptionProblems(options: unknown, problems: string[]): void {
  if (!isRecord(options)) return;
  for (const [key, value] of Object.entries(options)) {
    const at = `typed_extension_protocol_options[${key}]`;
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY) {
      problems.push(`${at}: unsupported protocol options`);
      continue;
    }
    for (const field of unsupportedKeys(
      value,
      new Set(['@type', 'explicit_http_config', 'use_downstream_protocol_config']),
    ))
      problems.push(`${at}: unsupported field ${field}`);
    const v = isRecord(value) ? value : {};
    for (const name of ['explicit_http_config', 'use_downstream_protocol_config']) {
      const config = v[name];
      if (!isRecord(config)) continue;
      for (const field of unsupportedKeys(
        config,
        new Set(['http_protocol_options', 'http2_protocol_options']),
      ))
        problems.push(`${at}.${name}: unsupported field ${field}`);
      for (const protocol of ['http_protocol_options', 'http2_protocol_options'])
        for (const field of unsupportedKeys(config[protocol], new Set()))
          problems.push(`${at}.${name}.${protocol}: unsupported field ${field}`);
    }
  }
}

/** A wrapper's number, `d` when the wrapper is absent (a present empty wrapper is NaN, as before). */
const wrapped = (v: WrappedNumber | undefined, d: number): number =>
  v === undefined ? d : Number(v.value);

const LB_POLICIES: ReadonlySet<string> = new Set([
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'RING_HASH',
  'MAGLEV',
]);

/**
 * A decoded cluster resource with the shared type (src/xds's Cluster, which the control
 * plane builds): protobufjs decoded it from the Cluster proto, so its structure is the
 * proto's, and the checks above refused what this build does not honour.
 */
function asCluster(resource: XdsResource): Cluster {
  return resource as unknown as Cluster;
}

/** The load-balancing, outlier and circuit-breaker settings of a cluster. */
export function clusterPolicy(cluster: Cluster): ClusterPolicy {
  const lb = cluster.lb_policy ?? 'ROUND_ROBIN';
  const od = cluster.outlier_detection;
  const t = cluster.circuit_breakers?.thresholds?.[0] ?? {};
  return {
    lbPolicy: (LB_POLICIES.has(lb) ? lb : 'ROUND_ROBIN') as ClusterPolicy['lbPolicy'],
    outlier:
      od === undefined
        ? undefined
        : {
            consecutive5xx: wrapped(od.consecutive_5xx, 5),
            consecutiveGatewayFailure:
              od.consecutive_gateway_failure === undefined
                ? undefined
                : Number(od.consecutive_gateway_failure.value),
            baseEjectionMs: durationMs(od.base_ejection_time) ?? 30_000,
            maxEjectionPercent: wrapped(od.max_ejection_percent, 10),
          },
    maxRequests: Math.min(wrapped(t.max_requests, 1024), wrapped(t.max_connections, 1024) * 1024),
    maxPending: wrapped(t.max_pending_requests, 1024),
    maxRetries: wrapped(t.max_retries, 3),
    hashTableSize: Number(
      (lb === 'MAGLEV'
        ? cluster.maglev_lb_config?.table_size?.value
        : cluster.ring_hash_lb_config?.minimum_ring_size?.value) ??
        (lb === 'MAGLEV' ? 65537 : 1024),
    ),
  };
}

/**
 * The hosts of a ClusterLoadAssignment (EDS, or a STATIC cluster's
 * `load_assignment`), UNHEALTHY/DRAINING/TIMEOUT ones left out.
 */
export function compileEndpoints(
  assignment: ClusterLoadAssignment | undefined,
): readonly Endpoint[] {
  const out: Endpoint[] = [];
  for (const locality of assignment?.endpoints ?? [])
    for (const lb of locality.lb_endpoints ?? []) {
      const status = lb.health_status;
      if (status === 'UNHEALTHY' || status === 'DRAINING' || status === 'TIMEOUT') continue;
      const socket = lb.endpoint?.address?.socket_address;
      if (typeof socket?.address === 'string')
        out.push({ host: socket.address, port: socket.port_value });
    }
  return out;
}

/**
 * The healthy hosts of an accepted EDS resource: decoded from the ClusterLoadAssignment proto,
 * so it has that type's shape (all of its fields are optional).
 */
export function compileAssignment(resource: XdsResource): readonly Endpoint[] {
  return compileEndpoints(resource);
}

/**
 * An accepted cluster resource as the proxy serves it, or the problems that NACK it.
 * Everything a request needs is a typed field here; nothing is re-read from the resource.
 */
export function compileCluster(name: string, resource: XdsResource): ClusterConfig | string[] {
  const problems: string[] = [];
  const tls = parseUpstreamTls(resource, problems);
  if (problems.length > 0) return problems;
  const cluster = asCluster(resource);
  return {
    name,
    policy: clusterPolicy(cluster),
    tls,
    mtls: tls?.certificateSecret !== undefined,
    upstreamHttp2: upstreamHttp2Mode(resource),
    loadAssignment: compileEndpoints(cluster.load_assignment),
    healthCheck: compileHealthCheck(cluster),
  };
}
