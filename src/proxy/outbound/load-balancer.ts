/**
 * The cluster layer's policy, as pure functions over a cluster's typed
 * settings and its runtime state (no sockets, no timers), so load balancing,
 * outlier ejection and circuit breaking are tested without processes
 * (load-balancer.test.ts).
 *
 * - Load balancing (cluster.v3.Cluster.LbPolicy): ROUND_ROBIN, LEAST_REQUEST
 *   (Envoy's default power of two random choices), RANDOM, RING_HASH and
 *   MAGLEV (hash-lb.ts).
 * - Active health checks: unhealthy hosts are skipped unless fewer than half
 *   are healthy (Envoy's default 50 % panic threshold), then all are used.
 * - Outlier detection (cluster.v3.OutlierDetection): consecutive_5xx (default
 *   5) and consecutive_gateway_failure count per host; the host is ejected for
 *   base_ejection_time (default 30 s) × times ejected, never more than
 *   max_ejection_percent (default 10 %) of hosts but always at least one.
 * - Circuit breakers (cluster.v3.CircuitBreakers.Thresholds, first entry):
 *   max_requests, max_pending_requests, max_retries (defaults 1024, 1024, 3).
 */
import { randomInt } from 'node:crypto';
import { hashPick } from './hash-lb.js';

/** An upstream host. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Keys made, per endpoint object (an endpoint's fields are readonly). */
const keys = new WeakMap<Endpoint, string>();

/**
 * `host:port`, the key of an endpoint in state maps and logs. Made once per endpoint object:
 * a concatenation per request was hashed as a Map key and escape-checked by the access log,
 * each flattening it.
 */
export function endpointKey(e: Endpoint): string {
  let key = keys.get(e);
  if (key === undefined) {
    key = `${e.host}:${String(e.port)}`;
    keys.set(e, key);
  }
  return key;
}

/**
 * A cluster's load-balancing, outlier and breaker settings, compiled once when its update is
 * accepted (src/proxy/config/cluster-config.ts `clusterPolicy`).
 */
export interface ClusterPolicy {
  readonly lbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
  readonly outlier:
    | {
        readonly consecutive5xx: number;
        readonly consecutiveGatewayFailure: number | undefined;
        readonly baseEjectionMs: number;
        readonly maxEjectionPercent: number;
      }
    | undefined;
  readonly maxRequests: number;
  readonly maxPending: number;
  readonly maxRetries: number;
  /** RING_HASH's minimum ring size or MAGLEV's table size (Envoy's defaults 1024, 65537). */
  readonly hashTableSize: number;
}

/** Per-cluster runtime state: LB cursor, active requests, outlier detection. */
export interface ClusterState {
  cursor: number;
  active: number;
  pending: number;
  readonly activeByEndpoint: Map<string, number>;
  readonly failures: Map<string, number>;
  readonly ejectedUntil: Map<string, number>;
  readonly ejections: Map<string, number>;
}

export function createClusterState(): ClusterState {
  return {
    cursor: 0,
    active: 0,
    pending: 0,
    activeByEndpoint: new Map(),
    failures: new Map(),
    ejectedUntil: new Map(),
    ejections: new Map(),
  };
}

/** What a pick may consider beyond the state. */
export interface PickOptions {
  /** An endpoint to avoid (the one a retry follows), when others are usable. */
  readonly avoid?: string | undefined;
  /** The request hash for RING_HASH/MAGLEV. */
  readonly hash?: number | undefined;
  /** Active health checking: false while an endpoint is held unhealthy (undefined: not checked). */
  readonly healthy?: ((endpoint: string) => boolean) | undefined;
  readonly now?: number;
}

