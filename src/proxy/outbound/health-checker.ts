/**
 * Active health checking of cluster endpoints (Cluster `health_checks`,
 * config.core.v3.HealthCheck), with Envoy's documented semantics:
 * - one check per endpoint every `interval` (the next one `interval` after
 *   the last finished), failing after `timeout`;
 * - HTTP: `GET <path>` with `Host` = `http_health_check.host` or the cluster
 *   name, `user-agent: Envoy/HC`; healthy when the status is in
 *   `expected_statuses` (half-open ranges, default 200 only); an unexpected
 *   status marks the host unhealthy at once, network failures and timeouts
 *   only after `unhealthy_threshold` in a row; TCP: a connection is a pass;
 * - an unhealthy host needs `healthy_threshold` passes in a row; a new host
 *   starts unhealthy and its first pass makes it healthy;
 * - the load balancer skips unhealthy hosts unless fewer than half of the
 *   hosts are healthy (Envoy's default 50 % panic threshold), when it uses
 *   them all.
 * Checks use the cluster's TLS (mTLS with secure naming) when it has one.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from '../../logging/index.js';
import { list, rec, str } from '../../xds/index.js';
import { durationMs as optionalMs } from '../envoy-values.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { XdsResource } from '../xds-client/xds-resource.js';

type R = Record<string, unknown>;

const HEALTH_CHECK_FIELDS = [
  'timeout',
  'interval',
  'unhealthy_threshold',
  'healthy_threshold',
  'http_health_check',
  'tcp_health_check',
];
const HTTP_CHECK_FIELDS = ['path', 'host', 'expected_statuses', 'request_headers_to_add'];

/** A Duration in ms, 0 when absent. */
function durationMs(value: unknown): number {
  return optionalMs(value) ?? 0;
}

function uint(value: unknown, fallback: number): number {
  const v = rec(value)['value'];
  return v === undefined ? fallback : Number(v);
}

/** Problems with a cluster's `health_checks` (empty when the proxy implements all of it). */
export function healthCheckProblems(cluster: R): string[] {
  const checks = list(cluster['health_checks']);
  const problems: string[] = [];
  if (checks.length > 1)
    problems.push('health_checks: only one health check per cluster is implemented');
  checks.forEach((check, i) => {
    const at = `health_checks[${String(i)}]`;
    for (const key of Object.keys(check)) {
      const value = check[key];
      if (typeof value === 'string' && value in check && value !== key) continue; // oneof name
      if (!HEALTH_CHECK_FIELDS.includes(key)) problems.push(`${at}: unsupported field ${key}`);
    }
    if (durationMs(check['interval']) <= 0) problems.push(`${at}.interval: must be positive`);
    if (durationMs(check['timeout']) <= 0) problems.push(`${at}.timeout: must be positive`);
    const httpCheck = check['http_health_check'];
    const tcpCheck = check['tcp_health_check'];
    if (httpCheck === undefined && tcpCheck === undefined)
      problems.push(`${at}: only http_health_check and tcp_health_check are implemented`);
    for (const key of Object.keys(rec(httpCheck)))
      if (!HTTP_CHECK_FIELDS.includes(key))
        problems.push(`${at}.http_health_check: unsupported field ${key}`);
    if (httpCheck !== undefined && !str(rec(httpCheck)['path']).startsWith('/'))
      problems.push(`${at}.http_health_check.path: must start with /`);
    for (const key of Object.keys(rec(tcpCheck)))
      problems.push(`${at}.tcp_health_check: ${key} is not implemented (connect-only checks are)`);
  });
  return problems;
}

