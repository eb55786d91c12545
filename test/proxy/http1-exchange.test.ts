// The raw-socket HTTP/1.1 transport under the proxy's layers
// (src/proxy/http/http1-exchange.ts): the Exchange a layer sees for a
// request served by src/proxy/http1 must look like node:http's — the same
// header object for the same bytes (node:http is the oracle, over real
// sockets), a body stream, a ResponseSink with node's setHeader/writeHead/
// end semantics, trailers, HEAD without a body, and local replies (plain
// and gRPC with the status in trailers).
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import {
  createHttp1Server,
  DEFAULT_LIMITS,
  isFailure,
  parseResponseHead,
  type ServerExchange,
} from '../../src/proxy/http1/index.js';
import { http1Exchange } from '../../src/proxy/http/http1-exchange.js';
import type { Exchange } from '../../src/proxy/http/types.js';
import { rawUntilClose } from '../helpers/index.js';

const HOST = '127.33.0.2';

/** Serves `handle` on the raw-socket server through the adapter; stopped by the test's end. */
async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  handle: (x: Exchange) => void,
): Promise<number> {
  const server = createHttp1Server({
    onRequest: (ex: ServerExchange) => {
      const authority = ex.head.host;
      handle(http1Exchange(ex, { authority, host: authority, port: 80, path: ex.head.target }));
    },
  });
  const { port } = await server.listen(0, HOST);
  t.after(() => server.close());
  return port;
}

/** Sends `bytes` and returns what came back until the server closed (5 s bound). */
const raw = (port: number, bytes: string): Promise<string> => rawUntilClose(HOST, port, bytes);

test('the header object equals node:http req.headers for the same request bytes', async (t) => {
  const request =
    'GET /a?b=1 HTTP/1.1\r\nHost: svc.local:8080\r\nX-Multi: one\r\nx-multi: two\r\n' +
    'Cookie: a=1\r\ncookie: b=2\r\nSet-Cookie: s=1\r\nset-cookie: s=2\r\n' +
    'Content-Type: text/plain\r\ncontent-type: text/html\r\nUser-Agent: ua1\r\n' +
    'user-agent: ua2\r\nAccept: */*\r\nConnection: close\r\n\r\n';
  let ours: unknown;
  const port = await serve(t, (x) => {
    ours = { ...x.head.headers };
    assert.equal(x.head.method, 'GET');
    assert.equal(x.head.protocol, 'HTTP/1.1');
    assert.equal(x.head.remoteAddress, '127.0.0.1');
    assert.equal(x.hasBody, false);
    x.sink.end('ok');
  });
  let theirs: unknown;
  const oracle = http.createServer((req, res) => {
    theirs = { ...req.headers };
    res.end('ok');
  });
  await new Promise<void>((r) => oracle.listen(0, HOST, r));
  t.after(
    () =>
      new Promise<void>((r) =>
        oracle.close(() => {
          r();
        }),
      ),
  );
  const oraclePort = (oracle.address() as net.AddressInfo).port;
  const [a, b] = await Promise.all([raw(port, request), raw(oraclePort, request)]);
  assert.match(a, /^HTTP\/1\.1 200 /);
  assert.match(b, /^HTTP\/1\.1 200 /);
  assert.deepEqual(ours, theirs);
});

test('body stream in, setHeader/writeHead merged, chunked body with trailers out', async (t) => {
  const port = await serve(t, (x) => {
    const chunks: Buffer[] = [];
    x.body().on('data', (c: Buffer) => chunks.push(c));
    x.body().on('end', () => {
      x.sink.setHeader('x-set', 'early');
      x.sink.appendHeader('x-list', 'a');
      x.sink.appendHeader('x-list', ['b', 'c']);
      x.sink.writeHead(201, { 'content-type': 'text/plain', trailer: 'x-sum' });
      x.sink.write(Buffer.from('got:'));
      x.sink.write(Buffer.concat(chunks));
      x.sink.addTrailers({ 'x-sum': String(Buffer.concat(chunks).length) });
      x.sink.end();
    });
  });
  const res = await new Promise<{
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
    trailers: NodeJS.Dict<string>;
  }>((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method: 'POST', path: '/echo', agent: false },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => {
          resolve({ status: r.statusCode ?? 0, headers: r.headers, body, trailers: r.trailers });
        });
      },
    );
    req.on('error', reject);
    req.write('hello ');
    req.end('world');
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers['x-set'], 'early');
  assert.equal(res.headers['x-list'], 'a, b, c');
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.body, 'got:hello world');
  assert.equal(res.trailers['x-sum'], '11');
});

