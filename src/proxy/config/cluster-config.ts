/**
 * Cluster (CDS) checks: discovery type, LB policy and its ring/Maglev settings,
 * upstream TLS, HTTP protocol options and health checks.
 */
import { healthCheckProblems } from '../outbound/health-checker.js';
import { parseUpstreamTls } from '../outbound/upstream-tls.js';
import { HTTP_PROTOCOL_OPTIONS_KEY } from '../h2-upstream.js';
import type { XdsResource } from '../xds-client/xds-resource.js';
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
  problems.push(...healthCheckProblems(resource));
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