/** Picks an endpoint by the cluster's LB policy, skipping ejected and unhealthy ones. */
export function pickEndpoint(
  policy: ClusterPolicy,
  state: ClusterState,
  endpoints: readonly Endpoint[],
  options: PickOptions = {},
): Endpoint | undefined {
  let candidates = endpoints;
  const healthy = options.healthy;
  if (healthy !== undefined) {
    const up = endpoints.filter((e) => healthy(endpointKey(e)));
    if (up.length * 2 >= endpoints.length) candidates = up;
  }
  // No host ejected (nearly always): no clock read, no key per endpoint, no copy.
  let usable =
    state.ejectedUntil.size === 0 ? candidates : withoutEjected(policy, state, candidates, options);
  const avoid = options.avoid;
  if (avoid !== undefined && usable.length > 1)
    usable = usable.filter((e) => endpointKey(e) !== avoid);
  if (usable.length === 0) return undefined;
  // One host: nothing to choose (no random draws, no load lookups); round robin still turns.
  if (usable.length === 1 && policy.lbPolicy !== 'ROUND_ROBIN') return usable[0];
  switch (policy.lbPolicy) {
    case 'RING_HASH':
    case 'MAGLEV':
      return usable[
        hashPick(policy.lbPolicy, policy.hashTableSize, usable.map(endpointKey), options.hash)
      ];
    case 'RANDOM':
      return usable[randomInt(usable.length)];
    case 'LEAST_REQUEST': {
      const a = usable[randomInt(usable.length)];
      const b = usable[randomInt(usable.length)];
      if (a === undefined || b === undefined) return a ?? b;
      const load = (e: Endpoint): number => state.activeByEndpoint.get(endpointKey(e)) ?? 0;
      return load(b) < load(a) ? b : a;
    }
    case 'ROUND_ROBIN': {
      state.cursor += 1;
      return usable[state.cursor % usable.length];
    }
  }
}

/**
 * The candidates not ejected now; all of them when everything is ejected or more than
 * max_ejection_percent of the hosts would be (never more, but always at least one: Envoy).
 * An ejection that has run out is forgotten (the count of ejections stays).
 */
function withoutEjected(
  policy: ClusterPolicy,
  state: ClusterState,
  candidates: readonly Endpoint[],
  options: PickOptions,
): readonly Endpoint[] {
  const now = options.now ?? Date.now();
  for (const [key, until] of state.ejectedUntil) if (until <= now) state.ejectedUntil.delete(key);
  const usable = candidates.filter((e) => (state.ejectedUntil.get(endpointKey(e)) ?? 0) <= now);
  const percent = policy.outlier?.maxEjectionPercent ?? 10;
  const mayEject = Math.max(1, Math.floor((candidates.length * percent) / 100 + 1e-9));
  if (usable.length === 0 || candidates.length - usable.length > mayEject) return candidates;
  return usable;
}

/**
 * Outlier detection: counts consecutive failures of `endpoint` (`status`
 * undefined = reset/connect failure) and ejects it at the threshold.
 */
export function observeOutcome(
  policy: ClusterPolicy,
  state: ClusterState,
  endpoint: string,
  status: number | undefined,
  now?: number,
): void {
  const od = policy.outlier;
  if (od === undefined) return;
  const gatewayFailure = status === undefined || status === 502 || status === 503 || status === 504;
  if (!(status === undefined || status >= 500)) {
    state.failures.set(endpoint, 0);
    return;
  }
  const count = (state.failures.get(endpoint) ?? 0) + 1;
  state.failures.set(endpoint, count);
  const cgw = od.consecutiveGatewayFailure;
  if (count >= od.consecutive5xx || (cgw !== undefined && gatewayFailure && count >= cgw)) {
    const times = (state.ejections.get(endpoint) ?? 0) + 1;
    state.ejections.set(endpoint, times);
    state.ejectedUntil.set(endpoint, (now ?? Date.now()) + od.baseEjectionMs * times);
    state.failures.set(endpoint, 0);
  }
}

/** Circuit breaking: takes a request slot, or false when max_requests are active (503 UO). */
export function admitRequest(policy: ClusterPolicy, state: ClusterState): boolean {
  if (state.active >= policy.maxRequests) return false;
  state.active += 1;
  return true;
}

/** Gives back a slot taken by {@link admitRequest}. */
export function releaseRequest(state: ClusterState): void {
  state.active = Math.max(0, state.active - 1);
}
