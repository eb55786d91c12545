// The cluster layer's policy without processes: LB picks per policy, outlier
// ejection and its max_ejection_percent bound, health-check panic mode and
// circuit breaking (Envoy's cluster.v3 semantics, see load-balancer.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterPolicy } from '../config/cluster-config.js';
import {
  admitRequest,
  createClusterState,
  endpointKey,
  observeOutcome,
  pickEndpoint,
  releaseRequest,
  type Endpoint,
} from './load-balancer.js';

const hosts: Endpoint[] = [
  { host: '10.0.0.1', port: 80 },
  { host: '10.0.0.2', port: 80 },
  { host: '10.0.0.3', port: 80 },
];
const keys = (picked: (Endpoint | undefined)[]): string[] =>
  picked.map((e) => (e === undefined ? '-' : endpointKey(e)));

test('ROUND_ROBIN cycles through the hosts; avoid skips the previous host for a retry', () => {
  const policy = clusterPolicy({ name: 'rr' });
  const state = createClusterState();
  const picks = keys(Array.from({ length: 6 }, () => pickEndpoint(policy, state, hosts)));
  assert.deepEqual(new Set(picks.slice(0, 3)).size, 3);
  assert.deepEqual(picks.slice(0, 3), picks.slice(3));
  for (let i = 0; i < 10; i += 1)
    assert.notEqual(
      endpointKey(pickEndpoint(policy, state, hosts, { avoid: '10.0.0.2:80' }) ?? hosts[1]!),
      '10.0.0.2:80',
    );
  // A single host is still used when it is the one to avoid.
  assert.equal(pickEndpoint(policy, state, [hosts[0]!], { avoid: '10.0.0.1:80' }), hosts[0]);
});

test('LEAST_REQUEST prefers the less loaded of two random choices', () => {
  const policy = clusterPolicy({ name: 'lr', lb_policy: 'LEAST_REQUEST' });
  const state = createClusterState();
  state.activeByEndpoint.set('10.0.0.1:80', 100);
  state.activeByEndpoint.set('10.0.0.2:80', 100);
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i += 1) {
    const k = endpointKey(pickEndpoint(policy, state, hosts)!);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  // The idle host wins every draw it is part of: 1 − (2/3)² ≈ 56 %, the loaded ones ≈ 22 % each.
  assert.ok((counts.get('10.0.0.3:80') ?? 0) > 120, JSON.stringify([...counts]));
});

test('RING_HASH sends equal hashes to the same host and spreads different ones', () => {
  const policy = clusterPolicy({ name: 'rh', lb_policy: 'RING_HASH' });
  const state = createClusterState();
  const first = pickEndpoint(policy, state, hosts, { hash: 12345 });
  for (let i = 0; i < 20; i += 1)
    assert.equal(pickEndpoint(policy, state, hosts, { hash: 12345 }), first);
  const spread = new Set(
    Array.from({ length: 200 }, (_, i) =>
      endpointKey(pickEndpoint(policy, state, hosts, { hash: (i * 2654435761) >>> 0 })!),
    ),
  );
  assert.equal(spread.size, 3);
});

test('outlier detection ejects after consecutive_5xx for base_ejection_time × times ejected', () => {
  const policy = clusterPolicy({
    name: 'od',
    outlier_detection: {
      consecutive_5xx: { value: 2 },
      base_ejection_time: { seconds: 10 },
      max_ejection_percent: { value: 100 },
    },
  });
  const state = createClusterState();
  const bad = '10.0.0.1:80';
  observeOutcome(policy, state, bad, 503, 0);
  observeOutcome(policy, state, bad, 200, 0); // a success resets the count
  observeOutcome(policy, state, bad, 503, 0);
  assert.equal(state.ejectedUntil.get(bad), undefined);
  observeOutcome(policy, state, bad, undefined, 1_000); // a reset counts as a 5xx
  assert.equal(state.ejectedUntil.get(bad), 11_000);
  for (let i = 0; i < 30; i += 1)
    assert.notEqual(endpointKey(pickEndpoint(policy, state, hosts, { now: 5_000 })!), bad);
  // Back after the ejection time; a second ejection lasts twice as long.
  assert.ok(
    Array.from({ length: 30 }, () => pickEndpoint(policy, state, hosts, { now: 12_000 })).some(
      (e) => e !== undefined && endpointKey(e) === bad,
    ),
  );
  // An ejection that ran out is forgotten; how many times the host was ejected is not.
  assert.equal(state.ejectedUntil.size, 0);
  assert.equal(state.ejections.get(bad), 1);
  observeOutcome(policy, state, bad, 500, 12_000);
  observeOutcome(policy, state, bad, 500, 12_000);
  assert.equal(state.ejectedUntil.get(bad), 32_000);
});

