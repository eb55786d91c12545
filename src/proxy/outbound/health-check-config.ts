/**
 * A cluster's active health check (config.core.v3.HealthCheck) as the health
 * checker runs it, compiled with the cluster before the ACK
 * (src/proxy/config/cluster-config.ts), and the checks that NACK what this
 * proxy does not implement. Semantics in health-checker.ts.
 */
import { allFieldsOf, fieldsOf, type Cluster, type HealthCheck } from '../../xds/index.js';
import { checkFields } from '../config/fields.js';
import { durationOrZeroMs as durationMs } from '../envoy-values.js';

export interface HealthCheckConfig {
  /** The accepted check, serialised: a cluster update with the same key keeps its hosts' state. */
  readonly key: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** An HTTP check, or undefined for a TCP (connect-only) one. */
  readonly http:
    | {
        readonly path: string;
        /** `Host`, or undefined (then the cluster name). */
        readonly host: string | undefined;
        readonly headers: readonly (readonly [string, string])[];
        /** Half-open [start, end) ranges; empty: 200 only. */
        readonly expected: readonly (readonly [number, number])[];
      }
    | undefined;
}

const HEALTH_CHECK_FIELDS = allFieldsOf<HealthCheck>()(
  'timeout',
  'interval',
  'unhealthy_threshold',
  'healthy_threshold',
  'http_health_check',
  'tcp_health_check',
);
const HTTP_CHECK_FIELDS = fieldsOf<NonNullable<HealthCheck['http_health_check']>>()(
  'path',
  'host',
  'expected_statuses',
  'request_headers_to_add',
);

/** Problems with a cluster's `health_checks` (empty when the proxy implements all of it). */
export function healthCheckProblems(cluster: Cluster): string[] {
  const checks = cluster.health_checks ?? [];
  const problems: string[] = [];
  if (checks.length > 1)
    problems.push('health_checks: only one health check per cluster is implemented');
  checks.forEach((check, i) => {
    const at = `health_checks[${String(i)}]`;
    checkFields(check, HEALTH_CHECK_FIELDS, at, problems);
    if (durationMs(check.interval) <= 0) problems.push(`${at}.interval: must be positive`);
    if (durationMs(check.timeout) <= 0) problems.push(`${at}.timeout: must be positive`);
    const httpCheck = check.http_health_check;
    const tcpCheck = check.tcp_health_check;
    if (httpCheck === undefined && tcpCheck === undefined)
      problems.push(`${at}: only http_health_check and tcp_health_check are implemented`);
    checkFields(httpCheck, HTTP_CHECK_FIELDS, `${at}.http_health_check`, problems);
    if (httpCheck !== undefined && !(httpCheck.path ?? '').startsWith('/'))
      problems.push(`${at}.http_health_check.path: must start with /`);
    for (const key of Object.keys(tcpCheck ?? {}))
      problems.push(`${at}.tcp_health_check: ${key} is not implemented (connect-only checks are)`);
  });
  return problems;
}

/** The cluster's (one) health check compiled, or undefined when it has none. */
export function compileHealthCheck(cluster: Cluster): HealthCheckConfig | undefined {
  const check = cluster.health_checks?.[0];
  if (check === undefined) return undefined;
  const threshold = (v: HealthCheck['healthy_threshold']): number =>
    v === undefined ? 1 : Number(v.value);
  const http = check.http_health_check;
  return {
    key: JSON.stringify(check),
    intervalMs: durationMs(check.interval),
    timeoutMs: durationMs(check.timeout),
    healthyThreshold: threshold(check.healthy_threshold),
    unhealthyThreshold: threshold(check.unhealthy_threshold),
    http:
      http === undefined
        ? undefined
        : {
            path: http.path === undefined || http.path === '' ? '/' : http.path,
            host: http.host === undefined || http.host === '' ? undefined : http.host,
            headers: (http.request_headers_to_add ?? []).flatMap((option) =>
              typeof option.header?.key === 'string'
                ? [[option.header.key.toLowerCase(), option.header.value ?? ''] as const]
                : [],
            ),
            expected: (http.expected_statuses ?? []).map(
              (r) => [Number(r.start), Number(r.end)] as const,
            ),
          },
  };
}
