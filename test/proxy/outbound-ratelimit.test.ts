// Local rate limiting (Envoy's envoy.filters.http.local_ratelimit, the
// config Istio's "Enabling Rate Limits using Envoy" task applies) through a
// real `palisade proxy` process fed by the test ADS server, with curl as the
// client: the HCM's token bucket for every route, a route's own bucket
// replacing it, a shadow (enabled, not enforced) route, refill, Istio's
// metrics flag RL, gRPC clients seeing UNAVAILABLE, and a NACK for what is
// not implemented (descriptors). The same filter on an inbound listener
// (Istio's SIDECAR_INBOUND example) limits what reaches the local app.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';
import { freePort, waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  duration,
  feed,
  insertHttpFilter,
  outboundResources,
  percent,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
} from './ads-server.js';

const API = clusterName('api');

function limit(maxTokens: number, fillMs: number, extra: Record<string, unknown> = {}): object {
  return {
    '@type': EXTENSION_TYPE_URLS.localRateLimit,
    stat_prefix: 'http_local_rate_limiter',
    token_bucket: { max_tokens: maxTokens, fill_interval: duration(fillMs) },
    filter_enabled: { runtime_key: 'local_rate_limit_enabled', default_value: percent(100) },
    filter_enforced: { runtime_key: 'local_rate_limit_enforced', default_value: percent(100) },
    ...extra,
  };
}

const HOUR = 3_600_000;

function resources(filterExtra: Record<string, unknown> = {}): Record<string, object[]> {
  const perRoute = (config: object): object => ({
    'envoy.filters.http.local_ratelimit': config,
  });
  const out = outboundResources(
    [],
    [
      virtualHost('api', [
        {
          match: { prefix: '/route' },
          route: { cluster: API },
          typed_per_filter_config: perRoute(
            limit(2, HOUR, { status: { code: 'ServiceUnavailable' } }),
          ),
        },
        {
          match: { prefix: '/shadow' },
          route: { cluster: API },
          typed_per_filter_config: perRoute(
            limit(1, HOUR, {
              filter_enforced: { runtime_key: 'k', default_value: percent(0) },
              request_headers_to_add_when_not_enforced: [
                { header: { key: 'x-rate-limited', value: 'shadow' } },
              ],
            }),
          ),
        },
        {
          match: { prefix: '/refill' },
          route: { cluster: API },
          typed_per_filter_config: perRoute(limit(1, 3000)),
        },
        { match: { prefix: '/' }, route: { cluster: API } },
      ]),
    ],
  );
  insertHttpFilter(out, {
    name: 'envoy.filters.http.local_ratelimit',
    typed_config: limit(3, HOUR, {
      response_headers_to_add: [
        {
          append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
          header: { key: 'x-local-rate-limit', value: 'true' },
        },
      ],
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      ...filterExtra,
    }),
  });
  return out;
}