test('local replies: plain with content-length, gRPC as 200 with the status in trailers, HEAD without a body', async (t) => {
  let grpcSent: number | undefined;
  const port = await serve(t, (x) => {
    if (x.head.method === 'HEAD') {
      x.sink.end('a body HEAD must not carry');
      return;
    }
    x.reply(403, 'RBAC: access denied', { 'x-flag': 'RBAC' });
    if (x.grpc) grpcSent = x.sentGrpcStatus();
  });
  const plain = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(plain, /^HTTP\/1\.1 403 /);
  assert.match(plain, /\r\nx-flag: RBAC\r\n/i);
  assert.match(plain, /\r\ncontent-length: 19\r\n/i);
  assert.ok(plain.endsWith('\r\n\r\nRBAC: access denied'), plain);

  const grpc = await raw(
    port,
    'POST /pkg.Svc/M HTTP/1.1\r\nHost: a\r\ncontent-type: application/grpc\r\n' +
      'content-length: 0\r\nConnection: close\r\n\r\n',
  );
  assert.match(grpc, /^HTTP\/1\.1 200 /);
  assert.match(grpc, /\r\n0\r\ngrpc-status: 7\r\ngrpc-message: RBAC: access denied\r\n\r\n$/);
  assert.equal(grpcSent, 7);

  const head = await raw(port, 'HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, /\r\ncontent-length: 26\r\n/i);
  assert.ok(head.endsWith('\r\n\r\n'), JSON.stringify(head));
});

test('a slow reader of a large body pauses the socket and still gets every byte', async (t) => {
  const size = 4 * 1024 * 1024;
  const port = await serve(t, (x) => {
    let got = 0;
    let most = 0;
    const body = x.body();
    body.pause();
    const timer = setInterval(() => {
      let c: Buffer | null;
      most = Math.max(most, body.readableLength);
      while ((c = body.read() as Buffer | null) !== null) got += c.length;
    }, 5);
    body.on('end', () => {
      clearInterval(timer);
      // Without backpressure the whole 4 MiB piles up in the stream between two reads.
      x.sink.end(most <= 512 * 1024 ? String(got) : `unbounded: ${String(most)}`);
    });
    body.on('error', () => {
      clearInterval(timer);
    });
  });
  const reply = await raw(
    port,
    `POST /up HTTP/1.1\r\nHost: a\r\ncontent-length: ${String(size)}\r\nConnection: close\r\n\r\n` +
      'x'.repeat(size),
  );
  assert.match(reply, /^HTTP\/1\.1 200 /);
  assert.ok(reply.endsWith(`\r\n\r\n${String(size)}`), reply.slice(0, 200));
});

test('forwardHead: an upstream head copied as received, with the proxy edits, names lower-cased', async (t) => {
  const upstream = Buffer.from(
    'HTTP/1.0 299 Whatever Upstream Says\r\nContent-Type: text/plain\r\nConnection: X-Secret\r\n' +
      'X-Secret: hop\r\nX-Envoy-Peer-Metadata: forged\r\nKeep-Alive: timeout=5\r\n' +
      'Set-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\n',
    'latin1',
  );
  const remove = new Set(['x-envoy-peer-metadata']);
  let refused: boolean | undefined;
  const port = await serve(t, (x) => {
    const head = parseResponseHead(Buffer.from(upstream), 'GET', DEFAULT_LIMITS);
    assert.ok(!isFailure(head));
    if (x.head.path === '/set-before') {
      // A field set before the head: the sink cannot copy the head as it came.
      x.sink.setHeader('x-set', '1');
      refused = x.sink.forwardHead?.(head, remove, []) === false;
      x.sink.writeHead(head.status, { 'content-length': 2 });
    } else assert.equal(x.sink.forwardHead?.(head, remove, ['x-added', 'yes']), true);
    assert.equal(x.sink.statusCode, 299);
    x.sink.end('ok');
  });
  const out = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  // The status's own reason phrase and HTTP/1.1, as Envoy writes them; hop-by-hop fields, the
  // fields Connection names and the removed ones gone; the rest in order, names lower-cased.
  assert.equal(
    out,
    'HTTP/1.1 299 \r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n' +
      'content-length: 2\r\nx-added: yes\r\nconnection: close\r\n\r\nok',
  );
  const fallback = await raw(
    port,
    'GET /set-before HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(refused, true);
  assert.match(fallback, /^HTTP\/1\.1 299 \r\n/);
  assert.match(fallback, /\r\nx-set: 1\r\n/);
});
