// Security properties that no other test guarded (issue 15 item 12), each
// against a real `palisade proxy` process fed by the test ADS server, so a
// planted bug in the request path fails here (scripts/mutation.mjs plants them):
// - a client-supplied x-forwarded-client-cert never reaches the app over a
//   plaintext (PERMISSIVE) connection, on HTTP/1.1 or HTTP/2: Istio sets XFCC
//   from the verified peer only (forward_client_cert_details
//   APPEND_FORWARD/SANITIZE_SET; a plaintext peer has no certificate);
// - retries: `5xx` retries a 500 (Envoy router docs, x-envoy-retry-on: "5xx:
//   Envoy will attempt a retry if the upstream server responds with any 5xx
//   response code"), `retriable-status-codes` retries the listed codes,
//   `gateway-error` does not retry a 500.
// Addresses: 127.35.0.0/16 (this suite's range) and ephemeral ports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { freePort, waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
  waitAck,
} from '../proxy/ads-server.js';
import { inboundCluster, inboundListener } from '../proxy/inbound-resources.js';

const HOST = '127.35.0.2';
const SPOOFED =
  'By=spiffe://cluster.local/ns/foo/sa/app;URI=spiffe://cluster.local/ns/foo/sa/admin';

test('a plaintext peer cannot pass x-forwarded-client-cert to the app', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const port = await freePort(HOST);
  ads.set(TYPE_URLS.cluster, 'v1', [inboundCluster(port, app.port)]);
  ads.set(TYPE_URLS.listener, 'v1', [inboundListener(port, [], HOST)]);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitAck(ads, TYPE_URLS.listener, 'v1');
  const url = `http://${HOST}:${String(port)}/whoami`;
  for (const [protocol, args] of [
    ['HTTP/1.1', []],
    ['HTTP/2 (h2c prior knowledge)', ['--http2-prior-knowledge']],
  ] as const) {
    const seen = app.seen.length;
    const r = await curl([...args, '-H', `x-forwarded-client-cert: ${SPOOFED}`, url]);
    assert.equal(r.status, 200, protocol);
    const got = app.seen[seen];
    assert.ok(got !== undefined, `${protocol}: the app saw no request`);
    assert.equal(
      got.headers['x-forwarded-client-cert'],
      undefined,
      `${protocol}: a client-supplied XFCC reached the app`,
    );
  }
});

test('retry policies: 5xx retries a 500, retriable-status-codes its codes, gateway-error not a 500', async (t) => {
  // Each path fails twice (with the status its first segment names), then answers 200.
  const app = await startUpstream('flaky', (req, res) => {
    const tries = app.seen.filter((s) => s.url === req.url).length;
    const status = Number(/^\/(\d{3})\//.exec(req.url)?.[1] ?? 200);
    res.statusCode = tries <= 2 ? status : 200;
    res.end(tries <= 2 ? 'down' : 'up');
  });
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const cluster = clusterName('flaky');
  const route = (retryPolicy: object): object[] => [
    { match: { prefix: '/' }, route: { cluster, retry_policy: retryPolicy } },
  ];
  feed(
    ads,
    outboundResources(
      [{ name: cluster, endpoints: [{ port: app.port }] }],
      [
        virtualHost('five', route({ retry_on: '5xx', num_retries: { value: 2 } })),
        virtualHost(
          'codes',
          route({
            retry_on: 'retriable-status-codes',
            retriable_status_codes: [418],
            num_retries: { value: 2 },
          }),
        ),
        virtualHost('gateway', route({ retry_on: 'gateway-error', num_retries: { value: 2 } })),
      ],
    ),
    'v1',
  );
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitAck(ads, TYPE_URLS.route, 'v1');
  const attempts = (path: string): number => app.seen.filter((s) => s.url === path).length;

  await waitFor(async () => (await curl([...proxy.via, 'http://five/200/ready'])).status === 200);
  const five = await curl([...proxy.via, 'http://five/500/a']);
  assert.deepEqual([five.status, attempts('/500/a')], [200, 3], '5xx must retry a 500');

  const teapot = await curl([...proxy.via, 'http://codes/418/b']);
  assert.deepEqual([teapot.status, attempts('/418/b')], [200, 3], 'retriable-status-codes 418');
  const unlisted = await curl([...proxy.via, 'http://codes/500/c']);
  assert.deepEqual([unlisted.status, attempts('/500/c')], [500, 1], 'a 500 is not a listed code');

  const gateway = await curl([...proxy.via, 'http://gateway/500/d']);
  assert.deepEqual([gateway.status, attempts('/500/d')], [500, 1], 'gateway-error is 502/503/504');
  const bad = await curl([...proxy.via, 'http://gateway/502/e']);
  assert.deepEqual([bad.status, attempts('/502/e')], [200, 3], 'gateway-error retries a 502');
});
