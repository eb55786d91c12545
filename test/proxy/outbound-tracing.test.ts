// Span export: a real `palisade proxy` process with --otlp-endpoint pointed at
// a collector the test runs (OTLP/HTTP JSON on loopback). Each sampled
// outbound hop is exported as a client span whose context is exactly the one
// the proxy propagated upstream (traceparent the app saw); a caller's
// "not sampled" decision is kept (nothing exported); spans still queued when
// the proxy drains on SIGTERM are sent before it exits.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
} from './ads-server.js';

const API = clusterName('api');

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status: { code: number };
}

test('sampled outbound hops are exported as OTLP spans', async (t) => {
  const api = await startUpstream('api', (req, res) => {
    res.writeHead(req.url === '/fail' ? 503 : 200).end('ok');
  });
  t.after(() => api.close());
  const posts: { path: string; body: Record<string, unknown> }[] = [];
  const collector = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    collector.closeAllConnections();
    collector.close();
  });
  const ads = await startTestAdsServer(t);
  feed(
    ads,
    outboundResources(
      [{ name: API, endpoints: [{ port: api.port }] }],
      [virtualHost('api', [{ match: { prefix: '/' }, route: { cluster: API } }])],
    ),
    'v1',
  );
  const collectorPort = (collector.address() as AddressInfo).port;
  const proxy = await startProxyProcess(ads.port, [
    '--otlp-endpoint',
    `http://127.0.0.1:${String(collectorPort)}`,
    '--trace-sampling',
    '100',
  ]);
  t.after(() => proxy.stop());
  const via = proxy.via;
  await waitFor(async () => (await curl([...via, 'http://api/ready'])).status === 200, 20_000);

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  await curl([...via, '-H', `traceparent: 00-${traceId}-${callerSpan}-01`, 'http://api/sampled']);
  await curl([
    ...via,
    '-H',
    `traceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-00`,
    'http://api/unsampled',
  ]);
  await curl([...via, 'http://api/fail']);
  const seen = (url: string): string =>
    String(api.seen.find((r) => r.url === url)?.headers.traceparent ?? '');

  assert.equal(await proxy.stop(), 0, 'the proxy drains and exits cleanly');
  const spans = posts.flatMap((p) => {
    assert.equal(p.path, '/v1/traces');
    const resourceSpans = p.body['resourceSpans'] as {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: OtlpSpan[] }[];
    }[];
    for (const r of resourceSpans)
      assert.deepEqual(
        r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
        'a-1.ns',
        'service.name is <workload>.<namespace> (the pod name without WORKLOAD_NAME)',
      );
    return resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  });
  const attr = (span: OtlpSpan | undefined, key: string): unknown =>
    span?.attributes.find((a) => a.key === key)?.value;
  const byUrl = (path: string): OtlpSpan | undefined =>
    spans.find(
      (s) =>
        (attr(s, 'http.url') as { stringValue?: string } | undefined)?.stringValue ===
        `http://api${path}`,
    );

  assert.equal(spans.length, 3, JSON.stringify(spans.map((s) => attr(s, 'http.url'))));
  const sampled = byUrl('/sampled');
  assert.ok(sampled !== undefined);
  assert.equal(sampled.traceId, traceId);
  assert.equal(sampled.parentSpanId, callerSpan, 'a child of the caller’s span');
  assert.equal(
    seen('/sampled'),
    `00-${traceId}-${sampled.spanId}-01`,
    'the exported span is the propagated one',
  );
  assert.equal(sampled.kind, 3, 'SPAN_KIND_CLIENT');
  assert.equal(sampled.name, 'api:80/*');
  assert.deepEqual(attr(sampled, 'http.status_code'), { intValue: '200' });
  assert.deepEqual(attr(sampled, 'upstream_cluster'), { stringValue: API });
  assert.deepEqual(sampled.status, { code: 0 });
  assert.equal(byUrl('/unsampled'), undefined, 'a caller’s not-sampled decision is kept');
  assert.match(seen('/unsampled'), /-00$/);
  const failed = byUrl('/fail');
  assert.ok(failed !== undefined, 'a new trace is sampled at 100 %');
  assert.equal(failed.parentSpanId, undefined, 'a root span');
  assert.deepEqual(failed.status, { code: 2 }, 'STATUS_CODE_ERROR for a 503');
});
