// The listener manager over real loopback sockets: a failed bind leaves the
// serving listener alone, a replacement serves before the old one stops
// accepting, a drain lets an in-flight HTTP/1.1 request finish and closes the
// connection once idle (Connection: close semantics of Envoy's drain), and a
// connection that never goes idle is closed when the drain bound is over.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../logging/index.js';
import { createHttpServer } from './http-server.js';
import { createListenerManager, DRAIN_POLL_MS, type ListenerSpec } from './listener-manager.js';

const spec = (port = 0): ListenerSpec => ({
  name: 'inbound|9',
  kind: 'inbound',
  host: '127.0.0.1',
  port,
});

/** Resolves when `socket` closes; rejects after `ms` (a bound for the test, not a measurement). */
function closed(socket: net.Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      reject(new Error(`connection still open after ${String(ms)} ms`));
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits (bounded: 5 s) until `ready` holds. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(ready(), 'condition not reached within 5 s');
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      resolve(socket);
    });
    // Read what the server sends, so its end closes this side too.
    socket.resume();
    socket.once('error', reject);
  });
}

test('a bind that fails leaves the active listener serving; a replacement drains the old one', async (t) => {
  const manager = createListenerManager({ logger: silentLogger(), drainMs: 10_000 });
  t.after(() => manager.close(0));
  const accepted: string[] = [];
  const first = await manager.bind(spec(), (s) => {
    accepted.push('first');
    s.end('first\n');
  });
  manager.activate(first);
  await assert.rejects(
    manager.bind(spec(first.port), () => undefined),
    /EADDRINUSE/,
  );
  assert.equal(manager.active('inbound|9'), first);
  assert.deepEqual([...manager.bound()], [['inbound|9', first.port]]);
  const stillServing = await connect(first.port);
  await closed(stillServing, 5_000);

  // A listener moved to another port: the new one is bound (and serves) before the old stops.
  const second = await manager.bind(spec(), (s) => {
    accepted.push('second');
    s.end('second\n');
  });
  manager.activate(second);
  assert.equal(manager.active('inbound|9'), second);
  assert.equal(first.draining, true);
  await assert.rejects(connect(first.port), /ECONNREFUSED/);
  const fresh = await connect(second.port);
  await closed(fresh, 5_000);
  assert.deepEqual(accepted, ['first', 'second']);
});

test('drain lets an in-flight request finish, then closes the connection once idle', async (t) => {
  const manager = createListenerManager({ logger: silentLogger() });
  t.after(() => manager.close(0));
  let release: () => void = () => undefined;
  const server = createHttpServer(
    {
      request(req, res) {
        if (req.url === '/slow')
          release = () => {
            res.end('done');
          };
        else res.end('fast');
      },
    },
    { keepAliveTimeout: 60_000 },
  );
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const listener = await manager.bind(spec(), (s) => {
    server.emit('connection', s);
  });
  listener.onDrain(() => {
    server.closeIdleConnections();
  });
  manager.activate(listener);
  // One agent per request: two connections (a shared agent would reuse the idle one).
  const agents = [new http.Agent({ keepAlive: true }), new http.Agent({ keepAlive: true })];
  t.after(() => {
    for (const agent of agents) agent.destroy();
  });
  const get = (path: string, agent: http.Agent): Promise<{ body: string; socket: net.Socket }> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: listener.port, path, agent }, (res) => {
          // The agent detaches a kept-alive socket at the end: keep it from the start.
          const socket = res.socket;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            resolve({ body, socket });
          });
        })
        .on('error', reject);
    });
  // One idle keep-alive connection and one with a request in flight.
  const idle = await get('/', agents[0] as http.Agent);
  assert.equal(idle.body, 'fast');
  const slow = get('/slow', agents[1] as http.Agent);
  await until(() => listener.connections() === 2);
  // A drain bound far longer than the test: only the hooks can close these connections.
  const drained = manager.drain(listener, 60_000);
  await closed(idle.socket, 5_000);
  // The server side sees the close a moment after the client: then only the busy one is left.
  await until(() => listener.connections() === 1);
  await new Promise((resolve) => setTimeout(resolve, 3 * DRAIN_POLL_MS));
  assert.equal(listener.connections(), 1, 'the busy connection stays while its request runs');
  release();
  const answer = await slow;
  assert.equal(answer.body, 'done');
  await closed(answer.socket, 5_000);
  await drained;
  assert.equal(listener.connections(), 0);
});

test('a connection that never goes idle is closed when the drain bound is over', async (t) => {
  const manager = createListenerManager({ logger: silentLogger(), drainMs: 200 });
  t.after(() => manager.close(0));
  // A tcp_proxy-like handler: holds the connection open, nothing a drain hook can close.
  const listener = await manager.bind(spec(), () => undefined);
  manager.activate(listener);
  const client = await connect(listener.port);
  await until(() => listener.connections() === 1);
  await manager.remove('inbound|9');
  await closed(client, 5_000);
  assert.equal(manager.active('inbound|9'), undefined);
  assert.equal(listener.connections(), 0);
});
