// The raw-socket HTTP/1.1 server as the listeners use a node:http server
// (src/proxy/http/http1-server.ts, the default transport): requests reach a
// handler as an Http1Request / Http1Sink pair with node's shape, over real
// sockets — keep-alive, a streamed body with `100 Continue`, upgrades handed
// over without losing a byte, an `Upgrade` field alone served as a request,
// CONNECT without a handler closed, parse errors answered by the listener's
// function, a client vanishing mid-body (no throw), idle connections
// closed on drain while a busy one finishes, and a response saying
// `connection: close` ending its connection.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Duplex } from 'node:stream';
import { createRawHttpServer, type Http1Handlers } from '../../src/proxy/http/http1-server.js';
import type { Http1Request } from '../../src/proxy/http/http1-request.js';
import { rawUntilClose } from '../helpers/index.js';

const HOST = '127.33.0.3';
const run = promisify(execFile);

async function serve(
  t: { after: (fn: () => Promise<void> | void) => void },
  handlers: Partial<Http1Handlers>,
): Promise<{ port: number; server: ReturnType<typeof createRawHttpServer> }> {
  const server = createRawHttpServer(
    {
      request:
        handlers.request ??
        ((_req, res) => {
          res.end('ok');
        }),
      parseError:
        handlers.parseError ??
        ((f, socket) => {
          socket.end(`HTTP/1.1 ${String(f.status)} X\r\ncontent-length: 0\r\n\r\n`);
        }),
      ...(handlers.upgrade === undefined ? {} : { upgrade: handlers.upgrade }),
      ...(handlers.connect === undefined ? {} : { connect: handlers.connect }),
    },
    { headersTimeoutMs: 2_000, keepAliveTimeoutMs: 5_000 },
  );
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** Opens a connection, writes `bytes`, and collects what comes back until close (5 s bound). */
const raw = (port: number, bytes: string, endAfter = true): Promise<string> =>
  rawUntilClose(HOST, port, bytes, endAfter);

test('requests: node-shaped request and response, keep-alive, a streamed body with 100 Continue (curl)', async (t) => {
  const seen: { method: string; url: string; host: string | undefined; body: string }[] = [];
  const { port } = await serve(t, {
    request(req, res) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method,
          url: req.url,
          host: req.headers.host,
          body: Buffer.concat(chunks).toString(),
        });
        res.setHeader('x-seen', String(seen.length));
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`got ${req.url}`);
      });
    },
  });
  const base = `http://${HOST}:${String(port)}`;
  // Two URLs on one curl: the second reuses the connection (keep-alive).
  const { stdout, stderr } = await run('curl', ['-sS', '-v', `${base}/one`, `${base}/two?x=1`]);
  assert.equal(stdout, 'got /onegot /two?x=1');
  assert.match(stderr, /Re-using existing connection|Reusing existing/);
  assert.match(stderr, /< HTTP\/1.1 201/);
  assert.match(stderr, /< x-seen: 2/);
  const post = await run('curl', [
    '-sS',
    '-i',
    '-H',
    'Expect: 100-continue',
    '--data-binary',
    'hello body',
    `${base}/post`,
  ]);
  assert.match(post.stdout, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 201/);
  assert.equal(seen.at(-1)?.body, 'hello body');
  assert.equal(seen.at(-1)?.method, 'POST');
});

