// The raw HTTP/1.1 server holds a connection's writes to the end of the read
// that caused them or, while the loop is busy, to the end of the loop's pass
// (src/proxy/http1/turn.ts), and writes them as one buffer. Over real
// sockets, with every read held to the pass (`setPassHolding('always')`, the
// path a busy loop takes) and as the proxy runs (`adaptive`): the responses
// to pipelined requests read together go out in one write, in order; and
// nothing written outside the held writes overtakes them — an upgrade's new
// owner, a refused request's answer, a `100 Continue`, the end of a draining
// connection.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { rawUntilClose } from '../helpers/index.js';
import {
  serveHttp1,
  type Http1ServerOptions,
  type ServerExchange,
} from '../../src/proxy/http1/index.js';
import { setPassHolding } from '../../src/proxy/http1/turn.js';
import { createHttp1Origin } from '../../src/proxy/http1/dispatcher.js';
import { Readable } from 'node:stream';

const HOST = '127.32.0.3';

/** Every read's writes held to the end of the pass (a busy loop), then as the proxy runs. */
const MODES = ['always', 'adaptive'] as const;

/** Runs `body` once per mode, as a subtest, the mode set for its duration. */
async function inEachMode(
  t: { test: (name: string, fn: (t: SubTest) => Promise<void>) => Promise<void> },
  body: (t: SubTest) => Promise<void>,
): Promise<void> {
  for (const mode of MODES)
    await t.test(mode, async (st) => {
      setPassHolding(mode);
      try {
        await body(st);
      } finally {
        setPassHolding('adaptive');
      }
    });
}
type SubTest = { after: (fn: () => Promise<void>) => void };

/** Socket writes and reads the server made on its connections. */
interface Counts {
  writes: number;
  reads: number;
}

/**
 * Serves `onRequest` on a listener of the test's own, counting each connection's reads and
 * socket writes; closed by the test's end.
 */
