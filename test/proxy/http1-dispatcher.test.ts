/**
 * The raw-socket HTTP/1.1 client behind the `UpstreamDispatcher` seam
 * (src/proxy/http1/dispatcher.ts, the default HTTP/1.1 upstream client), against
 * a real node:http server on loopback: what the outbound and inbound layers
 * get from it must be what they got from undici — status, headers with
 * repeated fields as arrays, streamed request bodies, trailers, backpressure,
 * abort, connection failures with the socket's own error, and no header that
 * could split the request head.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { UpstreamHandler } from '../../src/proxy/h2-upstream.js';
import { createHttp1Origin } from '../../src/proxy/http1/dispatcher.js';

const HOST = '127.36.9.1';

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  trailers: Record<string, string | string[] | undefined>;
  error: Error | undefined;
}

function collect(onData?: UpstreamHandler['onResponseData']): {
  handler: UpstreamHandler;
  done: Promise<Got>;
} {
  const got: Got = { status: 0, headers: {}, body: '', trailers: {}, error: undefined };
  let finish: (g: Got) => void = () => undefined;
  const done = new Promise<Got>((resolve) => {
    finish = resolve;
  });
  return {
    done,
    handler: {
      onResponseStart(_c, status, headers) {
        got.status = status;
        got.headers = headers;
      },
      onResponseData(c, chunk) {
        got.body += chunk.toString('latin1');
        onData?.(c, chunk);
      },
      onResponseEnd(_c, trailers) {
        got.trailers = trailers;
        finish(got);
      },
      onResponseError(_c, error) {
        got.error = error;
        finish(got);
      },
    },
  };
}

test('the http1 dispatcher gives the layers what undici gave', async (t) => {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] =
    [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'grpc-status' });
        res.write('part');
        res.addTrailers({ 'grpc-status': '0' });
        res.end();
        return;
      }
      if (req.url === '/big') {
        res.end('x'.repeat(256 * 1024));
        return;
      }
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end(`echo ${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = createHttp1Origin({ host: HOST, port });
  t.after(async () => {
    await origin.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  await t.test('GET: status, repeated headers as arrays, Host added when absent', async () => {
    const { handler, done } = collect();
    origin.dispatch(
      { method: 'GET', path: '/x?y=1', headers: { 'x-a': 'b' }, body: null },
      handler,
    );
    const got = await done;
    assert.equal(got.error, undefined);
    assert.equal(got.status, 200);
    assert.deepEqual(got.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(got.body, 'echo ');
    const last = seen.at(-1);
    assert.ok(last);
    assert.equal(last.url, '/x?y=1');
    assert.equal(last.headers.host, `${HOST}:${String(port)}`);
    assert.equal(last.headers['x-a'], 'b');
  });

  await t.test('a streamed body without a length goes chunked; with one, as given', async () => {
    const chunked = collect();
    origin.dispatch(
      { method: 'POST', path: '/', headers: { host: 'svc' }, body: Readable.from(['ab', 'cd']) },
      chunked.handler,
    );
    assert.equal((await chunked.done).body, 'echo abcd');
    assert.equal(seen.at(-1)?.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.at(-1)?.headers.host, 'svc');
    // Chunks of strings are sized in bytes: `é€` is 5 bytes in UTF-8, not 2 characters.
    const wide = collect();
    origin.dispatch(
      { method: 'POST', path: '/', headers: {}, body: Readable.from(['é€', 'x']) },
      wide.handler,
    );
    const answered = await wide.done;
    assert.equal(answered.error, undefined);
    assert.equal(answered.status, 200);
    assert.equal(
      seen.at(-1)?.body,
      Buffer.from('é€x').toString('latin1'),
      'the bytes arrived whole',
    );
    const sized = collect();
    origin.dispatch(
      {
        method: 'PUT',
        path: '/',
        headers: { 'content-length': '3' },
        body: Readable.from([Buffer.from('xyz')]),
      },
      sized.handler,
    );
    assert.equal((await sized.done).body, 'echo xyz');
    assert.equal(seen.at(-1)?.headers['content-length'], '3');
    assert.equal(seen.at(-1)?.headers['transfer-encoding'], undefined);
  });

  await t.test('trailers reach onResponseEnd', async () => {
    const { handler, done } = collect();
    origin.dispatch({ method: 'GET', path: '/trailers', headers: {}, body: null }, handler);
    const got = await done;
    assert.equal(got.body, 'part');
    assert.equal(got.trailers['grpc-status'], '0');
  });

  await t.test('pause/resume: a paused response resumes and arrives whole', async () => {
    let pauses = 0;
    const { handler, done } = collect((c) => {
      if (pauses < 3) {
        pauses += 1;
        c.pause();
        setTimeout(() => {
          c.resume();
        }, 5);
      }
    });
    origin.dispatch({ method: 'GET', path: '/big', headers: {}, body: null }, handler);
    const got = await done;
    assert.equal(got.body.length, 256 * 1024);
    assert.equal(pauses, 3);
  });

  await t.test('abort from onRequestStart ends the exchange with that reason', async () => {
    const { handler, done } = collect();
    const reason = new Error('cancelled');
    origin.dispatch(
      { method: 'GET', path: '/', headers: {}, body: null },
      {
        ...handler,
        onRequestStart: (c) => {
          c.abort(reason);
        },
      },
    );
    assert.equal((await done).error, reason);
  });

  await t.test('an abort after the response ended leaves the reused connection alone', async () => {
    // A late abort (the downstream went away after the response was relayed) must not close
    // the pooled connection that a later request now uses: that request would fail or hang.
    const first = collect();
    let controller: { abort(reason: Error): void } | undefined;
    origin.dispatch(
      { method: 'GET', path: '/first', headers: {}, body: null },
      {
        ...first.handler,
        onRequestStart: (c) => {
          controller = c;
        },
      },
    );
    assert.equal((await first.done).status, 200);
    // The late abort comes while the second request's response streams on the same
    // keep-alive connection.
    let aborted = false;
    const second = collect(() => {
      if (aborted) return;
      aborted = true;
      controller?.abort(new Error('downstream closed'));
    });
    origin.dispatch({ method: 'GET', path: '/big', headers: {}, body: null }, second.handler);
    const got = await second.done;
    assert.equal(aborted, true);
    assert.equal(got.error, undefined);
    assert.equal(got.body.length, 256 * 1024);
  });

  await t.test('a header that would split the head is refused, nothing sent', async () => {
    const before = seen.length;
    const cases: [Record<string, string | string[]>, string][] = [
      [{ 'x-evil': 'a\r\nx-injected: 1' }, 'x-evil'],
      [{ 'x-ok': 'fine', 'x-lf': 'a\nb' }, 'x-lf'],
      [{ 'x-cr': 'a\rb', 'x-ok': 'fine' }, 'x-cr'],
      [{ 'x-nul': 'a\0b' }, 'x-nul'],
      [{ 'x-list': ['fine', 'bad\r\n'] }, 'x-list'],
      [{ 'x-bad\r\nname': 'v' }, 'x-bad\r\nname'],
    ];
    for (const [headers, name] of cases) {
      const { handler, done } = collect();
      origin.dispatch({ method: 'GET', path: '/', headers, body: null }, handler);
      assert.equal(String((await done).error?.message), `invalid request header ${name}`);
    }
    assert.equal(seen.length, before);
  });
});

test('a refused connection reports the socket error itself (as undici does)', async () => {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, HOST, resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const origin = createHttp1Origin({ host: HOST, port });
  const { handler, done } = collect();
  origin.dispatch({ method: 'GET', path: '/', headers: {}, body: null }, handler);
  const got = await done;
  assert.equal((got.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  await origin.destroy();
});

test('reads land in buffers no later read overwrites: chunks held to the end arrive intact', async (t) => {
  // Deterministic bytes per seed, so a region written twice shows as a mismatch.
  const bytes = (seed: number, size: number): Buffer => {
    const out = Buffer.alloc(size);
    let x = seed * 2654435761 || 1;
    for (let i = 0; i < size; i += 1) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
  const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  // A raw server: the head arrives in two pieces, the body (chunked or sized) in many.
  const server = net.createServer((socket) => {
    socket.once('data', (req) => {
      const [, seedText = '0', sizeText = '0'] = /GET \/(\d+)\/(\d+)/.exec(req.toString()) ?? [];
      const seed = Number(seedText);
      const body = bytes(seed, Number(sizeText));
      // Chunked, close-delimited (no length: the body ends when the server closes) or sized.
      const chunked = seed % 3 === 1;
      const closeDelimited = seed % 3 === 0;
      void (async () => {
        const head = `HTTP/1.1 200 OK\r\nx-seed: ${seedText}\r\n${chunked ? 'transfer-encoding: chunked' : closeDelimited ? 'connection: close' : `content-length: ${String(body.length)}`}\r\n\r\n`;
        socket.write(head.slice(0, 20));
        await pause();
        socket.write(head.slice(20));
        for (let at = 0; at < body.length;) {
          const piece = body.subarray(at, at + 1 + ((seed * 7919 + at) % 6000));
          at += piece.length;
          socket.write(
            chunked
              ? Buffer.concat([
                  Buffer.from(`${piece.length.toString(16)}\r\n`),
                  piece,
                  Buffer.from('\r\n'),
                ])
              : piece,
          );
          if (at % 3 === 0) await pause();
        }
        if (chunked) socket.write('0\r\n\r\n');
        if (closeDelimited) socket.end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const origin = createHttp1Origin({ host: HOST, port: (server.address() as AddressInfo).port });
  t.after(async () => {
    await origin.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const one = (seed: number, size: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const held: Buffer[] = [];
      origin.dispatch(
        { method: 'GET', path: `/${String(seed)}/${String(size)}`, headers: {}, body: null },
        {
          onResponseData(_c, chunk) {
            held.push(chunk); // kept as handed over, not copied
          },
          onResponseEnd() {
            resolve(Buffer.concat(held));
          },
          onResponseError(_c, error) {
            reject(error);
          },
        },
      );
    });
  const sizes = Array.from({ length: 24 }, (_, i) => 1 + ((i * 104_729) % 150_000));
  const got = await Promise.all(sizes.map((size, i) => one(i + 1, size)));
  for (const [i, body] of got.entries())
    assert.ok(body.equals(bytes(i + 1, sizes[i] ?? 0)), `response ${String(i + 1)} intact`);
});

test('hostile upstream responses: refused as errors before any head reaches the layers; the pool keeps serving', async (t) => {
  const hostile: Record<string, string> = {
    'content-length with transfer-encoding':
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'bare LF in the head': 'HTTP/1.1 200 OK\nContent-Length: 0\n\n',
    'NUL in a field value': 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n',
    'obs-fold': 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n',
    'two content-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'an unasked 101':
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n',
    'a head over 16 KiB': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\nContent-Length: 0\r\n\r\n`,
    'not HTTP': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
  };
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    // Every request on a connection is answered (the pool reuses a kept-alive one).
    socket.on('data', (req) => {
      const name = decodeURIComponent(/GET \/(\S*)/.exec(req.toString())?.[1] ?? '');
      if (name === 'slow') {
        // A valid response one byte at a time: slow is not hostile, it arrives whole.
        const bytes = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow');
        let at = 0;
        const drip = setInterval(() => {
          if (socket.destroyed || at >= bytes.length) {
            clearInterval(drip);
            return;
          }
          socket.write(bytes.subarray(at, at + 1));
          at += 1;
        }, 2);
        return;
      }
      socket.write(hostile[name] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const origin = createHttp1Origin({ host: HOST, port: (server.address() as AddressInfo).port });
  t.after(async () => {
    await origin.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const ask = (name: string): Promise<{ heads: number; body: string; error?: Error }> =>
    new Promise((resolve) => {
      let heads = 0;
      let body = '';
      origin.dispatch(
        { method: 'GET', path: `/${encodeURIComponent(name)}`, headers: {}, body: null },
        {
          onResponseStart() {
            heads += 1;
          },
          onResponseData(_c, chunk) {
            body += chunk.toString('latin1');
          },
          onResponseEnd() {
            resolve({ heads, body });
          },
          onResponseError(_c, error) {
            resolve({ heads, body, error });
          },
        },
      );
    });
  for (const name of Object.keys(hostile)) {
    const got = await ask(name);
    assert.ok(got.error !== undefined, `${name}: refused`);
    assert.equal(got.heads, 0, `${name}: no head reached the layers`);
    assert.equal(got.body, '', `${name}: no byte forwarded`);
  }
  const slow = await ask('slow');
  assert.deepEqual([slow.error, slow.heads, slow.body], [undefined, 1, 'slow']);
  const after = await ask('fine');
  assert.deepEqual([after.error, after.heads, after.body], [undefined, 1, 'ok']);
});
