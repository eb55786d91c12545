// HTTP/2 and gRPC through the outbound listener of a real `palisade proxy`
// process fed by the test ADS server. Clients use the proxy as HTTP/2 clients
// do: CONNECT, then h2c with prior knowledge inside the tunnel (curl
// `--http2-prior-knowledge -p`, and @grpc/grpc-js with `grpc_proxy`). The
// proxy serves the tunnel's requests itself — routed, faulted and retried per
// request — and reaches clusters marked HTTP/2 (HttpProtocolOptions) over h2c.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EXTENSION_TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  EchoClientConstructor,
  echoCall,
  echoCallMany,
  startEchoBackend,
  type EchoClient,
  type EchoReply,
} from '../helpers/grpc-echo.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  percent,
  startProxyProcess,
  startTestAdsServer,
  virtualHost,
} from './ads-server.js';

const H2 = clusterName('h2');
const ECHO = clusterName('echo');
const FLAKY = clusterName('flaky');
const DENY = clusterName('deny');

/** Cluster fields that make the proxy speak HTTP/2 upstream (Istio's compile of a grpc/http2 port). */
const HTTP2_UPSTREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': EXTENSION_TYPE_URLS.httpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

const header = (name: string, exact: string): object => ({ name, string_match: { exact } });

test('HTTP/2 and gRPC through the outbound listener', { timeout: 90_000 }, async (t) => {
  // An h2c app that reports the protocol it was reached with and ends with a trailer.
  const seen: { version: string; authority: string | undefined }[] = [];
  const app = http2.createServer((req, res) => {
    seen.push({ version: req.httpVersion, authority: req.headers[':authority'] });
    res.writeHead(200, { 'content-type': 'text/plain', 'x-app': 'h2' });
    res.write('hello over h2');
    res.addTrailers({ 'x-checksum': 'c0ffee' });
    res.end();
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => app.close());
  const appPort = (app.address() as AddressInfo).port;
  const echo = await startEchoBackend('echo-1');
  const flaky = await startEchoBackend('flaky-1', { flaky: true });
  const deny = await startEchoBackend('deny-1', { failWith: grpc.status.NOT_FOUND });
  t.after(async () => {
    await Promise.all([echo.close(), flaky.close(), deny.close()]);
  });

  const ads = await startTestAdsServer(t);
  feed(
    ads,
    outboundResources(
      [
        { name: H2, endpoints: [{ port: appPort }], extra: HTTP2_UPSTREAM },
        { name: ECHO, endpoints: [{ port: echo.port }], extra: HTTP2_UPSTREAM },
        { name: FLAKY, endpoints: [{ port: flaky.port }], extra: HTTP2_UPSTREAM },
        { name: DENY, endpoints: [{ port: deny.port }], extra: HTTP2_UPSTREAM },
      ],
      [
        virtualHost('h2', [{ match: { prefix: '/' }, route: { cluster: H2 } }]),
        virtualHost('echo', [
          {
            match: { prefix: '/', headers: [header('x-fault', 'abort')] },
            route: { cluster: ECHO },
            typed_per_filter_config: {
              'envoy.filters.http.fault': {
                '@type': EXTENSION_TYPE_URLS.fault,
                abort: { grpc_status: grpc.status.UNAVAILABLE, percentage: percent(100) },
              },
            },
          },
          {
            match: { prefix: '/', headers: [header('x-route', 'flaky')] },
            route: {
              cluster: FLAKY,
              retry_policy: { retry_on: 'unavailable', num_retries: { value: 3 } },
            },
          },
          {
            match: { prefix: '/', headers: [header('x-route', 'flaky-no-retry')] },
            route: { cluster: FLAKY },
          },
          {
            match: { prefix: '/', headers: [header('x-route', 'deny')] },
            route: { cluster: DENY },
          },
          { match: { prefix: '/' }, route: { cluster: ECHO } },
        ]),
      ],
    ),
    'v1',
  );
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = ['-p', ...proxy.via, '--http2-prior-knowledge'];
  await waitFor(async () => (await curl([...via, 'http://h2/'])).status === 200, 20_000);

  await t.test('curl h2c through CONNECT: HTTP/2 both ways, trailers relayed', async () => {
    const r = await curl([...via, '--raw', 'http://h2/path']);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-app'], 'h2');
    assert.match(r.body, /hello over h2/);
    assert.match(r.body, /x-checksum: c0ffee/i, 'the trailer reaches the client');
    const last = seen.at(-1);
    assert.equal(last?.version, '2.0', 'the app is reached over HTTP/2');
    assert.equal(last.authority, 'h2');
    const version = await curl([...via, '-o', '/dev/null', '-w', '%{http_version}', 'http://h2/']);
    assert.match(version.body, /^2$/m, 'the client spoke HTTP/2 to the proxy');
  });

  await t.test('an HTTP/1.1 client reaches an HTTP/2 cluster over HTTP/2', async () => {
    const before = seen.length;
    const r = await curl([...proxy.via, 'http://h2/one']);
    assert.equal(r.status, 200);
    assert.match(r.body, /hello over h2/);
    assert.equal(seen.length, before + 1);
    assert.equal(seen.at(-1)?.version, '2.0');
  });

  const saved = process.env['grpc_proxy'];
  process.env['grpc_proxy'] = `http://127.0.0.1:${String(proxy.outbound)}`;
  const client = new EchoClientConstructor(
    'echo:80',
    grpc.credentials.createInsecure(),
  ) as unknown as EchoClient;
  if (saved === undefined) delete process.env['grpc_proxy'];
  else process.env['grpc_proxy'] = saved;
  t.after(() => {
    client.close();
  });

  await t.test('gRPC unary and server streaming through the proxy', async () => {
    const r = await echoCall(client, { 'x-user': 'jason' });
    assert.equal(r.code, grpc.status.OK, r.details);
    assert.equal(r.server, 'echo-1');
    const metadata: Record<string, string | undefined> = r.reply?.headers ?? {};
    assert.equal(metadata['x-user'], 'jason', 'request metadata forwarded');
    assert.match(metadata['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.match(metadata['traceparent'] ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);

    const messages: EchoReply[] = [];
    const trailer = await new Promise<grpc.Metadata>((resolve, reject) => {
      const stream = client.Count({ n: 5 }, new grpc.Metadata());
      stream.on('data', (m: EchoReply) => messages.push(m));
      stream.on('status', (status: grpc.StatusObject) => {
        resolve(status.metadata);
      });
      stream.on('error', reject);
    });
    assert.deepEqual(
      messages.map((m) => m.i),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(trailer.get('x-count'), ['5'], 'trailing metadata relayed');
  });

  await t.test("the app's error status and message reach the client", async () => {
    const r = await echoCall(client, { 'x-route': 'deny' });
    assert.equal(r.code, grpc.status.NOT_FOUND);
    assert.equal(r.details, 'deny-1 says no');
  });

  await t.test('fault abort with grpc_status: UNAVAILABLE, the app never called', async () => {
    const before = echo.calls;
    const counts = await echoCallMany(client, 10, { 'x-fault': 'abort' });
    assert.deepEqual([...counts], [[`status:${String(grpc.status.UNAVAILABLE)}`, 10]]);
    assert.equal(echo.calls, before);
    // Istio's metric labels for gRPC: request_protocol grpc, grpc_response_status from trailers.
    const metrics = await fetch(`http://127.0.0.1:${String(proxy.admin)}/stats/prometheus`);
    const text = await metrics.text();
    assert.match(
      text,
      /istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="14"[^}]*response_flags="FI"[^}]*\} 10/,
    );
    assert.match(text, /istio_requests_total\{[^}]*grpc_response_status="0"[^}]*\} [1-9]/);
    await waitFor(() =>
      proxy.accessLog().some((l) => l['protocol'] === 'HTTP/2' && l['response_flags'] === 'FI'),
    );
  });

  await t.test('retry_on unavailable hides a backend failing every other call', async () => {
    // One call at a time: the backend fails every other call it sees, so each first attempt
    // fails and its retry succeeds (concurrent calls could interleave into four failures).
    const before = flaky.calls;
    for (let i = 0; i < 20; i += 1) {
      const r = await echoCall(client, { 'x-route': 'flaky' });
      assert.equal(r.code, grpc.status.OK, `call ${String(i)}: ${r.details ?? ''}`);
    }
    assert.ok(flaky.calls - before >= 30, `retried: ${String(flaky.calls - before)} attempts`);
    const plain = await echoCallMany(client, 20, { 'x-route': 'flaky-no-retry' });
    assert.ok(
      (plain.get(`status:${String(grpc.status.UNAVAILABLE)}`) ?? 0) >= 8,
      `without retries the failures show: ${JSON.stringify([...plain])}`,
    );
  });
});
