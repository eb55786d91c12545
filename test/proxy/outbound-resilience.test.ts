// Outbound resilience through a real `palisade proxy` process fed by the test
// ADS server, curl as the app: fault injection (abort, delay vs. a caller's
// timeout as in Istio's Bookinfo, 50% aborts), retries (5xx with
// x-envoy-attempt-count, exhausted retries, bodies not retried, connect
// failures), timeouts and per-try timeouts, circuit breaking and outlier
// detection. Response flags are read from `x-palisade-response-flags` on
// locally generated replies and from the proxy's JSON access log otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { freePort, waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  duration,
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

const OK = clusterName('ok');
const FLAKY = clusterName('flaky');
const SLOW = clusterName('slow');
const SLOW_OR_FAST = clusterName('slow-or-fast');
const DEAD = clusterName('dead');
const DEAD_OR_OK = clusterName('dead-or-ok');
const BREAKER = clusterName('breaker');
const OUTLIER = clusterName('outlier');
const LOOP = clusterName('loop');

function fault(config: object): object {
  return {
    'envoy.filters.http.fault': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      ...config,
    },
  };
}

function route(cluster: string, extra: object = {}, routeExtra: object = {}): object[] {
  return [{ match: { prefix: '/' }, route: { cluster, ...extra }, ...routeExtra }];
}

function virtualHosts(): object[] {
  const retry = (n: number, retryOn = '5xx'): object => ({
    retry_policy: { retry_on: retryOn, num_retries: { value: n } },
  });
  return [
    virtualHost(
      'abort',
      route(
        OK,
        {},
        {
          typed_per_filter_config: fault({ abort: { http_status: 500, percentage: percent(100) } }),
        },
      ),
    ),
    virtualHost(
      'abort-half',
      route(
        OK,
        {},
        {
          typed_per_filter_config: fault({ abort: { http_status: 503, percentage: percent(50) } }),
        },
      ),
    ),
    // Bookinfo's case scaled down: the callee's route delays 300 ms, the caller's route times out after 100 ms.
    virtualHost(
      'ratings',
      route(
        OK,
        {},
        {
          typed_per_filter_config: fault({
            delay: { fixed_delay: duration(300), percentage: percent(100) },
          }),
        },
      ),
    ),
    virtualHost(
      'reviews',
      route(LOOP, { timeout: duration(100), host_rewrite_literal: 'ratings' }),
    ),
    // Delay and timeout on one route: Envoy's route timeout starts when the router gets the
    // request, after the fault filter's delay, so the request succeeds.
    virtualHost(
      'delay-same-route',
      route(
        OK,
        { timeout: duration(100) },
        {
          typed_per_filter_config: fault({
            delay: { fixed_delay: duration(300), percentage: percent(100) },
          }),
        },
      ),
    ),
    virtualHost('retry2', route(FLAKY, retry(2))),
    virtualHost('retry1', route(FLAKY, retry(1))),
    virtualHost('dead', route(DEAD)),
    virtualHost('dead-retry', route(DEAD, retry(2, 'connect-failure'))),
    virtualHost('dead-or-ok', route(DEAD_OR_OK, retry(2, 'connect-failure'))),
    virtualHost('slow', route(SLOW, { timeout: duration(200) })),
    virtualHost(
      'per-try',
      route(SLOW_OR_FAST, {
        timeout: duration(3000),
        retry_policy: {
          retry_on: '5xx',
          num_retries: { value: 2 },
          per_try_timeout: duration(200),
        },
      }),
    ),
    virtualHost('breaker', route(BREAKER)),
    virtualHost('outlier', route(OUTLIER)),
  ];
}