test('local rate limiting through a palisade proxy process', async (t) => {
  const api = await startUpstream('api', (req, res) => {
    res.end(`api ${req.url} ${String(req.headers['x-rate-limited'] ?? '-')}`);
  });
  t.after(() => api.close());
  const ads = await startTestAdsServer(t);
  const withCluster = (r: Record<string, object[]>): Record<string, object[]> => {
    const clusters = outboundResources([{ name: API, endpoints: [{ port: api.port }] }], []);
    return {
      ...r,
      [TYPE_URLS.cluster]: clusters[TYPE_URLS.cluster] ?? [],
      [TYPE_URLS.endpoint]: clusters[TYPE_URLS.endpoint] ?? [],
    };
  };
  feed(ads, withCluster(resources()), 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = proxy.via;
  await waitFor(async () => (await curl([...via, 'http://api/route/warm'])).status === 200, 20_000);

  await t.test("a route's own bucket replaces the listener's; its status is used", async () => {
    const before = api.seen.length;
    const second = await curl([...via, 'http://api/route/2']);
    assert.equal(second.status, 200, 'the warm-up took the first of two tokens');
    const third = await curl([...via, 'http://api/route/3']);
    assert.equal(third.status, 503);
    assert.equal(third.body, 'local_rate_limited');
    assert.equal(third.headers['x-envoy-ratelimited'], 'true');
    assert.equal(api.seen.length, before + 1, 'a limited request reached the app');
  });

  await t.test(
    "other routes share the HCM's bucket (3 tokens), with x-ratelimit headers",
    async () => {
      const answers = [];
      for (const path of ['/a', '/b', '/c', '/d'])
        answers.push(await curl([...via, `http://api${path}`]));
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 429],
      );
      const [first, , third, limited] = answers;
      assert.ok(first !== undefined && third !== undefined && limited !== undefined);
      assert.equal(first.headers['x-ratelimit-limit'], '3');
      assert.equal(first.headers['x-ratelimit-remaining'], '2');
      assert.equal(third.headers['x-ratelimit-remaining'], '0');
      assert.equal(limited.body, 'local_rate_limited');
      assert.equal(limited.headers['x-local-rate-limit'], 'true');
      assert.equal(limited.headers['x-envoy-ratelimited'], 'true');
      assert.match(limited.headers['x-ratelimit-reset'] ?? '', /^\d+$/);
    },
  );

  await t.test('enabled but not enforced: requests pass, marked for the app', async () => {
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await curl([...via, 'http://api/shadow']));
    assert.deepEqual(
      answers.map((a) => [a.status, a.body]),
      [
        [200, 'api /shadow -'],
        [200, 'api /shadow shadow'],
        [200, 'api /shadow shadow'],
      ],
    );
  });

  await t.test('the bucket refills every fill_interval', async () => {
    assert.equal((await curl([...via, 'http://api/refill'])).status, 200);
    assert.equal((await curl([...via, 'http://api/refill'])).status, 429);
    await sleep(3500);
    assert.equal((await curl([...via, 'http://api/refill'])).status, 200);
  });

  await t.test(
    'limited requests are in the metrics with flag RL and in the access log',
    async () => {
      const metrics = await (
        await fetch(`http://127.0.0.1:${String(proxy.admin)}/stats/prometheus`)
      ).text();
      assert.match(
        metrics,
        /istio_requests_total\{[^}]*response_code="429"[^}]*response_flags="RL"/,
      );
      // Access-log lines are written in batches (every 50 ms).
      await waitFor(() =>
        proxy.accessLog().some((l) => l['response_code'] === 429 && l['response_flags'] === 'RL'),
      );
    },
  );

  await t.test(
    'descriptors are not implemented: the listener is NACKed, the old one serves',
    async () => {
      feed(
        ads,
        withCluster(
          resources({
            descriptors: [
              {
                entries: [{ key: 'k', value: 'v' }],
                token_bucket: { max_tokens: 1, fill_interval: duration(1000) },
              },
            ],
          }),
        ),
        'v2',
      );
      await waitFor(() =>
        ads.requests.some(
          (r) =>
            r.type_url === TYPE_URLS.listener && /descriptors/.test(r.error_detail?.message ?? ''),
        ),
      );
      // The listener (and its exhausted bucket) is the old one; routes took v2 (RDS is separate).
      const after = await curl([...via, 'http://api/after-nack']);
      assert.equal(after.status, 429, 'the rejected listener replaced the old one');
    },
  );
  await t.test('on an inbound listener the filter limits what reaches the app', async () => {
    const port = await freePort();
    const cluster = `inbound|${String(port)}||`;
    const r = withCluster(resources());
    (r[TYPE_URLS.cluster] ??= []).push({
      '@type': TYPE_URLS.cluster,
      name: cluster,
      type: 'STATIC',
      load_assignment: {
        cluster_name: cluster,
        endpoints: [
          {
            lb_endpoints: [
              {
                endpoint: {
                  address: { socket_address: { address: '127.0.0.1', port_value: api.port } },
                },
              },
            ],
          },
        ],
      },
    });
    (r[TYPE_URLS.listener] ??= []).push({
      '@type': TYPE_URLS.listener,
      name: `inbound|${String(port)}`,
      address: { socket_address: { address: '127.0.0.1', port_value: port } },
      filter_chains: [
        {
          name: 'plaintext',
          filter_chain_match: { transport_protocol: 'raw_buffer' },
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
                stat_prefix: `inbound_${String(port)}`,
                route_config: {
                  name: `inbound|${String(port)}`,
                  virtual_hosts: [
                    {
                      name: 'inbound',
                      domains: ['*'],
                      routes: [{ match: { prefix: '/' }, route: { cluster } }],
                    },
                  ],
                },
                http_filters: [
                  { name: 'envoy.filters.http.local_ratelimit', typed_config: limit(2, HOUR) },
                  {
                    name: 'envoy.filters.http.router',
                    typed_config: { '@type': EXTENSION_TYPE_URLS.router },
                  },
                ],
              },
            },
          ],
        },
      ],
    });
    feed(ads, r, 'v3');
    const url = `http://127.0.0.1:${String(port)}/inbound`;
    await waitFor(async () => (await curl([url])).status === 200, 20_000);
    const before = api.seen.length;
    const second = await curl([url]);
    const third = await curl([url]);
    assert.equal(second.status, 200);
    assert.equal(third.status, 429);
    assert.equal(third.body, 'local_rate_limited');
    assert.equal(third.headers['x-envoy-ratelimited'], 'true');
    assert.equal(api.seen.length, before + 1, 'a limited request reached the app');
  });
});