test('one usable host is picked by every policy; round robin still turns', () => {
  const one = [{ host: '10.0.0.9', port: 80 }];
  for (const lb of ['LEAST_REQUEST', 'RANDOM', 'ROUND_ROBIN', 'RING_HASH', 'MAGLEV'] as const) {
    const policy = clusterPolicy({ name: `one-${lb}`, lb_policy: lb });
    const state = createClusterState();
    for (let i = 0; i < 5; i += 1)
      assert.deepEqual(pickEndpoint(policy, state, one, { hash: i }), one[0], lb);
    assert.equal(state.cursor, lb === 'ROUND_ROBIN' ? 5 : 0, lb);
  }
});

test('outlier detection never ejects more than max_ejection_percent of hosts (at least one)', () => {
  const policy = clusterPolicy({
    name: 'od10',
    outlier_detection: { consecutive_5xx: { value: 1 } }, // max_ejection_percent 10 %
  });
  const state = createClusterState();
  observeOutcome(policy, state, '10.0.0.1:80', 500, 0);
  observeOutcome(policy, state, '10.0.0.2:80', 500, 0);
  // Two of three ejected exceeds the bound (one host): all hosts are used again.
  const picks = new Set(
    keys(Array.from({ length: 9 }, () => pickEndpoint(policy, state, hosts, { now: 1 }))),
  );
  assert.equal(picks.size, 3);
  // Without outlier_detection nothing is ever counted.
  const none = createClusterState();
  observeOutcome(clusterPolicy({ name: 'plain' }), none, '10.0.0.1:80', 500, 0);
  assert.equal(none.failures.size, 0);
});

test('active health checks skip unhealthy hosts unless fewer than half are healthy (panic)', () => {
  const policy = clusterPolicy({ name: 'hc' });
  const state = createClusterState();
  const oneDown = (k: string): boolean => k !== '10.0.0.1:80';
  assert.ok(
    keys(
      Array.from({ length: 6 }, () => pickEndpoint(policy, state, hosts, { healthy: oneDown })),
    ).every((k) => k !== '10.0.0.1:80'),
  );
  const twoDown = (k: string): boolean => k === '10.0.0.3:80';
  const panic = new Set(
    keys(Array.from({ length: 6 }, () => pickEndpoint(policy, state, hosts, { healthy: twoDown }))),
  );
  assert.equal(panic.size, 3);
});

test('circuit breaking: max_requests slots are taken and given back; defaults are 1024', () => {
  const policy = clusterPolicy({
    name: 'cb',
    circuit_breakers: { thresholds: [{ max_requests: { value: 2 }, max_retries: { value: 1 } }] },
  });
  assert.equal(policy.maxRetries, 1);
  const state = createClusterState();
  assert.equal(admitRequest(policy, state), true);
  assert.equal(admitRequest(policy, state), true);
  assert.equal(
    admitRequest(policy, state),
    false,
    'the third concurrent request overflows (503 UO)',
  );
  releaseRequest(state);
  assert.equal(admitRequest(policy, state), true);
  const defaults = clusterPolicy({ name: 'd' });
  assert.deepEqual(
    [defaults.maxRequests, defaults.maxPending, defaults.maxRetries],
    [1024, 1024, 3],
  );
});

test('an endpoint key is host:port, the same string for the same endpoint each time', () => {
  const a = { host: '10.0.0.1', port: 9080 };
  assert.equal(endpointKey(a), '10.0.0.1:9080');
  assert.equal(endpointKey(a), endpointKey({ host: '10.0.0.1', port: 9080 }));
  assert.equal(endpointKey({ host: '10.0.0.1', port: 9081 }), '10.0.0.1:9081');
  assert.equal(endpointKey({ host: 'fd00::1', port: 80 }), 'fd00::1:80');
  assert.equal(endpointKey(a), '10.0.0.1:9080');
});
