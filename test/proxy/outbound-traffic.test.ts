// Outbound traffic management through a real `palisade proxy` process fed by
// the test ADS server, with curl (and a keep-alive node:http client for the
// bulk runs) as the app: weighted 80/20 split, header/prefix/regex/exact
// matching, redirect, direct_response, header operations, prefix/regex/host
// rewrites, hop-by-hop headers, request mirroring, and NACKs of what the build
// does not implement (a non-prime Maglev table, a filter_state hash policy)
// while the last good config serves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  percent,
  proxyClient,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
  waitAck,
  type ClusterSpec,
} from './ads-server.js';

const V1 = 'outbound|80|v1|reviews.ns.svc.cluster.local';
const V2 = 'outbound|80|v2|reviews.ns.svc.cluster.local';
const ECHO = clusterName('echo');
const SHADOW = clusterName('shadow');

function direct(body: string, status = 200): object {
  return { status, body: { inline_string: body } };
}

function virtualHosts(): object[] {
  return [
    virtualHost('reviews', [
      {
        match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
        route: { cluster: V2 },
      },
      {
        match: { prefix: '/' },
        route: {
          weighted_clusters: {
            clusters: [
              { name: V1, weight: { value: 80 } },
              { name: V2, weight: { value: 20 } },
            ],
          },
        },
      },
    ]),
    virtualHost('paths', [
      { match: { path: '/exact' }, direct_response: direct('exact') },
      { match: { safe_regex: { regex: '/items/[0-9]+' } }, direct_response: direct('regex') },
      {
        match: { prefix: '/old' },
        redirect: { path_redirect: '/new', response_code: 'FOUND' },
      },
      { match: { prefix: '/teapot' }, direct_response: direct('short and stout', 418) },
      { match: { prefix: '/pre' }, direct_response: direct('prefix') },
      { match: { prefix: '/' }, direct_response: direct('fallback') },
    ]),
    virtualHost('echo', [
      { match: { prefix: '/api/' }, route: { cluster: ECHO, prefix_rewrite: '/v2/' } },
      {
        match: { prefix: '/svc/' },
        route: {
          cluster: ECHO,
          // Envoy's documented example: RE2 substitution with \N capture references.
          regex_rewrite: {
            pattern: { regex: '^/svc/([^/]+)(/.*)$' },
            substitution: '\\2/instance/\\1',
          },
        },
      },
      {
        match: { prefix: '/host' },
        route: { cluster: ECHO, host_rewrite_literal: 'rewritten.example' },
      },
      {
        match: { prefix: '/mirror-default' },
        // No runtime_fraction: Envoy mirrors every request.
        route: { cluster: ECHO, request_mirror_policies: [{ cluster: SHADOW }] },
      },
      {
        match: { prefix: '/mirror' },
        route: {
          cluster: ECHO,
          request_mirror_policies: [
            { cluster: SHADOW, runtime_fraction: { default_value: percent(100) } },
          ],
        },
      },
      {
        match: { prefix: '/' },
        route: { cluster: ECHO },
        request_headers_to_add: [
          {
            header: { key: 'x-over', value: 'proxy' },
            append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
          },
          { header: { key: 'x-multi', value: 'proxy' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-new', value: 'added' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        ],
        request_headers_to_remove: ['x-secret'],
        response_headers_to_add: [
          {
            header: { key: 'x-resp', value: 'added' },
            append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
          },
        ],
        response_headers_to_remove: ['x-upstream-internal'],
      },
    ]),
  ];
}

test('outbound traffic management through a palisade proxy process', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const echo = await startUpstream('echo', (req, res) => {
    res.setHeader('x-upstream-internal', 'secret');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const shadow = await startUpstream('shadow', (_req, res) => {
    res.statusCode = 500;
    res.end('shadow answer (must be discarded)');
  });
  for (const app of [v1, v2, echo, shadow]) t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const clusters: ClusterSpec[] = [
    { name: V1, endpoints: [{ port: v1.port }] },
    { name: V2, endpoints: [{ port: v2.port }] },
    { name: ECHO, endpoints: [{ port: echo.port }] },
    { name: SHADOW, endpoints: [{ port: shadow.port }] },
  ];
  const good = outboundResources(clusters, virtualHosts());
  feed(ads, good, 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = proxy.via;
  await waitFor(async () => (await curl([...via, 'http://paths/exact'])).status === 200, 20_000);

  await t.test('weighted clusters 80/20 over 400 requests', async () => {
    const client = proxyClient(proxy.outbound);
    const counts = { v1: 0, v2: 0 };
    for (let batch = 0; batch < 20; batch += 1) {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => client.get('http://reviews/r')),
      );
      for (const r of results) {
        assert.equal(r.status, 200);
        if (r.body.startsWith('v1 ')) counts.v1 += 1;
        else if (r.body.startsWith('v2 ')) counts.v2 += 1;
        else assert.fail(`unexpected body ${r.body}`);
      }
    }
    client.close();
    const ratio = counts.v1 / 400;
    assert.ok(
      Math.abs(ratio - 0.8) <= 0.08,
      `v1 share ${String(ratio)} (${JSON.stringify(counts)})`,
    );
  });

  await t.test('header match sends end-user: jason to v2', async () => {
    for (let i = 0; i < 5; i += 1) {
      const r = await curl([...via, '-H', 'end-user: jason', 'http://reviews/r']);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'v2 /r');
    }
    // Another user still takes the weighted route (and no route ever matches "Jason" exactly).
    const other = await curl([...via, '-H', 'end-user: Jason', 'http://reviews.ns:80/r']);
    assert.equal(other.status, 200);
  });

  await t.test('exact, regex and prefix path matching; redirect; direct_response', async () => {
    const body = async (path: string): Promise<string> =>
      (await curl([...via, `http://paths${path}`])).body;
    assert.equal(await body('/exact'), 'exact');
    assert.equal(await body('/exact?q=1'), 'exact', 'the query is not part of the path');
    assert.equal(await body('/exact/more'), 'fallback');
    assert.equal(await body('/items/42'), 'regex');
    assert.equal(await body('/items/4x2'), 'fallback', 'safe_regex matches the whole path');
    assert.equal(await body('/prefix-anything'), 'prefix');
    assert.equal(await body('/PREFIX'), 'fallback', 'matching is case sensitive by default');
    const redirect = await curl([...via, 'http://paths/old/x']);
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers['location'], 'http://paths/new');
    const teapot = await curl([...via, 'http://paths/teapot']);
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, 'short and stout');
    assert.equal((await curl([...via, 'http://nowhere.ns/'])).status, 404);
  });

  await t.test('header operations, hop-by-hop headers, rewrites', async () => {
    const r = await curl([
      ...via,
      '-H',
      'x-over: client',
      '-H',
      'x-multi: client',
      '-H',
      'x-secret: s3cret',
      '-H',
      'Connection: x-drop-me',
      '-H',
      'x-drop-me: 1',
      '-H',
      'Keep-Alive: timeout=5',
      '-H',
      'TE: gzip',
      '-H',
      'Proxy-Authorization: Basic dTpw',
      '-H',
      'x-kept: yes',
      'http://echo/headers',
    ]);
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.headers['x-over'], 'proxy', 'OVERWRITE replaces the client value');
    assert.equal(seen.headers['x-multi'], 'client, proxy', 'APPEND keeps the client value');
    assert.equal(seen.headers['x-new'], 'added');
    assert.equal(seen.headers['x-secret'], undefined, 'request_headers_to_remove');
    assert.equal(seen.headers['x-kept'], 'yes');
    for (const name of ['x-drop-me', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection'])
      assert.equal(seen.headers[name], undefined, `${name} must not be forwarded`);
    assert.equal(seen.headers['host'], 'echo');
    assert.match(seen.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const withTe = JSON.parse(
      (await curl([...via, '-H', 'TE: trailers', 'http://echo/headers'])).body,
    ) as { headers: Record<string, string> };
    assert.equal(withTe.headers['te'], 'trailers', 'Envoy keeps `te: trailers` (gRPC needs it)');
    assert.equal(r.headers['x-resp'], 'added', 'response_headers_to_add');
    assert.equal(r.headers['x-upstream-internal'], undefined, 'response_headers_to_remove');

    const prefix = JSON.parse((await curl([...via, 'http://echo/api/users?id=7'])).body) as {
      url: string;
    };
    assert.equal(prefix.url, '/v2/users?id=7');
    const regex = JSON.parse((await curl([...via, 'http://echo/svc/reviews/x/y?z=1'])).body) as {
      url: string;
    };
    assert.equal(regex.url, '/x/y/instance/reviews?z=1');
    const host = JSON.parse((await curl([...via, 'http://echo/host/a'])).body) as {
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(host.headers['host'], 'rewritten.example');
    assert.equal(host.url, '/host/a');
  });

  await t.test('request mirroring: shadow host, primary response', async () => {
    const r = await curl([...via, 'http://echo/mirror/a']);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'echo', 'the client gets the primary response');
    await waitFor(() => shadow.seen.some((s) => s.url === '/mirror/a'), 5000).catch(
      (error: unknown) => {
        throw new Error(
          `${String(error)}; shadow saw ${JSON.stringify(shadow.seen)}\n${proxy.output()}`,
        );
      },
    );
    const mirrored = shadow.seen.find((s) => s.url === '/mirror/a');
    assert.equal(mirrored?.headers.host, 'echo-shadow');
    const d = await curl([...via, 'http://echo/mirror-default/b']);
    assert.equal(d.status, 200);
    await waitFor(() => shadow.seen.some((s) => s.url === '/mirror-default/b'), 5000);
    assert.ok(echo.seen.some((s) => s.url === '/mirror-default/b' && s.headers.host === 'echo'));
  });

  await t.test('unsupported hashing config is NACKed; the last good config serves', async () => {
    await waitAck(ads, TYPE_URLS.route, 'v1');
    const [cluster] = good[TYPE_URLS.cluster] ?? [];
    ads.set(TYPE_URLS.cluster, 'v2', [
      ...(good[TYPE_URLS.cluster] ?? []).slice(1),
      { ...cluster, lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: '1000' } } },
    ]);
    const clusterNack = await waitFor(
      () =>
        ads.requests.find((r) => r.type_url === TYPE_URLS.cluster && r.error_detail !== undefined),
      10_000,
    );
    assert.match(
      clusterNack?.error_detail?.message ?? '',
      /maglev_lb_config\.table_size: 1000 must be a prime/,
    );
    assert.equal(clusterNack?.version_info, 'v1', 'the NACK carries the last accepted version');

    const hashed = outboundResources(clusters, [
      virtualHost('reviews', [
        {
          match: { prefix: '/' },
          route: { cluster: V2, hash_policy: [{ filter_state: { key: 'io.istio.peer' } }] },
        },
      ]),
    ]);
    ads.set(TYPE_URLS.route, 'v2', hashed[TYPE_URLS.route] ?? []);
    const routeNack = await waitFor(
      () =>
        ads.requests.find((r) => r.type_url === TYPE_URLS.route && r.error_detail !== undefined),
      10_000,
    );
    assert.match(routeNack?.error_detail?.message ?? '', /unsupported hash policy filter_state/);
    // Still the v1 config: the weighted route (v1 answers too) and the v1 endpoints of every cluster.
    const client = proxyClient(proxy.outbound);
    const bodies = await Promise.all(
      Array.from({ length: 20 }, () => client.get('http://reviews/after-nack')),
    );
    client.close();
    assert.ok(bodies.every((b) => b.status === 200));
    assert.ok(
      bodies.some((b) => b.body.startsWith('v1 ')),
      'the v1 weighted route still serves',
    );
    assert.equal((await curl([...via, 'http://paths/exact'])).body, 'exact');
  });
});
