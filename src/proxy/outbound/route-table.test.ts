// Route selection: Envoy's virtual-host domain precedence, first-match route
// order, path/prefix/regex, header and query matchers, weighted clusters,
// redirects, direct responses and prefix rewrites; and a property test that no
// authority/path string makes selection throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  compileListenerHcms,
  compileRouteConfig,
  hcmForPort,
  routeRequest,
  CHOSEN_HOSTS_LIMIT,
  searchVirtualHosts,
  selectVirtualHost,
} from './route-table.js';

const raw = {
  '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  name: '80',
  virtual_hosts: [
    {
      name: 'any',
      domains: ['*'],
      routes: [{ match: { prefix: '/' }, route: { cluster: 'any' } }],
    },
    {
      name: 'suffix',
      domains: ['*.example.com'],
      routes: [{ match: { prefix: '/' }, route: { cluster: 'suffix' } }],
    },
    {
      name: 'reviews',
      domains: ['reviews', 'reviews:9080'],
      routes: [
        { match: { path: '/exact' }, route: { cluster: 'exact' } },
        { match: { safe_regex: { regex: '/id/[0-9]+' } }, route: { cluster: 'regex' } },
        {
          match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
          route: { cluster: 'v2' },
        },
        {
          match: { prefix: '/', query_parameters: [{ name: 'v', string_match: { exact: '3' } }] },
          route: { cluster: 'v3' },
        },
        {
          match: { prefix: '/gone' },
          direct_response: { status: 410, body: { inline_string: 'gone' } },
        },
        {
          match: { prefix: '/move' },
          redirect: { host_redirect: 'x', response_code: 'TEMPORARY_REDIRECT' },
        },
        { match: { prefix: '/api' }, route: { cluster: 'v1', prefix_rewrite: '/' } },
        {
          match: { prefix: '/' },
          route: {
            weighted_clusters: {
              clusters: [
                { name: 'v1', weight: { value: 75 } },
                { name: 'v2', weight: { value: 25 } },
              ],
            },
          },
        },
      ],
    },
  ],
};

const config = compileRouteConfig(raw);

const req = (authority: string, path: string, headers: Record<string, string> = {}) => ({
  authority,
  path,
  headers,
});

test('virtual host precedence: exact, then suffix wildcard, then *', () => {
  assert.equal(selectVirtualHost(config, 'REVIEWS:9080')?.name, 'reviews');
  assert.equal(selectVirtualHost(config, 'a.example.com')?.name, 'suffix');
  assert.equal(selectVirtualHost(config, 'elsewhere')?.name, 'any');
});

test('the virtual host chosen per authority is kept per config, bounded, same as a search', () => {
  const authorities = ['reviews', 'REVIEWS:9080', 'Reviews', 'a.example.com', 'elsewhere', ''];
  // Asked twice: the kept answer is the searched one (case and port as the search reads them).
  for (let round = 0; round < 2; round += 1)
    for (const a of authorities)
      assert.equal(selectVirtualHost(config, a), searchVirtualHosts(config, a), a);
  // A config with no catch-all: no host for an unknown authority, and it stays none.
  const only = compileRouteConfig({
    name: 'only',
    virtual_hosts: [{ name: 'reviews', domains: ['reviews'], routes: [] }],
  });
  assert.equal(selectVirtualHost(only, 'elsewhere'), undefined);
  assert.equal(selectVirtualHost(only, 'elsewhere'), undefined);
  assert.equal(selectVirtualHost(only, 'reviews')?.name, 'reviews');
  // A new config (an RDS update) is asked afresh, not answered from the old one's memo.
  const moved = compileRouteConfig({
    name: 'only',
    virtual_hosts: [{ name: 'moved', domains: ['elsewhere'], routes: [] }],
  });
  assert.equal(selectVirtualHost(moved, 'elsewhere')?.name, 'moved');
  assert.equal(selectVirtualHost(only, 'elsewhere'), undefined);
  // Invented Host values never grow the memo past its limit, and answers stay right after.
  for (let i = 0; i < CHOSEN_HOSTS_LIMIT * 2 + 5; i += 1)
    assert.equal(selectVirtualHost(config, `h${String(i)}.example.com`)?.name, 'suffix');
  assert.equal(selectVirtualHost(config, 'REVIEWS:9080')?.name, 'reviews');
  // A long authority is searched, not kept.
  assert.equal(selectVirtualHost(config, `${'a'.repeat(4000)}.example.com`)?.name, 'suffix');
});

