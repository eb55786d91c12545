/**
 * The OTLP/HTTP trace receiver (`up --tracing`) under hostile input, run as
 * its own process so a crash shows as a changed/dead PID: lying and
 * oversized Content-Length, slow heads and bodies (slowloris), malformed
 * protobuf and JSON, deeply nested JSON, one export carrying far more spans
 * than the store keeps, gzip bodies (not accepted), and DNS-rebinding Host
 * names. After all of it the same process still accepts a valid export and
 * serves it, and its memory stayed bounded. Loopback 127.38.1.1, port 0.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { encodeOtlpProtobuf } from '../../src/telemetry/index.js';

const HOST = '127.38.1.1';
const TELEMETRY = fileURLToPath(new URL('../../src/telemetry/index.js', import.meta.url));

/** Sends raw bytes, returns everything the server sent until it closed (or `waitMs` passed). */
function raw(
  port: number,
  chunks: readonly (string | Buffer)[],
  waitMs: number,
  gapMs = 0,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    const got: Buffer[] = [];
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text: Buffer.concat(got).toString('latin1'), closed });
    };
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      done();
    });

    const timer = setTimeout(done, waitMs);
    let i = 0;
    const next = (): void => {
      if (i >= chunks.length || s.destroyed) return;
      const c = chunks[i++];
      if (c !== undefined) s.write(c);
      if (gapMs > 0) setTimeout(next, gapMs);
      else next();
    };
    s.on('connect', next);
  });
}

const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

function post(type: string, body: Buffer | string, extra = ''): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([
    Buffer.from(
      `POST /v1/traces HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: ${type}\r\nContent-Length: ${String(b.length)}\r\n${extra}Connection: close\r\n\r\n`,
    ),
    b,
  ]);
}

const span = (traceId: string, spanId: string, name = 'GET /'): object => ({
  traceId,
  spanId,
  name,
  kind: 2,
  startTimeUnixNano: '1700000000000000000',
  endTimeUnixNano: '1700000000005000000',
});
const exportOf = (spans: object[], service = 'productpage.default'): object => ({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ spans }],
    },
  ],
});