test('outbound resilience through a palisade proxy process', async (t) => {
  const ok = await startUpstream('ok');
  // Fails the first two requests of every path with 503, then answers 200.
  const flaky = await startUpstream('flaky', (req, res) => {
    const n = flaky.seen.filter((s) => s.url === req.url).length;
    res.statusCode = n <= 2 ? 503 : 200;
    res.end(n <= 2 ? 'flaky down' : 'flaky up');
  });
  const slow = await startUpstream('slow', (_req, res) => {
    setTimeout(() => res.end('slow'), 1000);
  });
  const fast = await startUpstream('fast');
  const breaker = await startUpstream('breaker', (_req, res) => {
    setTimeout(() => res.end('breaker'), 400);
  });
  const bad = await startUpstream('bad', (_req, res) => {
    res.statusCode = 500;
    res.end('bad');
  });
  const good = await startUpstream('good');
  for (const app of [ok, flaky, slow, fast, breaker, bad, good]) t.after(() => app.close());
  const deadPort = await freePort();

  const clusters = (loopPort: number): ClusterSpec[] => [
    { name: OK, endpoints: [{ port: ok.port }] },
    { name: FLAKY, endpoints: [{ port: flaky.port }] },
    { name: SLOW, endpoints: [{ port: slow.port }] },
    { name: SLOW_OR_FAST, endpoints: [{ port: slow.port }, { port: fast.port }] },
    { name: DEAD, endpoints: [{ port: deadPort }] },
    { name: DEAD_OR_OK, endpoints: [{ port: deadPort }, { port: ok.port }] },
    {
      name: BREAKER,
      endpoints: [{ port: breaker.port }],
      extra: { circuit_breakers: { thresholds: [{ max_requests: { value: 1 } }] } },
    },
    {
      name: OUTLIER,
      endpoints: [{ port: bad.port }, { port: good.port }],
      extra: {
        outlier_detection: {
          consecutive_5xx: { value: 3 },
          base_ejection_time: duration(30_000),
        },
      },
    },
    // The proxy's own outbound listener: a second hop, as the callee's sidecar would be.
    { name: LOOP, endpoints: [{ port: loopPort }] },
  ];
  const ads = await startTestAdsServer(t);
  feed(ads, outboundResources(clusters(deadPort), virtualHosts()), 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  feed(ads, outboundResources(clusters(proxy.outbound), virtualHosts()), 'v2');
  await waitAck(ads, TYPE_URLS.endpoint, 'v2');
  const via = proxy.via;
  const flagsOf = async (path: string): Promise<unknown> => {
    const entry = await waitFor(() => proxy.accessLog().find((l) => l['path'] === path), 5000);
    return entry?.['response_flags'];
  };

  await t.test('fault abort 100%: 500 "fault filter abort", flag FI', async () => {
    const r = await curl([...via, 'http://abort/x']);
    assert.equal(r.status, 500);
    assert.equal(r.body, 'fault filter abort');
    assert.equal(r.headers['x-palisade-response-flags'], 'FI');
    assert.equal(ok.seen.length, 0, 'an aborted request never reaches the upstream');
  });

  await t.test(
    'fault delay 300 ms on the callee vs a 100 ms timeout on the caller: 504 UT',
    async () => {
      const r = await curl([...via, 'http://reviews/ratings/1']);
      assert.equal(r.status, 504);
      assert.equal(r.body, 'upstream request timeout');
      assert.equal(r.headers['x-palisade-response-flags'], 'UT');
      // Delay and timeout on the same route: the timeout starts after the delay (Envoy's filter order).
      const same = await curl([...via, 'http://delay-same-route/x']);
      assert.equal(same.status, 200, same.body);
    },
  );

  await t.test('fault abort 50% over 200 requests', async () => {
    const client = proxyClient(proxy.outbound);
    let aborted = 0;
    for (let batch = 0; batch < 10; batch += 1) {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => client.get('http://abort-half/h')),
      );
      for (const r of results) {
        if (r.status === 503) {
          assert.equal(r.body, 'fault filter abort');
          aborted += 1;
        } else assert.equal(r.status, 200);
      }
    }
    client.close();
    assert.ok(Math.abs(aborted / 200 - 0.5) <= 0.12, `aborted ${String(aborted)} of 200`);
  });

  await t.test('retries: two 503s then 200 with num_retries 2', async () => {
    const r = await curl([...via, 'http://retry2/a']);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'flaky up');
    const attempts = flaky.seen.filter((s) => s.url === '/a');
    assert.equal(attempts.length, 3);
    assert.deepEqual(
      attempts.map((s) => s.headers['x-envoy-attempt-count']),
      [undefined, '2', '3'],
    );
  });

  await t.test('retries exhausted: the last upstream 503 is returned, flag URX', async () => {
    const r = await curl([...via, 'http://retry1/b']);
    assert.equal(r.status, 503);
    assert.equal(r.body, 'flaky down', "Envoy forwards the last attempt's response");
    assert.equal(flaky.seen.filter((s) => s.url === '/b').length, 2);
    assert.equal(await flagsOf('/b'), 'URX');
  });

  await t.test(
    'a request body is replayed on retries up to 64 KiB, a larger one is not retried',
    async () => {
      const r = await curl([...via, '-d', 'payload', 'http://retry2/c']);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'flaky up');
      const attempts = flaky.seen.filter((s) => s.url === '/c');
      assert.deepEqual(
        attempts.map((a) => a.body),
        ['payload', 'payload', 'payload'],
      );
      const big = 'x'.repeat(70_000);
      const large = await curl([...via, '-d', big, 'http://retry2/d']);
      assert.equal(large.status, 503, 'beyond the retry buffer the first answer stands');
      const bigAttempts = flaky.seen.filter((s) => s.url === '/d');
      assert.equal(bigAttempts.length, 1);
      assert.equal(bigAttempts[0]?.body.length, 70_000);
    },
  );

  await t.test('connection refused: 503 UF; retried onto a healthy endpoint: 200', async () => {
    const r = await curl([...via, 'http://dead/x']);
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-palisade-response-flags'], 'UF');
    assert.match(
      r.body,
      /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/,
    );
    const exhausted = await curl([...via, 'http://dead-retry/x']);
    assert.equal(exhausted.status, 503);
    assert.equal(exhausted.headers['x-palisade-response-flags'], 'UF,URX');
    assert.match(exhausted.body, /retried and the latest reset reason: connection failure/);
    for (let i = 0; i < 4; i += 1) {
      const ok2 = await curl([...via, `http://dead-or-ok/r${String(i)}`]);
      assert.equal(ok2.status, 200, ok2.body);
      assert.equal(ok2.body, `ok /r${String(i)}`);
    }
  });

  await t.test('route timeout 200 ms on a 1 s upstream: 504 UT', async () => {
    const r = await curl([...via, 'http://slow/t']);
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.equal(r.headers['x-palisade-response-flags'], 'UT');
  });

  await t.test('per_try_timeout moves a slow attempt to the other endpoint', async () => {
    const before = slow.seen.length;
    for (let i = 0; i < 4; i += 1) {
      const r = await curl([...via, `http://per-try/p${String(i)}`]);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `fast /p${String(i)}`);
    }
    assert.ok(
      slow.seen.length > before,
      'round robin sent some first attempts to the slow endpoint',
    );
    const retried = fast.seen.filter((s) => s.headers['x-envoy-attempt-count'] === '2');
    assert.ok(retried.length > 0, 'the slow attempts were retried on the fast endpoint');
  });

  await t.test(
    'circuit breaker max_requests 1: overflow 503 UO, never 2 upstream requests at once',
    async () => {
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) => curl([...via, `http://breaker/c${String(i)}`])),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.ok(statuses.includes(200), JSON.stringify(statuses));
      const overflow = results.filter((r) => r.status === 503);
      assert.ok(overflow.length > 0, JSON.stringify(statuses));
      for (const r of overflow) assert.equal(r.headers['x-palisade-response-flags'], 'UO');
      assert.equal(breaker.maxConcurrent(), 1);
    },
  );

  await t.test(
    'outlier detection ejects the failing endpoint after 3 consecutive 5xx',
    async () => {
      for (let i = 0; i < 20 && bad.seen.length < 3; i += 1)
        await curl([...via, `http://outlier/warm${String(i)}`]);
      assert.equal(bad.seen.length, 3);
      const goodBefore = good.seen.length;
      for (let i = 0; i < 20; i += 1) {
        const r = await curl([...via, `http://outlier/after${String(i)}`]);
        assert.equal(r.status, 200, `request ${String(i)} after the ejection: ${r.body}`);
      }
      assert.equal(bad.seen.length, 3, 'the ejected endpoint gets nothing');
      assert.equal(good.seen.length - goodBefore, 20);
    },
  );
});
