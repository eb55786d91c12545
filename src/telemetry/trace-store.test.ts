/**
 * The trace receiver over loopback HTTP: OTLP/HTTP JSON (as the proxies'
 * exporter sends it) and protobuf bodies, the search and trace APIs, and
 * the bounds (oldest traces evicted).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { createOtlpExporter, encodeOtlpTraces, type FinishedSpan } from './otlp-exporter.js';
import { childSpan, newRootSpan } from './trace-context.js';
import { createTraceStore, encodeOtlpProtobuf, startTraceReceiver } from './trace-store.js';

const T0 = 1_700_000_000_000_000_000n;
const span = (
  context: FinishedSpan['context'],
  name: string,
  startMs: number,
  durationMs: number,
  kind: FinishedSpan['kind'] = 'client',
  error = false,
): FinishedSpan => ({
  context,
  name,
  kind,
  startTimeUnixNano: T0 + BigInt(startMs * 1e6),
  endTimeUnixNano: T0 + BigInt((startMs + durationMs) * 1e6),
  attributes: { 'http.status_code': error ? 503 : 200 },
  status: { code: error ? 'error' : 'unset' },
});

test('receives JSON from the proxies exporter and protobuf; serves /api/traces', async (t) => {
  const receiver = await startTraceReceiver();
  t.after(() => receiver.close());
  const root = newRootSpan();
  const server = childSpan(root);
  // JSON, through the same exporter the proxies use.
  const exporter = createOtlpExporter({
    endpoint: receiver.url,
    serviceName: 'istio-ingressgateway.istio-system',
    flushIntervalMs: 60_000,
  });
  exporter.export(span(root, 'bookinfo:80/*', 0, 40));
  await exporter.close();
  // Protobuf, as an OpenTelemetry SDK sends it.
  const body = encodeOtlpProtobuf(
    encodeOtlpTraces(
      [span(server, 'productpage.default.svc.cluster.local:9080/*', 5, 30, 'server', true)],
      {
        serviceName: 'productpage-v1.default',
      },
    ),
  );
  const res = await fetch(`${receiver.url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body,
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-protobuf');

  const list = (await (await fetch(`${receiver.url}/api/traces`)).json()) as {
    traces: Record<string, unknown>[];
  };
  assert.deepEqual(list.traces, [
    {
      traceId: root.traceId,
      rootService: 'istio-ingressgateway.istio-system',
      rootName: 'bookinfo:80/*',
      startTimeUnixMs: Number(T0 / 1_000_000n),
      durationMs: 40,
      spanCount: 2,
      services: ['istio-ingressgateway.istio-system', 'productpage-v1.default'],
      error: true,
    },
  ]);
  const one = (await (await fetch(`${receiver.url}/api/traces/${root.traceId}`)).json()) as {
    spans: Record<string, unknown>[];
  };
  assert.equal(one.spans.length, 2);
  assert.deepEqual(one.spans[1], {
    spanId: server.spanId,
    parentSpanId: root.spanId,
    name: 'productpage.default.svc.cluster.local:9080/*',
    service: 'productpage-v1.default',
    workload: 'productpage-v1',
    kind: 'server',
    startTimeUnixMs: Number(T0 / 1_000_000n) + 5,
    durationMs: 30,
    error: true,
    attributes: { 'http.status_code': 503 },
  });
  const q = async (query: string): Promise<number> =>
    ((await (await fetch(`${receiver.url}/api/traces?${query}`)).json()) as { traces: unknown[] })
      .traces.length;
  assert.equal(await q('service=productpage-v1'), 1);
  assert.equal(await q('service=ratings-v1'), 0);
  assert.equal(await q('minDurationMs=41'), 0);
  assert.equal(await q('error=false'), 0);
  assert.equal(await q('error=true&limit=1'), 1);
  assert.equal((await fetch(`${receiver.url}/api/traces/${'0'.repeat(32)}`)).status, 404);
  const bad = await fetch(`${receiver.url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{',
  });
  assert.equal(bad.status, 400);
});

test('the store keeps the newest traces within its bounds', () => {
  const store = createTraceStore(3, 5);
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) {
    const root = newRootSpan();
    ids.push(root.traceId);
    store.add(
      encodeOtlpTraces([span(root, `r${String(i)}`, i, 1), span(childSpan(root), 'c', i, 1)], {
        serviceName: 's.default',
      }),
    );
  }
  assert.ok(store.size.traces <= 3 && store.size.spans <= 5, JSON.stringify(store.size));
  assert.equal(store.trace(ids[0] ?? ''), undefined, 'oldest evicted');
  assert.equal(store.search({})[0]?.traceId, ids[4], 'newest first');
});

test('the receiver binds loopback only', async () => {
  await assert.rejects(startTraceReceiver({ host: '0.0.0.0' }), /not a loopback address/);
});