test('the trace receiver survives hostile clients and keeps serving', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { startTraceReceiver } = await import(${JSON.stringify(TELEMETRY)});
       const r = await startTraceReceiver({ host: ${JSON.stringify(HOST)}, port: 0 });
       console.log(r.url);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(() => {
    child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', () => {
      reject(new Error(`receiver exited: ${stderr}`));
    });
  });
  const port = Number(new URL(url).port);
  const pid = child.pid;
  const alive = (): void => {
    assert.equal(child.exitCode, null, `receiver died: ${stderr}`);
    assert.equal(child.pid, pid);
  };

  // Slow attacks run in the background while the rest goes on.
  const slowHead = raw(port, ['POST /v1/traces HTTP/1.1\r\n', `Host: ${HOST}\r\n`], 20_000);
  const slowBody = raw(
    port,
    [
      `POST /v1/traces HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      '{',
    ],
    25_000,
  );

  // DNS rebinding: a page on evil.example resolving to 127.38.1.1 must not read or write spans.
  for (const host of ['evil.example', 'evil.example:4318', '10.0.0.1']) {
    const r = await raw(
      port,
      [`GET /api/traces HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`],
      5000,
    );
    assert.equal(status(r.text), 403, `Host ${host}: ${r.text.slice(0, 80)}`);
  }
  {
    const r = await raw(
      port,
      [
        post('application/json', '{}')
          .toString('latin1')
          .replace(`Host: ${HOST}`, 'Host: evil.example'),
      ],
      5000,
    );
    assert.equal(status(r.text), 403);
  }

  // Content-Length that announces more than the limit: refused before any body arrives.
  {
    const r = await raw(
      port,
      [
        `POST /v1/traces HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n`,
      ],
      5000,
    );
    assert.equal(status(r.text), 413, r.text.slice(0, 80));
  }
  // A chunked body that grows past the limit: 413 and the connection closed.
  {
    const chunk = `100000\r\n${'x'.repeat(0x100000)}\r\n`;
    const r = await raw(
      port,
      [
        `POST /v1/traces HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        ...Array.from({ length: 6 }, () => chunk),
      ],
      10_000,
    );
    assert.equal(status(r.text), 413, r.text.slice(0, 80));
    assert.ok(r.closed);
  }
  alive();

  // Malformed bodies: 400, never a crash.
  for (const [type, body] of [
    ['application/x-protobuf', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])],
    ['application/x-protobuf', Buffer.from([0x0b, 0x0b, 0x0b, 0x0b])],
    ['application/x-protobuf', Buffer.alloc(64, 0xff)],
    ['application/json', Buffer.from('{"resourceSpans": [')],
    ['application/json', Buffer.from('\u0000\u0001')],
    ['application/json', Buffer.from('['.repeat(500_000))],
  ] as const) {
    const r = await raw(port, [post(type, body)], 10_000);
    assert.equal(
      status(r.text),
      400,
      `${type} ${body.subarray(0, 8).toString('hex')}: ${r.text.slice(0, 120)}`,
    );
  }
  // Deeply nested but well-formed JSON: parsed, nothing stored, no crash.
  {
    const deep = `{"resourceSpans":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const r = await raw(port, [post('application/json', deep)], 10_000);
    assert.ok([200, 400].includes(status(r.text)), r.text.slice(0, 120));
  }
  // Protobuf groups nested deeply (wire type 3 inside unknown fields).
  {
    const groups = Buffer.concat([Buffer.alloc(200_000, 0x1b), Buffer.alloc(200_000, 0x1c)]);
    const r = await raw(port, [post('application/x-protobuf', groups)], 10_000);
    assert.ok([200, 400].includes(status(r.text)), r.text.slice(0, 120));
  }
  alive();

  // gzip is not accepted (OTLP lets a server refuse it): 415, not a parse of compressed bytes — so no gzip bomb.
  {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    const r = await raw(
      port,
      [post('application/json', bomb, 'Content-Encoding: gzip\r\n')],
      10_000,
    );
    assert.equal(status(r.text), 415, r.text.slice(0, 120));
  }

  // One export with 100 000 spans of one trace (~4 MiB protobuf): answered promptly, store bounded.
  {
    const traceId = 'ab'.repeat(16);
    const spans = Array.from({ length: 100_000 }, (_, i) => ({
      traceId,
      spanId: (i + 1).toString(16).padStart(16, '0'),
    }));
    const body = Buffer.from(encodeOtlpProtobuf(exportOf(spans)));
    assert.ok(body.length < 4 * 1024 * 1024, String(body.length));
    const r = await raw(port, [post('application/x-protobuf', body)], 15_000);
    assert.equal(status(r.text), 200, `100k spans: ${r.text.slice(0, 120) || 'no answer in 15 s'}`);
    const list = await fetch(`${url}/api/traces?limit=1000`);
    assert.equal(list.status, 200);
    const { traces } = (await list.json()) as { traces: { spanCount: number }[] };
    assert.ok(traces.reduce((n, x) => n + x.spanCount, 0) <= 10_000);
  }
  alive();

  // Slowloris: both slow connections were closed by the server's own timeouts.
  const [head, body] = await Promise.all([slowHead, slowBody]);
  assert.ok(head.closed, 'a head that never ends is dropped (headers timeout)');
  assert.ok(body.closed, 'a body that never ends is dropped (request timeout)');
  assert.ok([0, 408].includes(status(head.text)), head.text.slice(0, 80));

  // Still serving: a valid export is stored and readable.
  const traceId = 'cd'.repeat(16);
  const ok = await raw(
    port,
    [
      post(
        'application/json',
        JSON.stringify(exportOf([span(traceId, '01'.repeat(8), 'GET /ok')])),
      ),
    ],
    5000,
  );
  assert.equal(status(ok.text), 200, ok.text.slice(0, 120));
  const got = await fetch(`${url}/api/traces/${traceId}`);
  assert.equal(got.status, 200);
  assert.match(await got.text(), /GET \/ok/);
  alive();
  const rss = Number(
    /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1],
  );
  assert.ok(rss < 400 * 1024, `receiver RSS ${String(rss)} kB`);
});