test('upgrades: handed over with the bytes after the head, and none lost before the new owner reads', async (t) => {
  const got: { url: string; head: string; later: string }[] = [];
  const { port } = await serve(t, {
    upgrade(req: Http1Request, socket: Duplex, head: Buffer) {
      const entry = { url: req.url, head: head.toString(), later: '' };
      got.push(entry);
      // The new owner reads late: bytes sent meanwhile must wait in the socket, not vanish.
      setTimeout(() => {
        socket.on('data', (c: Buffer) => {
          entry.later += c.toString();
          if (entry.later.includes('END'))
            socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\nbye');
        });
      }, 100);
    },
  });
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host: HOST, port }, () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nFIRST',
      );
      setTimeout(() => socket.write('-SECOND-END'), 20);
    });
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close; got ${out}`));
    }, 5000);
    socket.on('data', (c: Buffer) => (out += c.toString()));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
  assert.match(reply, /bye$/);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.url, '/ws');
  const upgraded = got.at(0);
  assert.ok(upgraded !== undefined);
  assert.equal(upgraded.head + upgraded.later, 'FIRST-SECOND-END');
  // `Upgrade` without the `upgrade` connection option is a plain request (as node:http).
  const plain = await raw(port, 'GET /p HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n');
  assert.match(plain, /^HTTP\/1.1 200 /);
  assert.equal(got.length, 1);
});

test('CONNECT without a handler closes; with one it gets the socket; parse errors go to the listener', async (t) => {
  const { port } = await serve(t, {});
  assert.equal(await raw(port, 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n'), '');
  const failures: string[] = [];
  const second = await serve(t, {
    connect(req, socket) {
      socket.end(`HTTP/1.1 200 Connection Established\r\nx-target: ${req.url}\r\n\r\n`);
    },
    parseError(f, socket) {
      failures.push(`${String(f.status)} ${f.reason}`);
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nBad Request');
    },
  });
  assert.match(
    await raw(second.port, 'CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n'),
    /x-target: b:443/,
  );
  const bad = await raw(second.port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
  assert.equal(bad, 'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nBad Request');
  assert.equal(failures.length, 1);
  // A head not complete in time: counted from the connection's arrival (408 via the listener).
  const slow = await raw(second.port, 'GET / HTTP/1.1\r\nHost: a\r\n', false);
  assert.match(slow, /^HTTP\/1.1 400/);
  assert.match(failures[1] ?? '', /^408 /);
});

test('a client gone mid-body aborts the request without a throw; drain closes idle connections only', async (t) => {
  let aborted = 0;
  let finish: (() => void) | undefined;
  const { port, server } = await serve(t, {
    request(req, res) {
      if (req.url === '/slow') {
        finish = () => res.end('late');
        return;
      }
      if (req.url === '/fast') {
        res.end('fast');
        return;
      }
      req.on('aborted', () => (aborted += 1));
      req.resume();
    },
  });
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host: HOST, port }, () => {
      socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial');
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 100);
    });
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(aborted, 1);
  // One idle keep-alive connection, one busy: drain closes the idle one, the busy one finishes.
  const idle = net.connect({ host: HOST, port });
  let idleClosed = false;
  idle.on('close', () => (idleClosed = true));
  idle.on('data', () => undefined);
  idle.write('GET /fast HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n');
  const busy = raw(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', false);
  await new Promise((r) => setTimeout(r, 200));
  server.closeIdleConnections();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(idleClosed, true);
  assert.ok(finish !== undefined);
  finish();
  setTimeout(() => {
    server.closeAllConnections();
  }, 100);
  assert.match(await busy, /late$/);
});

test('a handed-off server keeps its timeouts after close() (the gateway closes replaced sides)', async (t) => {
  const failures: number[] = [];
  const handed = createRawHttpServer(
    {
      request: (_req, res) => res.end('ok'),
      parseError(f, socket) {
        failures.push(f.status);
        socket.end(`HTTP/1.1 ${String(f.status)} X\r\ncontent-length: 0\r\n\r\n`);
      },
    },
    { headersTimeoutMs: 1_000, keepAliveTimeoutMs: 5_000 },
  );
  // Never listens; closed once (as a replaced listener side is), then handed a connection.
  handed.close();
  const front = net.createServer((socket) => handed.emit('connection', socket));
  await new Promise<void>((resolve) => front.listen(0, HOST, resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        handed.closeAllConnections();
        front.close(() => {
          resolve();
        });
      }),
  );
  const port = (front.address() as net.AddressInfo).port;
  const started = Date.now();
  const answer = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\n', false);
  assert.match(answer, /^HTTP\/1.1 408 /);
  assert.deepEqual(failures, [408]);
  assert.ok(Date.now() - started < 4_000, `closed after ${String(Date.now() - started)} ms`);
});

test('close() closes idle keep-alive connections now and busy ones after their response (as node:http)', async (t) => {
  let finish: (() => void) | undefined;
  const { port, server } = await serve(t, {
    request(req, res) {
      if (req.url === '/slow') finish = () => res.end('late');
      else res.end('fast');
    },
  });
  const idle = net.connect({ host: HOST, port });
  let idleClosed = false;
  idle.on('close', () => (idleClosed = true));
  idle.on('data', () => undefined);
  idle.write('GET /fast HTTP/1.1\r\nHost: a\r\n\r\n');
  const busy = raw(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', false);
  await new Promise((r) => setTimeout(r, 200));
  server.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(idleClosed, true, 'the idle keep-alive connection closed with the server');
  assert.ok(finish !== undefined);
  finish();
  // The busy connection gets its response, then the server closes it (raw() resolves on close).
  assert.match(await busy, /late$/);
});

test('a response that says `connection: close`, or shouldKeepAlive = false, ends the connection: a pipelined request is not served', async (t) => {
  const seen: string[] = [];
  const { port } = await serve(t, {
    request(req, res) {
      seen.push(req.url);
      if (req.url === '/header') res.writeHead(400, { connection: 'close' });
      else if (req.url === '/flag') {
        // As the outbound listener refuses a request head (node's ServerResponse property).
        res.shouldKeepAlive = false;
        res.writeHead(400, { 'content-type': 'text/plain' });
      } else res.writeHead(200);
      res.end('x');
    },
  });
  const next = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
  for (const path of ['/header', '/flag']) {
    // The client does not half-close: only the server can end the connection.
    const out = await raw(port, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n${next}`, false);
    assert.equal(out.match(/HTTP\/1\.1 /g)?.length, 1, `${path}: ${out}`);
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal(out.match(/\r\nconnection: close\r\n/gi)?.length, 1, `${path}: one close field`);
  }
  assert.deepEqual(seen, ['/header', '/flag']);
});