interface HostState {
  healthy: boolean;
  /** No check finished yet: the first pass makes the host healthy. */
  pending: boolean;
  failures: number;
  successes: number;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

/** How checks reach a cluster's endpoints over its TLS, if any. */
export type TlsFor = (clusterName: string) => https.Agent | Error | undefined;

/** The active health checkers of one proxy. */
export interface HealthChecker {
  /** Starts checks for new (cluster, endpoint) pairs and stops those gone or reconfigured. */
  sync(snapshot: XdsSnapshot, endpointsOf: (cluster: string) => readonly string[]): void;
  /** False while active health checking holds `endpoint` (`host:port`) unhealthy. */
  healthy(cluster: string, endpoint: string): boolean;
  /** True when the cluster has active health checks. */
  checked(cluster: string): boolean;
  close(): void;
}

/** Creates the health checkers; `localAddress` is the source address for loopback endpoints. */
export function createHealthChecker(options: {
  readonly logger?: Logger | undefined;
  readonly localAddress?: string | undefined;
  readonly tlsFor: TlsFor;
}): HealthChecker {
  const { logger } = options;
  /** cluster name → the checked config object and its hosts. */
  const clusters = new Map<string, { config: R; hosts: Map<string, HostState> }>();

  const stop = (state: HostState): void => {
    state.stopped = true;
    if (state.timer !== undefined) clearTimeout(state.timer);
  };

  const probe = (
    clusterName: string,
    config: R,
    endpoint: string,
  ): Promise<'pass' | 'active-fail' | 'network-fail'> => {
    const at = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(endpoint.slice(at + 1));
    const timeoutMs = durationMs(config['timeout']);
    const local =
      options.localAddress !== undefined && host.startsWith('127.')
        ? { localAddress: options.localAddress }
        : {};
    const agent = options.tlsFor(clusterName);
    if (agent instanceof Error) return Promise.resolve('network-fail');
    const httpCheck = config['http_health_check'];
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: 'pass' | 'active-fail' | 'network-fail'): void => {
        if (!settled) {
          settled = true;
          resolve(result);
        }
      };
      if (httpCheck === undefined) {
        const socket =
          agent === undefined
            ? net.connect({ host, port, ...local })
            : tls.connect({ ...(agent.options as tls.ConnectionOptions), host, port, ...local });
        socket.setTimeout(timeoutMs, () => {
          socket.destroy();
          settle('network-fail');
        });
        socket.once(agent === undefined ? 'connect' : 'secureConnect', () => {
          socket.end();
          settle('pass');
        });
        socket.on('error', () => {
          settle('network-fail');
        });
        return;
      }
      const check = rec(httpCheck);
      const headers: Record<string, string> = {
        host: str(check['host']) === '' ? clusterName : str(check['host']),
        'user-agent': 'Envoy/HC',
      };
      for (const option of list(check['request_headers_to_add'])) {
        const header = rec(option['header']);
        if (typeof header['key'] === 'string')
          headers[header['key'].toLowerCase()] = str(header['value']);
      }
      const ranges = list(check['expected_statuses']).map((r) => [
        Number(r['start']),
        Number(r['end']),
      ]);
      const expected = (status: number): boolean =>
        ranges.length === 0
          ? status === 200
          : ranges.some(([a = 0, b = 0]) => status >= a && status < b);
      const request = (agent === undefined ? http : https).request(
        {
          host,
          port,
          path: str(check['path'], '/'),
          method: 'GET',
          headers,
          agent: agent ?? false,
          timeout: timeoutMs,
          ...local,
        },
        (res) => {
          res.resume();
          settle(expected(res.statusCode ?? 0) ? 'pass' : 'active-fail');
        },
      );
      request.on('timeout', () => {
        request.destroy();
        settle('network-fail');
      });
      request.on('error', () => {
        settle('network-fail');
      });
      request.end();
    });
  };

  const run = (clusterName: string, config: R, endpoint: string, state: HostState): void => {
    if (state.stopped || !currentCluster.has(clusterName)) return;
    void probe(clusterName, config, endpoint)
      .then((result) => {
        if (state.stopped) return;
        const wasHealthy = state.healthy;
        if (result === 'pass') {
          state.failures = 0;
          state.successes += 1;
          if (state.pending || state.successes >= uint(config['healthy_threshold'], 1))
            state.healthy = true;
        } else {
          state.successes = 0;
          state.failures += 1;
          if (result === 'active-fail' || state.failures >= uint(config['unhealthy_threshold'], 1))
            state.healthy = false;
        }
        state.pending = false;
        if (wasHealthy !== state.healthy)
          logger?.info(
            { cluster: clusterName, endpoint, healthy: state.healthy, check: result },
            state.healthy
              ? 'health check passed: host healthy'
              : 'health check failed: host unhealthy',
          );
        state.timer = setTimeout(() => {
          run(clusterName, config, endpoint, state);
        }, durationMs(config['interval']));
        state.timer.unref();
      })
      .catch((error: unknown) => {
        // Never an unhandled rejection: log it; the host keeps its last state.
        logger?.error({ err: error, cluster: clusterName, endpoint }, 'health check failed to run');
      });
  };

  const currentCluster = new Map<string, XdsResource>();

  return {
    sync(snapshot, endpointsOf) {
      for (const [name, entry] of clusters) {
        const cluster = snapshot.cluster.get(name);
        const config = list(cluster?.['health_checks'])[0];
        if (config === undefined || JSON.stringify(config) !== JSON.stringify(entry.config)) {
          for (const state of entry.hosts.values()) stop(state);
          clusters.delete(name);
        }
      }
      currentCluster.clear();
      for (const [name, cluster] of snapshot.cluster) {
        const config = list(cluster['health_checks'])[0];
        if (config === undefined) continue;
        currentCluster.set(name, cluster);
        let entry = clusters.get(name);
        if (entry === undefined) {
          entry = { config, hosts: new Map() };
          clusters.set(name, entry);
        }
        const wanted = new Set(endpointsOf(name));
        for (const [endpoint, state] of entry.hosts)
          if (!wanted.has(endpoint)) {
            stop(state);
            entry.hosts.delete(endpoint);
          }
        for (const endpoint of wanted) {
          if (entry.hosts.has(endpoint)) continue;
          const state: HostState = {
            healthy: false,
            pending: true,
            failures: 0,
            successes: 0,
            timer: undefined,
            stopped: false,
          };
          entry.hosts.set(endpoint, state);
          run(name, entry.config, endpoint, state);
        }
      }
    },
    healthy(cluster, endpoint) {
      return clusters.get(cluster)?.hosts.get(endpoint)?.healthy ?? true;
    },
    checked(cluster) {
      return clusters.has(cluster);
    },
    close() {
      for (const entry of clusters.values()) for (const state of entry.hosts.values()) stop(state);
      clusters.clear();
    },
  };
}