async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  onRequest: (ex: ServerExchange, served: ReturnType<typeof serveHttp1>) => void,
  extra: Partial<Http1ServerOptions> = {},
): Promise<{ port: number; counts: Counts }> {
  const counts: Counts = { writes: 0, reads: 0 };
  const served: ReturnType<typeof serveHttp1> = serveHttp1({
    onRequest: (ex) => {
      onRequest(ex, served);
    },
    ...extra,
  });
  const server = net.createServer((socket) => {
    const write = socket.write.bind(socket);
    socket.write = ((...args: Parameters<typeof write>) => {
      counts.writes += 1;
      return write(...args);
    }) as typeof socket.write;
    socket.on('data', () => {
      counts.reads += 1;
    });
    served.accept(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.after(async () => {
    served.closeAll();
    served.stop();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  });
  return { port: (server.address() as net.AddressInfo).port, counts };
}

const ok = (ex: ServerExchange): void => {
  ex.respond(200, ['content-type', 'text/plain'], Buffer.from(`answer to ${ex.head.target};`));
};

/** The statuses and bodies (`answer to <target>;`) in `out`, in the order they came. */
const answers = (out: string): string[] =>
  [...out.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n|answer to [^;]*|tunnel bytes/g)].map(
    (m) => m[1] ?? m[0],
  );

test('pipelined requests read together are answered in one write when held to the pass', async (t) => {
  setPassHolding('always');
  t.after(() => {
    setPassHolding('adaptive');
  });
  const { port, counts } = await serve(t, (ex) => {
    ok(ex);
  });
  const req = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;
  const out = await rawUntilClose(HOST, port, req('/1') + req('/2') + req('/3'));
  assert.deepEqual(answers(out), [
    '200',
    'answer to /1',
    '200',
    'answer to /2',
    '200',
    'answer to /3',
  ]);
  // One write per pass that had something to send (the requests usually arrive in one read;
  // each read is its own pass at most). A write per response would be three.
  assert.ok(counts.reads >= 1);
  assert.ok(
    counts.writes <= counts.reads,
    `${String(counts.writes)} writes for ${String(counts.reads)} reads`,
  );
});

test("an upgrade's new owner writes after the answers to the requests before it", async (t) => {
  await inEachMode(t, async (t) => {
    const { port } = await serve(
      t,
      (ex) => {
        ok(ex);
      },
      {
        onUpgrade: (_head, socket) => {
          // The new owner writes at once, as the proxy's tunnels do.
          socket.end(
            'HTTP/1.1 101 Switching Protocols\r\nupgrade: test\r\nconnection: upgrade\r\n\r\ntunnel bytes',
          );
        },
      },
    );
    const out = await rawUntilClose(
      HOST,
      port,
      'GET /before HTTP/1.1\r\nHost: a\r\n\r\n' +
        'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\n',
    );
    assert.deepEqual(answers(out), ['200', 'answer to /before', '101', 'tunnel bytes']);
  });
});

test("a refused request's answer comes after the answers to the requests before it", async (t) => {
  await inEachMode(t, async (t) => {
    const { port } = await serve(t, (ex) => {
      ok(ex);
    });
    const out = await rawUntilClose(
      HOST,
      port,
      'GET /before HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n',
    );
    assert.deepEqual(answers(out), ['200', 'answer to /before', '400']);
  });
});

test('100 Continue comes after the answers to the requests before it', async (t) => {
  await inEachMode(t, async (t) => {
    const { port } = await serve(t, (ex) => {
      if (ex.head.method !== 'POST') {
        ok(ex);
        return;
      }
      const body: Buffer[] = [];
      ex.onBody({
        data: (c) => {
          body.push(Buffer.from(c));
          return true;
        },
        end: () => {
          ex.respond(200, [], Buffer.from(`answer to ${Buffer.concat(body).toString()};`));
        },
      });
    });
    const out = await new Promise<string>((resolve, reject) => {
      let got = '';
      let sent = false;
      const socket = net.connect({ host: HOST, port }, () => {
        socket.write(
          'GET /before HTTP/1.1\r\nHost: a\r\n\r\n' +
            'POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
        );
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer within 5 s; got ${JSON.stringify(got)}`));
      }, 5000);
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        // The body is sent once the server asked for it.
        if (got.includes('100 Continue') && !sent) {
          sent = true;
          socket.end('/body');
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
    });
    assert.deepEqual(answers(out), ['200', 'answer to /before', '100', '200', 'answer to /body']);
  });
});

test('a connection closed right after its response (draining) gets the response first', async (t) => {
  await inEachMode(t, async (t) => {
    const { port } = await serve(t, (ex, served) => {
      ok(ex);
      // The server drains in the same turn: the connection is idle again and closes.
      served.drain();
    });
    const out = await rawUntilClose(HOST, port, 'GET /last HTTP/1.1\r\nHost: a\r\n\r\n', false);
    assert.deepEqual(answers(out), ['200', 'answer to /last']);
  });
});

test('a response streamed a chunk per turn to a client that does not read is paused (backpressure)', async (t) => {
  await inEachMode(t, async (t) => {
    const LIMIT = 64 * 1024 * 1024;
    let written = 0;
    let firstRefusal = -1;
    let stop = false;
    const { port } = await serve(t, (ex) => {
      ex.writeHead(200, ['content-type', 'application/octet-stream']);
      const chunk = Buffer.alloc(4096, 0x61);
      const next = (): void => {
        // A chunk per turn, as a relayed body arrives; the writer waits for drain when told to.
        while (!stop && written < LIMIT) {
          written += chunk.length;
          if (!ex.write(chunk)) {
            if (firstRefusal === -1) firstRefusal = written;
            ex.onDrain(next);
            return;
          }
          setImmediate(next);
          return;
        }
      };
      next();
    });
    // The client reads the head and then stops reading.
    const socket = net.connect({ host: HOST, port }, () => {
      socket.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n');
    });
    socket.once('data', () => {
      socket.pause();
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stop = true;
    socket.destroy();
    assert.ok(firstRefusal !== -1, `never told to wait; wrote ${String(written)} bytes`);
    // What the kernel's socket buffers hold plus one turn's held bytes; never the whole limit.
    assert.ok(
      written < 32 * 1024 * 1024,
      `wrote ${String(written)} bytes to a client that reads nothing`,
    );
  });
});

test('a request body streamed upstream to a server that does not read is paused (backpressure)', async (t) => {
  await inEachMode(t, async (t) => {
    const LIMIT = 64 * 1024 * 1024;
    let produced = 0;
    // An upstream that takes the connection and reads nothing.
    const sockets: net.Socket[] = [];
    const upstream = net.createServer((socket) => {
      sockets.push(socket);
      socket.pause();
    });
    await new Promise<void>((resolve) => upstream.listen(0, HOST, resolve));
    const origin = createHttp1Origin({
      host: HOST,
      port: (upstream.address() as net.AddressInfo).port,
    });
    t.after(async () => {
      await origin.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => {
        upstream.close(() => {
          resolve();
        });
      });
    });
    const chunk = Buffer.alloc(4096, 0x62);
    // Read as fast as the dispatcher takes it: a chunk per pull, until the limit.
    const body = new Readable({
      read() {
        if (produced >= LIMIT) {
          this.push(null);
          return;
        }
        produced += chunk.length;
        setImmediate(() => this.push(chunk));
      },
    });
    origin.dispatch(
      { method: 'POST', path: '/upload', headers: { host: 'up' }, body },
      {
        onResponseError: () => undefined,
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    body.destroy();
    assert.ok(
      produced < 32 * 1024 * 1024,
      `produced ${String(produced)} bytes for an upstream that reads nothing`,
    );
  });
});