test("the response's close: after the turn that ended it, to listeners still there; nothing scheduled without one", async (t) => {
  const immediates = (): number =>
    process.getActiveResourcesInfo().filter((r) => r === 'Immediate').length;
  const events: string[] = [];
  const scheduled: number[] = [];
  const { port } = await serve(t, {
    request(req, res) {
      if (req.url === '/listened') {
        const removed = (): void => {
          events.push('removed listener called');
        };
        res.on('close', () => {
          events.push('close');
          // Added after close: still called, at the next turn.
          res.on('close', () => {
            events.push('late close');
          });
        });
        res.on('close', removed);
        res.removeListener('close', removed);
        const before = immediates();
        res.end('listened');
        scheduled.push(immediates() - before);
        events.push('after end');
        return;
      }
      const before = immediates();
      res.end('quiet');
      scheduled.push(immediates() - before);
    },
  });
  const base = `http://${HOST}:${String(port)}`;
  const { stdout } = await run('curl', [
    '-sS',
    `${base}/listened`,
    '--next',
    '-sS',
    `${base}/quiet`,
  ]);
  assert.equal(stdout, 'listenedquiet');
  for (let i = 0; i < 50 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(events, ['after end', 'close', 'late close']);
  // One immediate more for the response with a listener than for the one without, which
  // schedules at most the turn's release of held writes (src/proxy/http1/turn.ts: one per
  // turn, whatever number of responses it has).
  assert.equal(scheduled.length, 2);
  assert.equal((scheduled[0] ?? 0) - (scheduled[1] ?? 0), 1, `immediates ${scheduled.join(', ')}`);
  assert.ok((scheduled[1] ?? 0) <= 1, `immediates ${scheduled.join(', ')}`);
});
