/**
 * Access log lines: Istio's JSON field names, Envoy's typed values (numbers,
 * null when unset, `-` for no flags), one object per line; the logger drops
 * and counts lines while its stream is backed up.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import {
  ACCESS_LOG_FIELDS,
  FLUSH_BYTES,
  FLUSH_INTERVAL_MS,
  createAccessLogger,
  formatAccessLog,
  type AccessLogEntry,
} from './access-log.js';

test('an HTTP request logs every Istio field with Envoy value types', () => {
  const line = formatAccessLog({
    startTime: Date.UTC(2026, 1, 24, 10, 30, 45, 123),
    method: 'GET',
    path: '/status/418',
    protocol: 'HTTP/1.1',
    responseCode: 418,
    responseCodeDetails: 'via_upstream',
    bytesReceived: 0,
    bytesSent: 135,
    durationMs: 4.7,
    upstreamServiceTimeMs: 3,
    userAgent: 'curl/8.0.1',
    requestId: 'a4cadca4-662f-4a9c-9f6b-5d1f0e2a1b3c',
    authority: 'httpbin:8000',
    upstreamHost: '10.244.1.5:80',
    upstreamCluster: 'outbound|8000||httpbin.default.svc.cluster.local',
    upstreamLocalAddress: '10.244.1.3:57408',
    downstreamLocalAddress: '10.96.110.122:8000',
    downstreamRemoteAddress: '10.244.1.3:43264',
    routeName: 'default',
  });
  assert.ok(line.endsWith('}\n'));
  assert.equal(line.indexOf('\n'), line.length - 1, 'exactly one line');
  const obj = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(obj), [...ACCESS_LOG_FIELDS]);
  assert.deepEqual(obj, {
    authority: 'httpbin:8000',
    bytes_received: 0,
    bytes_sent: 135,
    connection_termination_details: null,
    downstream_local_address: '10.96.110.122:8000',
    downstream_remote_address: '10.244.1.3:43264',
    duration: 4,
    method: 'GET',
    path: '/status/418',
    protocol: 'HTTP/1.1',
    request_id: 'a4cadca4-662f-4a9c-9f6b-5d1f0e2a1b3c',
    requested_server_name: null,
    response_code: 418,
    response_code_details: 'via_upstream',
    response_flags: '-',
    route_name: 'default',
    start_time: '2026-02-24T10:30:45.123Z',
    upstream_cluster: 'outbound|8000||httpbin.default.svc.cluster.local',
    upstream_host: '10.244.1.5:80',
    upstream_local_address: '10.244.1.3:57408',
    upstream_service_time: '3',
    upstream_transport_failure_reason: null,
    user_agent: 'curl/8.0.1',
    x_forwarded_for: null,
  });
});

test('a TCP connection and hostile values still make one valid JSON line', () => {
  const line = formatAccessLog({
    startTime: new Date('2026-02-24T10:30:45.000Z'),
    responseFlags: 'UF,URX',
    upstreamTransportFailureReason:
      'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED',
    bytesReceived: 1024,
    bytesSent: 2048,
    durationMs: 30004,
    userAgent: 'evil\n{"injected":true}\u2028"',
    requestedServerName: 'outbound_.9080_._.reviews.default.svc.cluster.local',
  });
  assert.equal(line.split('\n').length, 2);
  const obj = JSON.parse(line) as Record<string, unknown>;
  assert.equal(obj.method, null);
  assert.equal(obj.protocol, null);
  assert.equal(obj.response_code, 0);
  assert.equal(obj.response_flags, 'UF,URX');
  assert.equal(obj.bytes_received, 1024);
  assert.equal(obj.duration, 30004);
  assert.equal(obj.user_agent, 'evil\n{"injected":true}\u2028"');
  assert.equal(obj.upstream_service_time, null);
  assert.equal(formatAccessLog({ startTime: Number.NaN }).includes('"start_time":null'), true);
});

/** The line as JSON.stringify writes it (the formatter's first version): the reference. */
function referenceLine(e: AccessLogEntry): string {
  const str = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);
  const num = (v: number | undefined): number | null =>
    v === undefined || !Number.isFinite(v) ? null : Math.max(0, Math.floor(v));
  const start = typeof e.startTime === 'number' ? new Date(e.startTime) : e.startTime;
  const upstream = num(e.upstreamServiceTimeMs);
  return `${JSON.stringify({
    authority: str(e.authority),
    bytes_received: num(e.bytesReceived) ?? 0,
    bytes_sent: num(e.bytesSent) ?? 0,
    connection_termination_details: str(e.connectionTerminationDetails),
    downstream_local_address: str(e.downstreamLocalAddress),
    downstream_remote_address: str(e.downstreamRemoteAddress),
    duration: num(e.durationMs),
    method: str(e.method),
    path: str(e.path),
    protocol: str(e.protocol),
    request_id: str(e.requestId),
    requested_server_name: str(e.requestedServerName),
    response_code: num(e.responseCode) ?? 0,
    response_code_details: str(e.responseCodeDetails),
    response_flags: str(e.responseFlags) ?? '-',
    route_name: str(e.routeName),
    start_time: Number.isNaN(start.getTime()) ? null : start.toISOString(),
    upstream_cluster: str(e.upstreamCluster),
    upstream_host: str(e.upstreamHost),
    upstream_local_address: str(e.upstreamLocalAddress),
    upstream_service_time: upstream === null ? null : String(upstream),
    upstream_transport_failure_reason: str(e.upstreamTransportFailureReason),
    user_agent: str(e.userAgent),
    x_forwarded_for: str(e.xForwardedFor),
  })}\n`;
}

