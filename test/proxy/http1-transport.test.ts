// The raw-socket HTTP/1.1 server and client (src/proxy/http1) over real
// sockets: the hostile request corpus of test/security/hostile-requests.test.ts
// (its parser-level cases) against the server directly, keep-alive and
// pipelining, HEAD/204/304, HTTP/1.0 and close-delimited responses, chunked
// bodies with trailers, the header timeout, bounded read-ahead, and the pool:
// forwarding over keep-alive mutual TLS with heads copied and hop-by-hop
// fields dropped, the retry of a request written to a stale keep-alive
// connection, the pending limit and the response timeout.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tls from 'node:tls';
import { rawUntilClose, tempDir } from '../helpers/index.js';
import { issueCert, makeCa } from '../helpers/openssl-pki.js';
import {
  createHttp1Server,
  Http1Pool,
  serializeHead,
  type Http1ServerOptions,
  type ResponseHead,
  type ServerExchange,
} from '../../src/proxy/http1/index.js';
import { isPalisadeError, type PalisadeError } from '../../src/errors/index.js';

const HOST = '127.32.0.2';

/** Starts an http1 server; stopped by the test's end. */
async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  onRequest: (ex: ServerExchange) => void,
  extra: Partial<Http1ServerOptions> = {},
): Promise<number> {
  const server = createHttp1Server({ onRequest, ...extra });
  const { port } = await server.listen(0, HOST);
  t.after(() => server.close());
  return port;
}

/** Writes `bytes`, half-closes, and returns everything the server sent before closing. */
const raw = (port: number, bytes: string | Buffer, host = HOST): Promise<string> =>
  rawUntilClose(host, port, bytes);

