// The router layer without processes: request targets, the outbound
// listener's chain by destination port, route lookup through RDS, and the
// upstream head (host rewrite, header operations, prefix/regex rewrites,
// trace context).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import { compileHcm } from './hcm-config.js';
import { compileListenerHcms, compileRouteConfig, decide } from './route-table.js';
import { connectTargetOf, hcmFor, routeIn, targetOf, upstreamHead } from './router.js';

const listener = {
  name: 'outbound',
  filter_chains: [
    {
      filter_chain_match: { destination_port: { value: 9080 } },
      filters: [{ typed_config: { rds: { route_config_name: '9080' } } }],
    },
  ],
};
const routes = {
  name: '9080',
  virtual_hosts: [
    {
      name: 'reviews',
      domains: ['reviews', 'reviews:9080'],
      request_headers_to_add: [{ header: { key: 'x-vhost', value: 'v' } }],
      routes: [
        {
          match: { prefix: '/api/' },
          route: {
            cluster: 'reviews-v2',
            prefix_rewrite: '/v2/',
            host_rewrite_literal: 'reviews.internal',
          },
          request_headers_to_remove: ['x-secret'],
        },
        {
          match: { prefix: '/r/' },
          route: {
            cluster: 'reviews',
            regex_rewrite: { pattern: { regex: '^/r/(\\d+)$' }, substitution: '/reviews/\\1' },
          },
        },
      ],
    },
  ],
};
const snapshot = {
  listener: new Map([['outbound', listener]]),
  route: new Map([['9080', routes]]),
  cluster: new Map(),
  endpoint: new Map(),
  typed: {
    routes: new Map([['9080', compileRouteConfig(routes)]]),
    listeners: new Map([['outbound', compileListenerHcms(listener)]]),
  },
} as unknown as XdsSnapshot;

test('targets: absolute-form, origin-form with Host, CONNECT authority-form', () => {
  assert.deepEqual(targetOf('http://reviews:9080/a?b=1', undefined), {
    authority: 'reviews:9080',
    host: 'reviews',
    port: 9080,
    path: '/a?b=1',
  });
  assert.deepEqual(targetOf('/x', 'ratings', 9443), {
    authority: 'ratings',
    host: 'ratings',
    port: 9443,
    path: '/x',
  });
  assert.equal(targetOf('*', 'x'), undefined);
  assert.equal(targetOf('/x', undefined), undefined);
  // Answers are reused (a URL seen before, the last Host): asked again, in any order, they agree.
  const asks: [string, string | undefined, number][] = [
    ['http://Reviews:080/a/../b?c', undefined, 80],
    ['http://reviews:99999/', undefined, 80],
    ['http://reviews:9080/a?b=1', undefined, 80],
    [`http://reviews/${'x'.repeat(600)}`, undefined, 80],
    ['/y', 'ratings:9080', 80],
    ['/y', 'ratings:9080', 9443],
    ['/z', 'ratings', 80],
    ['/z', 'ratings', 9443],
  ];
  const first = asks.map(([u, h, d]) => targetOf(u, h, d));
  assert.deepEqual(first.slice(0, 2), [
    { authority: 'reviews', host: 'reviews', port: 80, path: '/b?c' },
    undefined,
  ]);
  assert.equal(first[3]?.path.length, 601);
  assert.deepEqual(
    first.slice(4).map((t) => t?.port),
    [9080, 9080, 80, 9443],
  );
  for (const [i, [u, h, d]] of [...asks.entries()].reverse())
    assert.deepEqual(targetOf(u, h, d), first[i], `${u} ${String(h)} ${String(d)}`);
  assert.deepEqual(connectTargetOf('[::1]:443'), {
    authority: '[::1]:443',
    host: '::1',
    port: 443,
    path: '/',
  });
  assert.equal(connectTargetOf('no-port'), undefined);
});

test('the outbound chain is chosen by destination port; the route through its RDS', () => {
  assert.equal(hcmFor(snapshot, 'outbound', 9999, undefined), undefined);
  const hcm = hcmFor(snapshot, 'outbound', 9080, undefined);
  assert.ok(hcm !== undefined);
  const request = { authority: 'reviews:9080', path: '/api/x', headers: {} };
  const match = routeIn(snapshot, hcm, request);
  assert.equal(match?.host.name, 'reviews');
  assert.equal(routeIn(snapshot, hcm, { ...request, authority: 'other' }), undefined);
  // A gateway's own HCM wins over the listener's.
  const own = compileHcm({ rds: { route_config_name: 'missing' } });
  assert.equal(hcmFor(snapshot, 'outbound', 9080, own), own);
  assert.equal(routeIn(snapshot, own, request), undefined);
});

test('upstream head: host rewrite, header operations, prefix and regex rewrites, trace context', () => {
  const hcm = hcmFor(snapshot, 'outbound', 9080, undefined);
  const headers = { host: 'reviews:9080', 'x-secret': 's', connection: 'keep-alive' };
  const target = targetOf('http://reviews:9080/api/list?page=2', undefined)!;
  const match = routeIn(snapshot, hcm, { ...target, headers })!;
  const decision = decide(match.entry, { ...target, headers }, () => 0);
  if (decision.kind !== 'cluster') throw new Error('expected a cluster decision');
  const up = upstreamHead(headers, target, match, decision, 1);
  assert.equal(up.path, '/v2/list?page=2');
  assert.equal(up.headers['host'], 'reviews.internal');
  assert.equal(up.headers['x-vhost'], 'v');
  assert.equal(up.headers['x-secret'], undefined);
  assert.equal(up.headers['connection'], undefined, 'hop-by-hop headers are not forwarded');
  assert.match(
    String(up.headers['traceparent']),
    new RegExp(`^00-${up.span.traceId}-${up.span.spanId}-01$`),
  );
  assert.ok(typeof up.headers['x-request-id'] === 'string');

  const t2 = targetOf('http://reviews/r/42?x=1', undefined)!;
  const m2 = routeIn(snapshot, hcm, { ...t2, headers: {} })!;
  const d2 = decide(m2.entry, { ...t2, headers: {} }, () => 0);
  if (d2.kind !== 'cluster') throw new Error('expected a cluster decision');
  assert.equal(upstreamHead({}, t2, m2, d2, 0).path, '/reviews/42?x=1');
});