test('every line is byte for byte what JSON.stringify writes, hostile strings and numbers too', () => {
  // Strings over every UTF-16 unit (quotes, backslashes, controls, lone surrogates, U+2028).
  const text = fc.option(
    fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.constantFrom('\ud800x', 'a\udfffb', '\u2028', 'a"b\\c', '\u007f', '\u0000'),
    ),
    {
      nil: undefined,
    },
  );
  const num = fc.option(fc.oneof(fc.integer(), fc.double(), fc.constant(-0)), { nil: undefined });
  const entry = fc.record({
    startTime: fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      // Fractional, as `Date.now() - durationMs` is: the same millisecond, another fraction.
      fc.double({ min: -8.64e15, max: 8.64e15, noNaN: true }),
      fc.constantFrom(8.64e15, -8.64e15, 8.64e15 + 1, -8.64e15 - 1, Infinity, 999.999, -0.5),
      fc.constant(Number.NaN),
      fc.date({ noInvalidDate: false }),
    ),
    method: text,
    path: text,
    protocol: text,
    responseCode: num,
    responseFlags: text,
    responseCodeDetails: text,
    connectionTerminationDetails: text,
    upstreamTransportFailureReason: text,
    bytesReceived: num,
    bytesSent: num,
    durationMs: num,
    upstreamServiceTimeMs: num,
    xForwardedFor: text,
    userAgent: text,
    requestId: text,
    authority: text,
    upstreamHost: text,
    upstreamCluster: text,
    upstreamLocalAddress: text,
    downstreamLocalAddress: text,
    downstreamRemoteAddress: text,
    requestedServerName: text,
    routeName: text,
  });
  fc.assert(
    fc.property(entry, (e) => {
      assert.equal(formatAccessLog(e), referenceLine(e));
    }),
    { numRuns: 2000 },
  );
});

test('the logger writes a batch per interval (or per 32 KiB) and drops (counted) while the stream is backed up', async () => {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createAccessLogger({ stream: sink });
  logger.log({ startTime: 0, method: 'GET', path: '/a', responseCode: 200 });
  logger.log({ startTime: 0, method: 'GET', path: '/b', responseCode: 200 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(logger.written, 0, 'lines wait for the flush interval, not the end of the turn');
  await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS + 20));
  assert.equal(logger.written, 2);
  logger.log({ startTime: 0, method: 'GET', path: '/c', responseCode: 200 });
  logger.flush();
  assert.equal(chunks.length, 2, 'one write per batch');
  const lines = chunks.join('').trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { path: string }).path),
    ['/a', '/b', '/c'],
  );
  assert.equal(logger.written, 3);

  // A batch that reaches FLUSH_BYTES goes out at once, in one write.
  const big = 'x'.repeat(1000);
  let n = 0;
  while (logger.written === 3) {
    logger.log({ startTime: 0, path: `/${big}`, responseCode: 200 });
    n += 1;
  }
  assert.equal(chunks.length, 3);
  assert.equal(logger.written, 3 + n);
  assert.ok((chunks[2]?.length ?? 0) >= FLUSH_BYTES, String(chunks[2]?.length));

  // A stream that never finishes a write: after its buffer fills, lines drop.
  let held: (() => void) | undefined;
  const slow = new Writable({
    highWaterMark: 1024,
    write(_chunk, _enc, cb) {
      held = cb;
    },
  });
  const slowLogger = createAccessLogger({ stream: slow });
  for (let i = 0; i < 100; i += 1) {
    slowLogger.log({ startTime: 0, path: `/${String(i)}` });
    if (i % 10 === 9) slowLogger.flush();
  }
  assert.ok(slowLogger.written >= 1 && slowLogger.written < 100, String(slowLogger.written));
  assert.equal(slowLogger.written + slowLogger.dropped, 100);
  held?.();
  slow.destroy();
  slowLogger.log({ startTime: 0 });
  slowLogger.flush();
  assert.equal(slowLogger.written + slowLogger.dropped, 101);
});
