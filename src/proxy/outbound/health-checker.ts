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
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { HealthCheckConfig } from './health-check-config.js';

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
  const clusters = new Map<string, { config: HealthCheckConfig; hosts: Map<string, HostState> }>();

  const stop = (state: HostState): void => {
    state.stopped = true;
    if (state.timer !== undefined) clearTimeout(state.timer);
  };

  const probe = (
    clusterName: string,
    config: HealthCheckConfig,
    endpoint: string,
  ): Promise<'pass' | 'active-fail' | 'network-fail'> => {
    const at = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(endpoint.slice(at + 1));
    const timeoutMs = config.timeoutMs;
    const local =
      options.localAddress !== undefined && host.startsWith('127.')
        ? { localAddress: options.localAddress }
        : {};
    const agent = options.tlsFor(clusterName);
    if (agent instanceof Error) return Promise.resolve('network-fail');
    const httpCheck = config.http;
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
      const headers: Record<string, string> = {
        host: httpCheck.host ?? clusterName,
        'user-agent': 'Envoy/HC',
      };
      for (const [key, value] of httpCheck.headers) headers[key] = value;
      const ranges = httpCheck.expected;
      const expected = (status: number): boolean =>
        ranges.length === 0 ? status === 200 : ranges.some(([a, b]) => status >= a && status < b);
      const request = (agent === undefined ? http : https).request(
        {
          host,
          port,
          path: httpCheck.path,
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

  const run = (
    clusterName: string,
    config: HealthCheckConfig,
    endpoint: string,
    state: HostState,
  ): void => {
    if (state.stopped || !clusters.has(clusterName)) return;
    void probe(clusterName, config, endpoint)
      .then((result) => {
        if (state.stopped) return;
        const wasHealthy = state.healthy;
        if (result === 'pass') {
          state.failures = 0;
          state.successes += 1;
          if (state.pending || state.successes >= config.healthyThreshold) state.healthy = true;
        } else {
          state.successes = 0;
          state.failures += 1;
          if (result === 'active-fail' || state.failures >= config.unhealthyThreshold)
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
        }, config.intervalMs);
        state.timer.unref();
      })
      .catch((error: unknown) => {
        // Never an unhandled rejection: log it; the host keeps its last state.
        logger?.error({ err: error, cluster: clusterName, endpoint }, 'health check failed to run');
      });
  };

  return {
    sync(snapshot, endpointsOf) {
      const typed = snapshot.typed.clusters;
      for (const [name, entry] of clusters) {
        const config = typed.get(name)?.healthCheck;
        if (config === undefined || config.key !== entry.config.key) {
          for (const state of entry.hosts.values()) stop(state);
          clusters.delete(name);
        }
      }
      for (const [name, cluster] of typed) {
        const config = cluster.healthCheck;
        if (config === undefined) continue;
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