const statuses = (out: string): number[] =>
  [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

/** Answers every request with its method, target and body. */
function echo(ex: ServerExchange): void {
  const chunks: Buffer[] = [];
  ex.onBody({
    data: (c) => {
      chunks.push(Buffer.from(c));
      return true;
    },
    end: (trailers) => {
      const body = Buffer.from(
        `${ex.head.method} ${ex.head.target} ${Buffer.concat(chunks).toString('latin1')}${trailers.length > 0 ? ` trailers=${trailers.join(',')}` : ''}`,
      );
      ex.respond(200, ['content-type', 'text/plain'], body);
    },
  });
}

test('the hostile corpus against the http1 server: refused with its status, nothing smuggled', async (t) => {
  const seen: string[] = [];
  const port = await serve(t, (ex) => {
    seen.push(`${ex.head.method} ${ex.head.target}`);
    echo(ex);
  });
  const h = 'Host: app.example\r\n';
  const start = (m: string, p: string): string => `${m} ${p} HTTP/1.1\r\n${h}`;
  const inner = `GET /admin-smuggled HTTP/1.1\r\n${h}\r\n`;
  // [name, payload, statuses allowed] — parser-level cases of hostile-requests.test.ts; what the
  // proxy adds above the transport (426 for HTTP/1.0, path normalisation) is not here.
  const cases: [string, string, number[]][] = [
    [
      'CL.TE',
      `${start('POST', '/ok')}Content-Length: ${String(5 + inner.length)}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'TE.CL',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${inner}\r\n0\r\n\r\n`,
      [400],
    ],
    [
      'TE identity, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [501],
    ],
    [
      'TE gzip, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [501],
    ],
    [
      'two TE headers',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'TE chunked, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'TE xchunked',
      `${start('POST', '/ok')}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'space before colon',
      `${start('POST', '/ok')}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'duplicate Content-Length',
      `${start('POST', '/ok')}Content-Length: 0\r\nContent-Length: ${String(inner.length)}\r\n\r\n${inner}`,
      [400],
    ],
    [
      'Content-Length list',
      `${start('POST', '/ok')}Content-Length: 0, ${String(inner.length)}\r\n\r\n${inner}`,
      [400],
    ],
    ['Content-Length +0', `${start('POST', '/ok')}Content-Length: +0\r\n\r\n${inner}`, [400]],
    [
      'obs-fold',
      `${start('GET', '/ok')}X-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n${inner}`,
      [400],
    ],
    ['bare CR in a header', `${start('GET', '/ok')}X-A: a\rX-B: b\r\n\r\n${inner}`, [400]],
    ['bare LF line endings', `GET /ok HTTP/1.1\nHost: app.example\n\n${inner}`, [400]],
    ['NUL in a header value', `${start('GET', '/ok')}X-A: a\u0000b\r\n\r\n${inner}`, [400]],
    ['NUL in the path', `GET /ok\u0000 HTTP/1.1\r\n${h}\r\n`, [400]],
    ['header name with a space', `${start('GET', '/ok')}X A: b\r\n\r\n`, [400]],
    ['oversized header', `${start('GET', '/ok')}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, [431]],
    ['too many headers', `${start('GET', '/ok')}${'X-A: b\r\n'.repeat(101)}\r\n`, [431]],
    ['two Host headers', `${start('GET', '/ok')}Host: evil.example.com\r\n\r\n`, [400]],
    ['no Host in HTTP/1.1', `GET /ok HTTP/1.1\r\n\r\n`, [400]],
    ['HTTP/2.0 request line', `GET /ok HTTP/2.0\r\n${h}\r\n`, [400]],
    ['HTTP/1.2 request line', `GET /ok HTTP/1.2\r\n${h}\r\n`, [400]],
    ['HTTP/0.9', `GET /ok\r\n\r\n`, [400]],
    ['a fragment in the target', `GET /ok#/../admin HTTP/1.1\r\n${h}\r\n`, [400]],
    ['unknown method', `FOO /ok HTTP/1.1\r\n${h}\r\n`, [400]],
    // Found by the differential fuzz test: llhttp refuses each of these, so http1 must too.
    [
      'HTAB after a Content-Length value',
      `${start('POST', '/ok')}Content-Length: 0\t\r\n\r\n${inner}`,
      [400],
    ],
    [
      'HTAB after a Transfer-Encoding value',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    ['a quote in an absolute-form authority', `GET http://a"b/ok HTTP/1.1\r\n${h}\r\n`, [400]],
    // The head never completes: the version is refused as soon as its bytes are in.
    ['HTTP/1.2 in an unfinished head', `GET /ok HTTP/1.2\r\nHost:\r\n\r`, [400]],
    [
      'TLS hello on a plaintext port',
      '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
      [400],
    ],
    [
      'chunk size with whitespace',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'chunk data longer than its size',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\n\r\n1\r\nhello\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'Content-Length in trailers',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n${inner}`,
      [400],
    ],
    [
      'chunked in HTTP/1.0',
      `POST /ok HTTP/1.0\r\n${h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'chunked body hiding a request',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`,
      [200],
    ],
  ];
  for (const [name, payload, allowed] of cases) {
    const out = await raw(port, Buffer.from(payload, 'latin1'));
    const got = statuses(out);
    assert.ok(
      got.length >= 1 && allowed.includes(got[0] ?? 0),
      `${name}: got ${JSON.stringify(out.slice(0, 80))}`,
    );
    assert.equal(got.length, 1, `${name}: exactly one response (${String(got.length)})`);
  }
  assert.ok(
    !seen.some((s) => s.includes('smuggled')),
    `smuggled request reached the app: ${seen.join(' | ')}`,
  );
  assert.ok(
    seen.includes('POST /ok'),
    'the chunked body hiding a request was served as one request',
  );
});

test('keep-alive, pipelining in order, HEAD/204/304, HTTP/1.0 and Connection: close', async (t) => {
  const port = await serve(t, (ex) => {
    if (ex.head.target === '/204') ex.respond(204, []);
    else if (ex.head.target === '/304') ex.respond(304, ['etag', '"x"']);
    else if (ex.head.target === '/stream') {
      // No content-length: chunked for 1.1, close-delimited for 1.0.
      ex.writeHead(200, ['content-type', 'text/plain']);
      ex.write(Buffer.from('part1-'));
      ex.end(Buffer.from('part2'));
    } else echo(ex);
  });
  const h = 'Host: a\r\n';
  // Three pipelined requests in one write: answered in order on the same connection.
  const out = await raw(
    port,
    `GET /1 HTTP/1.1\r\n${h}\r\nPOST /2 HTTP/1.1\r\n${h}Content-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n${h}\r\n`,
  );
  assert.deepEqual(statuses(out), [200, 200, 200]);
  assert.ok(
    out.indexOf('GET /1') < out.indexOf('POST /2 abc') &&
      out.indexOf('POST /2 abc') < out.indexOf('GET /3'),
    out,
  );
  const head = await raw(port, `HEAD /x HTTP/1.1\r\n${h}\r\n`);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(head.endsWith('\r\n\r\n'), `HEAD response has no body: ${JSON.stringify(head)}`);
  const nobody = await raw(port, `GET /204 HTTP/1.1\r\n${h}\r\nGET /304 HTTP/1.1\r\n${h}\r\n`);
  assert.deepEqual(statuses(nobody), [204, 304]);
  assert.doesNotMatch(nobody, /transfer-encoding/i);
  const chunked = await raw(port, `GET /stream HTTP/1.1\r\n${h}\r\n`);
  assert.match(
    chunked,
    /transfer-encoding: chunked\r\n\r\n6\r\npart1-\r\n5\r\npart2\r\n0\r\n\r\n$/,
  );
  const old = await raw(port, `GET /stream HTTP/1.0\r\n\r\n`);
  assert.match(old, /connection: close\r\n\r\npart1-part2$/);
  // Connection: close: the second request is never answered.
  const closing = await raw(
    port,
    `GET /a HTTP/1.1\r\n${h}Connection: close\r\n\r\nGET /b HTTP/1.1\r\n${h}\r\n`,
  );
  assert.deepEqual(statuses(closing), [200]);
  assert.match(closing, /connection: close/);
  // A chunked request with trailers; 100 Continue before the body is read.
  const trailers = await raw(
    port,
    `POST /t HTTP/1.1\r\n${h}Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n`,
  );
  assert.deepEqual(statuses(trailers), [100, 200]);
  assert.match(trailers, /POST \/t abc trailers=X-Sum,1/);
});

test('header timeout answers 408; a paused body bounds what is read ahead', async (t) => {
  let paused: ServerExchange | undefined;
  const hash = createHash('sha256');
  let bytes = 0;
  let done: (() => void) | undefined;
  const finished = new Promise<void>((r) => (done = r));
  const port = await serve(
    t,
    (ex) => {
      ex.onBody({
        data(c) {
          hash.update(c);
          bytes += c.length;
          // Pause after every piece; resume on the next turn (a slow consumer).
          paused = ex;
          setTimeout(() => {
            paused?.resume();
          }, 1);
          return false;
        },
        end() {
          ex.respond(200, []);
          done?.();
        },
      });
    },
    { headersTimeoutMs: 300, checkIntervalMs: 50, maxReadAheadBytes: 16 * 1024 },
  );
  const started = Date.now();
  // A head that never ends, on a socket kept open.
  const timedOut = await new Promise<string>((resolve) => {
    const s = net.connect({ host: HOST, port }, () => s.write('GET /slow HTTP/1.1\r\nHost: a\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('close', () => {
      resolve(got);
    });
    setTimeout(() => s.destroy(), 4000);
  });
  assert.match(timedOut, /^HTTP\/1\.1 408 /);
  assert.ok(Date.now() - started < 3900, 'closed by the header timeout');
  // 4 MiB through a consumer that pauses after every piece: all of it arrives, intact.
  const body = Buffer.alloc(4 * 1024 * 1024, 7);
  const reply = await raw(
    port,
    Buffer.concat([
      Buffer.from(`PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: ${String(body.length)}\r\n\r\n`),
      body,
    ]),
  );
  await finished;
  assert.deepEqual(statuses(reply), [200]);
  assert.equal(bytes, body.length);
  assert.equal(hash.digest('hex'), createHash('sha256').update(body).digest('hex'));
});

test('client pool: forwarding over keep-alive mTLS, heads copied with hop-by-hop fields dropped', async (t) => {
  const dir = tempDir('palisade-http1-');
  t.after(() => {
    dir.cleanup();
  });
  await makeCa(dir.path, 'ca', 'http1 test CA');
  await issueCert(dir.path, 'ca', 'server', 'back', 'subjectAltName=DNS:back.test');
  await issueCert(dir.path, 'ca', 'client', 'front', 'subjectAltName=DNS:front.test');
  const pem = (n: string): Buffer => readFileSync(join(dir.path, n));
  // The app: node:http, records what it received.
  const received: { url: string; headers: string[]; body: string; trailers: string[] }[] = [];
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        url: req.url ?? '',
        headers: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
        trailers: req.rawTrailers,
      });
      res.setHeader('keep-alive', 'timeout=5');
      res.end(`served ${req.url ?? ''}`);
    });
  });
  await new Promise<void>((r) => app.listen(0, HOST, r));
  t.after(
    () =>
      new Promise<void>((r) => {
        app.closeAllConnections();
        app.close(() => {
          r();
        });
      }),
  );
  const appPort = (app.address() as net.AddressInfo).port;

  // A forwarding hop: http1 server → pool → next hop, the response streamed back.
  const forward = (pool: Http1Pool) => (ex: ServerExchange) => {
    const chunked = ex.head.framing.kind === 'chunked';
    const body = pool.request(
      {
        method: ex.head.method,
        head: serializeHead(ex.head, { add: ['x-hop', 'front'], chunked }),
        body: ex.head.framing.kind === 'none' ? 'none' : chunked ? 'chunked' : 'length',
      },
      {
        onResponse: (head: ResponseHead) => ex.forwardHead(head),
        onData: (c) => ex.write(c),
        onEnd: (trailers) => {
          ex.end(undefined, trailers);
        },
        onError: (err: PalisadeError) => {
          if (!ex.headersSent) ex.respond(502, [], Buffer.from(err.code));
        },
      },
    );
    if (ex.head.framing.kind !== 'none')
      ex.onBody({
        data: (c) => body.write(c),
        end: (trailers) => {
          body.end(trailers);
        },
      });
  };
  const backPool = new Http1Pool({ connect: () => net.connect({ host: HOST, port: appPort }) });
  const back = createHttp1Server({
    onRequest: forward(backPool),
    tls: {
      key: pem('server.key'),
      cert: pem('server.crt'),
      ca: pem('ca.crt'),
      requestCert: true,
      rejectUnauthorized: true,
    },
  });
  const backPort = (await back.listen(0, HOST)).port;
  let tlsConnections = 0;
  const frontPool = new Http1Pool({
    maxConnections: 2,
    connect: () => {
      tlsConnections += 1;
      return tls.connect({
        host: HOST,
        port: backPort,
        servername: 'back.test',
        key: pem('client.key'),
        cert: pem('client.crt'),
        ca: pem('ca.crt'),
      });
    },
  });
  const front = createHttp1Server({ onRequest: forward(frontPool) });
  const frontPort = (await front.listen(0, HOST)).port;
  t.after(async () => {
    frontPool.close();
    backPool.close();
    await front.close();
    await back.close();
  });

  const out = await raw(
    frontPort,
    `GET /one HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: Basic c2VjcmV0\r\nX-Kept: yes\r\n\r\n` +
      `POST /two HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 9\r\n\r\n`,
  );
  assert.deepEqual(statuses(out), [200, 200], out);
  assert.match(out, /served \/one/);
  assert.doesNotMatch(out, /keep-alive: timeout/i, 'the upstream Keep-Alive header is hop-by-hop');
  assert.equal(received.length, 2);
  const one = received[0];
  assert.ok(one !== undefined);
  assert.deepEqual(one.headers, [
    'Host',
    'app',
    'X-Kept',
    'yes',
    'x-hop',
    'front',
    'x-hop',
    'front',
  ]);
  const two = received[1];
  assert.ok(two !== undefined);
  assert.equal(two.body, 'abc');
  assert.deepEqual(two.trailers, ['X-T', '9']);
  // Both requests over one keep-alive mTLS connection.
  assert.equal(tlsConnections, 1);
});

test('client pool: a stale keep-alive connection is retried once; pending limit; response timeout', async (t) => {
  // An upstream that answers the first request on each connection and drops the second unanswered
  // (as a server that closed an idle connection just as the request arrived).
  let connections = 0;
  let silent = false;
  const upstream = net.createServer((s) => {
    connections += 1;
    let n = 0;
    s.on('data', (c: Buffer) => {
      if (silent) return;
      for (const _ of c.toString('latin1').matchAll(/\r\n\r\n/g)) {
        n += 1;
        if (n === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        else s.destroy();
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, HOST, r));
  t.after(
    () =>
      new Promise<void>((r) =>
        upstream.close(() => {
          r();
        }),
      ),
  );
  const port = (upstream.address() as net.AddressInfo).port;
  const pool = new Http1Pool({
    connect: () => net.connect({ host: HOST, port }),
    maxConnections: 1,
    maxPending: 1,
    responseTimeoutMs: 300,
    checkIntervalMs: 50,
  });
  t.after(() => {
    pool.close();
  });
  const get = (path: string): Promise<{ status: number; body: string } | PalisadeError> =>
    new Promise((resolve) => {
      let status = 0;
      let body = '';
      pool.request(
        {
          method: 'GET',
          head: Buffer.from(`GET ${path} HTTP/1.1\r\nhost: up\r\n\r\n`),
          body: 'none',
        },
        {
          onResponse: (h) => (status = h.status),
          onData: (c) => {
            body += c.toString();
            return true;
          },
          onEnd: () => {
            resolve({ status, body });
          },
          onError: resolve,
        },
      );
    });
  assert.deepEqual(await get('/1'), { status: 200, body: 'ok' });
  // Written to the reused connection, dropped unanswered: retried on a fresh one.
  assert.deepEqual(await get('/2'), { status: 200, body: 'ok' });
  assert.equal(connections, 2);
  // One connection, one pending: a third concurrent request overflows.
  silent = true;
  const results = await Promise.all([get('/a'), get('/b'), get('/c')]);
  const codes = results.map((r) => (isPalisadeError(r) ? r.code : 'ok'));
  assert.ok(codes.includes('PAL_ERR_HTTP1_POOL_OVERFLOW'), codes.join());
  assert.ok(codes.includes('PAL_ERR_HTTP1_UPSTREAM_TIMEOUT'), codes.join());
});
