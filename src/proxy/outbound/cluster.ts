/**
 * The cluster layer: from a cluster name to a host to send to. This is the
 * one cluster → TLS → load-balancer sequence of the proxy (STYLE.md §11):
 * requests (per attempt), upgrades, mirrors, CONNECT tunnels and tcp_proxy
 * all resolve through {@link ClusterManager.resolve} and
 * {@link ClusterManager.pick}, so every kind of traffic gets the same
 * endpoints, health, outlier ejection, circuit breaker and upstream TLS.
 *
 * `PassthroughCluster` sends to the request's own target (Istio's
 * ALLOW_ANY outbound traffic policy).
 */
import type * as https from 'node:https';
import type { RequestTarget } from '../http/types.js';
import type { ProxyFailureCode } from '../http/proxy-failure.js';
import type { ClusterConfig, XdsSnapshot } from '../xds-client/xds-resource.js';
import type { Logger } from '../../logging/index.js';
import type { SecretStore } from '../tls/secrets.js';
import { createHealthChecker } from './health-checker.js';
import {
  createClusterState,
  pickEndpoint,
  type ClusterPolicy,
  type ClusterState,
  type Endpoint,
} from './load-balancer.js';
import { createUpstreamTlsAgents, type UpstreamTlsConfig } from './upstream-tls.js';

/** A cluster ready to send to: its policy, state, hosts and upstream TLS. */
export interface ResolvedCluster {
  readonly name: string;
  readonly policy: ClusterPolicy;
  readonly state: ClusterState;
  readonly endpoints: readonly Endpoint[];
  readonly tls: UpstreamTlsConfig | undefined;
  /** True when the cluster presents a workload certificate (mTLS). */
  readonly mtls: boolean;
  /** The typed cluster config (compiled before the update was ACKed). */
  readonly config: ClusterConfig;
}

/** A cluster layer failure: the code for proxy-failure.ts and the reason (TLS errors). */
export interface ClusterFailure {
  readonly failure: ProxyFailureCode;
  readonly reason?: string;
}

export interface ClusterManagerOptions {
  readonly secrets?: SecretStore | undefined;
  readonly logger?: Logger | undefined;
  readonly localAddress?: string | undefined;
  readonly onSecureNamingFailure?:
    ((cluster: string, presented: readonly string[]) => void) | undefined;
}

export interface ClusterManager {
  /** The cluster and its hosts, or why there is none to send to (NR, NC, UH). */
  resolve(
    snapshot: XdsSnapshot,
    name: string,
    target: RequestTarget,
  ): ResolvedCluster | ClusterFailure;
  /** A host by the cluster's LB policy (ejected/unhealthy skipped), or undefined (UH). */
  pick(cluster: ResolvedCluster, avoid?: string, hash?: number): ReturnType<typeof pickEndpoint>;
  /** The cluster's TLS agent (current SVID and bundle), undefined for plaintext, or the TLS error. */
  agent(cluster: ResolvedCluster): https.Agent | undefined | Error;
  /** Applies an accepted snapshot's side effects (active health checks start/stop). */
  sync(snapshot: XdsSnapshot): void;
  close(): void;
}

export function createClusterManager(options: ClusterManagerOptions): ClusterManager {
  const tlsAgents = createUpstreamTlsAgents(options.secrets, options.onSecureNamingFailure);
  let typed: XdsSnapshot['typed'] | undefined;
  const health = createHealthChecker({
    logger: options.logger,
    localAddress: options.localAddress,
    tlsFor: (name) => {
      const config = typed?.clusters.get(name)?.tls;
      return config === undefined ? undefined : tlsAgents.agentFor(name, config);
    },
  });
  const states = new Map<string, ClusterState>();
  const stateOf = (name: string): ClusterState => {
    let s = states.get(name);
    if (s === undefined) {
      s = createClusterState();
      states.set(name, s);
    }
    return s;
  };

  return {
    resolve(snapshot, name, target) {
      if (name === 'BlackHoleCluster') return { failure: 'PAL_ERR_PROXY_BLACKHOLE' };
      const config = snapshot.typed.clusters.get(name);
      if (config === undefined) return { failure: 'PAL_ERR_PROXY_NO_CLUSTER' };
      const endpoints =
        name === 'PassthroughCluster'
          ? [{ host: target.host, port: target.port }]
          : (snapshot.typed.endpoints.get(name) ?? []);
      if (endpoints.length === 0) return { failure: 'PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM' };
      return {
        name,
        policy: config.policy,
        state: stateOf(name),
        endpoints,
        tls: config.tls,
        mtls: config.mtls,
        config,
      };
    },
    pick(cluster, avoid, hash) {
      const name = cluster.name;
      return pickEndpoint(cluster.policy, cluster.state, cluster.endpoints, {
        avoid,
        hash,
        healthy: health.checked(name) ? (e) => health.healthy(name, e) : undefined,
      });
    },
    agent(cluster) {
      return cluster.tls === undefined ? undefined : tlsAgents.agentFor(cluster.name, cluster.tls);
    },
    sync(snapshot) {
      typed = snapshot.typed;
      health.sync(snapshot, (name) =>
        (
          snapshot.typed.endpoints.get(name) ??
          snapshot.typed.clusters.get(name)?.loadAssignment ??
          []
        ).map((e) => `${e.host}:${String(e.port)}`),
      );
    },
    close() {
      health.close();
      tlsAgents.destroy();
    },
  };
}

/** Narrows a {@link ClusterManager.resolve} result. */
export function isClusterFailure(r: ResolvedCluster | ClusterFailure): r is ClusterFailure {
  return 'failure' in r;
}