test('route matching in order with path, regex, headers and query', () => {
  const draw = (): number => 0;
  assert.deepEqual(routeRequest(config, req('reviews', '/exact'), draw), {
    kind: 'cluster',
    cluster: 'exact',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/id/42'), draw), {
    kind: 'cluster',
    cluster: 'regex',
  });
  assert.notDeepEqual(routeRequest(config, req('reviews', '/id/4x'), draw), {
    kind: 'cluster',
    cluster: 'regex',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/x', { 'end-user': 'jason' }), draw), {
    kind: 'cluster',
    cluster: 'v2',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/x?v=3'), draw), {
    kind: 'cluster',
    cluster: 'v3',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/gone'), draw), {
    kind: 'direct',
    status: 410,
    body: 'gone',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/move'), draw), {
    kind: 'redirect',
    status: 307,
    location: 'http://x/move',
  });
  assert.deepEqual(routeRequest(config, req('reviews', '/api/a'), draw), {
    kind: 'cluster',
    cluster: 'v1',
    prefixRewrite: '/',
    matchedPrefix: '/api',
  });
});

test('weighted clusters split by weight', () => {
  const at = (point: number): unknown => routeRequest(config, req('reviews', '/w'), () => point);
  assert.deepEqual(at(0), { kind: 'cluster', cluster: 'v1' });
  assert.deepEqual(at(74), { kind: 'cluster', cluster: 'v1' });
  assert.deepEqual(at(75), { kind: 'cluster', cluster: 'v2' });
  assert.deepEqual(at(99), { kind: 'cluster', cluster: 'v2' });
});

test('no virtual host or route: undefined (404 NR)', () => {
  const only = compileRouteConfig({ ...raw, virtual_hosts: raw.virtual_hosts.slice(2) });
  assert.equal(
    routeRequest(only, req('nobody', '/'), () => 0),
    undefined,
  );
});

test('property: any authority and origin-form path routes somewhere (catch-all prefix /) without throwing', () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.string().map((s) => `/${s}`),
      fc.dictionary(fc.string(), fc.string()),
      (authority, path, headers) => {
        const decision = routeRequest(config, req(authority, path, headers), () => 0);
        assert.ok(decision !== undefined);
      },
    ),
  );
});

test('the HCM for a port: the first chain that fits, in chain order (a port-less chain fits all)', () => {
  const hcm = (name: string): object => ({ rds: { route_config_name: name } });
  const at = (port: number) => ({ filter_chain_match: { destination_port: { value: port } } });
  const listener = compileListenerHcms({
    filter_chains: [
      { ...at(80), filters: [{ typed_config: hcm('80') }] },
      { filters: [{ typed_config: { stat_prefix: 'tcp', cluster: 'tcp' } }] },
      { filters: [{ typed_config: hcm('any') }] },
      { ...at(81), filters: [{ typed_config: hcm('81') }] },
      { ...at(80), filters: [{ typed_config: hcm('80 again') }] },
    ],
  });
  const routeName = (port: number): unknown => hcmForPort(listener, port)?.routeConfigName;
  assert.equal(routeName(80), '80');
  assert.equal(routeName(81), 'any', 'a port-less chain ahead of it wins');
  assert.equal(routeName(9), 'any');
  assert.equal(hcmForPort(compileListenerHcms({ filter_chains: [] }), 80), undefined);
});
