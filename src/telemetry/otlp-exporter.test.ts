/**
 * OTLP/HTTP JSON export against a loopback collector the test runs: the
 * POST path, content type and ExportTraceServiceRequest JSON; batching by
 * size; queue overflow counted; a collector that is down or hangs never
 * throws into the caller.
 */
import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isPalisadeError } from '../errors/index.js';
import { createOtlpExporter, unixNanoNow, type FinishedSpan } from './otlp-exporter.js';
import { childSpan, newRootSpan } from './trace-context.js';

interface Captured {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

async function collector(
  respond: (req: IncomingMessage) => number | 'hang' = () => 200,
): Promise<{ server: Server; url: string; posts: Captured[] }> {
  const posts: Captured[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({
        method: req.method,
        url: req.url,
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
      });
      const status = respond(req);
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, posts };
}

function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

function span(name = 'reviews.default.svc.cluster.local:9080/*'): FinishedSpan {
  const start = unixNanoNow();
  return {
    context: childSpan(newRootSpan()),
    name,
    kind: 'server',
    startTimeUnixNano: start,
    endTimeUnixNano: start + 1_500_000n,
    attributes: {
      'http.method': 'GET',
      'http.status_code': 200,
      upstream_cluster: 'inbound|9080||',
      ratio: 0.5,
      mtls: true,
    },
    status: { code: 'ok' },
  };
}

test('exports OTLP/HTTP JSON to /v1/traces', async (t) => {
  const { server, url, posts } = await collector();
  t.after(() => stop(server));
  const exporter = createOtlpExporter({
    endpoint: url,
    serviceName: 'reviews.default',
    flushIntervalMs: 60_000,
  });
  const s = span();
  exporter.export(s);
  exporter.export({ ...span(), context: { ...newRootSpan(), sampled: false } });
  await exporter.close();

  assert.equal(posts.length, 1);
  const post = posts[0]!;
  assert.equal(post.method, 'POST');
  assert.equal(post.url, '/v1/traces');
  assert.equal(post.contentType, 'application/json');
  const body = post.body as {
    resourceSpans: {
      resource: { attributes: unknown[] };
      scopeSpans: { scope: { name: string }; spans: Record<string, unknown>[] }[];
    }[];
  };
  assert.deepEqual(body.resourceSpans[0]?.resource.attributes, [
    { key: 'service.name', value: { stringValue: 'reviews.default' } },
  ]);
  const scope = body.resourceSpans[0].scopeSpans[0];
  assert.ok(scope);
  assert.equal(scope.scope.name, 'palisade-proxy');
  assert.equal(scope.spans.length, 1, 'the unsampled span is not exported');
  const got = scope.spans[0]!;
  assert.equal(got.traceId, s.context.traceId);
  assert.equal(got.spanId, s.context.spanId);
  assert.equal(got.parentSpanId, s.context.parentSpanId);
  assert.match(got.traceId, /^[0-9a-f]{32}$/);
  assert.equal(got.name, 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(got.kind, 2);
  assert.equal(got.startTimeUnixNano, s.startTimeUnixNano.toString());
  assert.equal(got.endTimeUnixNano, (s.startTimeUnixNano + 1_500_000n).toString());
  assert.match(got.startTimeUnixNano, /^\d{19}$/);
  assert.deepEqual(got.attributes, [
    { key: 'http.method', value: { stringValue: 'GET' } },
    { key: 'http.status_code', value: { intValue: '200' } },
    { key: 'upstream_cluster', value: { stringValue: 'inbound|9080||' } },
    { key: 'ratio', value: { doubleValue: 0.5 } },
    { key: 'mtls', value: { boolValue: true } },
  ]);
  assert.deepEqual(got.status, { code: 1 });
  assert.deepEqual(exporter.stats(), { queued: 0, exported: 1, dropped: 0, failed: 0 });
  exporter.export(span());
  assert.equal(exporter.stats().dropped, 1, 'export after close is dropped');
});

test('a full batch is sent without waiting for the timer; overflow is counted', async (t) => {
  const { server, url, posts } = await collector();
  t.after(() => stop(server));
  const exporter = createOtlpExporter({
    endpoint: `${url}/custom/traces`,
    serviceName: 'svc',
    maxBatch: 3,
    maxQueue: 5,
    flushIntervalMs: 60_000,
  });
  t.after(() => exporter.close());
  for (let i = 0; i < 8; i += 1) exporter.export(span(`s${i}`));
  assert.equal(exporter.stats().dropped, 3);
  assert.equal(exporter.stats().queued, 5);
  await exporter.flush();
  assert.deepEqual(
    posts.map((p) =>
      (
        p.body as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] }
      ).resourceSpans[0]?.scopeSpans[0]?.spans.map((s) => s.name),
    ),
    [
      ['s0', 's1', 's2'],
      ['s3', 's4'],
    ],
  );
  assert.ok(posts.every((p) => p.url === '/custom/traces'));
  assert.deepEqual(exporter.stats(), { queued: 0, exported: 5, dropped: 3, failed: 0 });
});

test('collector down, failing or hanging: no throw, spans counted as failed', async (t) => {
  // Down: a port that was just closed.
  const down = await collector();
  await stop(down.server);
  const e1 = createOtlpExporter({ endpoint: down.url, serviceName: 'svc', timeoutMs: 2000 });
  e1.export(span());
  await e1.close();
  assert.deepEqual(e1.stats(), { queued: 0, exported: 0, dropped: 0, failed: 1 });

  // Failing: 503.
  const failing = await collector(() => 503);
  t.after(() => stop(failing.server));
  const e2 = createOtlpExporter({ endpoint: failing.url, serviceName: 'svc' });
  e2.export(span());
  e2.export(span());
  await e2.close();
  assert.equal(failing.posts.length, 1);
  assert.deepEqual(e2.stats(), { queued: 0, exported: 0, dropped: 0, failed: 2 });

  // Hanging: the deadline ends the POST.
  const hanging = await collector(() => 'hang');
  t.after(() => stop(hanging.server));
  const e3 = createOtlpExporter({ endpoint: hanging.url, serviceName: 'svc', timeoutMs: 200 });
  e3.export(span());
  await e3.close();
  assert.equal(hanging.posts.length, 1);
  assert.equal(e3.stats().failed, 1);
});

test('bad options are PAL_ERR_CONFIG_INVALID', () => {
  for (const options of [
    { endpoint: 'not a url' },
    { endpoint: 'ftp://collector:21' },
    { endpoint: 'http://collector:4318', maxBatch: 0 },
    { endpoint: 'http://collector:4318', flushIntervalMs: -1 },
  ]) {
    assert.throws(
      () => createOtlpExporter({ serviceName: 'svc', ...options }),
      (e: unknown) => isPalisadeError(e, 'PAL_ERR_CONFIG_INVALID'),
      JSON.stringify(options),
    );
  }
});
