/**
 * The virtualOutbound capture listener's protocol detection under hostile
 * clients, driven directly on loopback (real sockets; the original
 * destination is given, as iptables' REDIRECT would give it, so no netns is
 * needed — test/proxy/capture-netns.test.ts covers the real redirect). The
 * destination port has an HTTP chain (application_protocols) and a TCP chain,
 * so every connection is sniffed, bounded by listener_filters_timeout
 * (100 ms, as the control plane sends it):
 * - a request line split into 1-byte segments is still HTTP (http_inspector
 *   waits for more bytes instead of deciding on the first segment);
 * - bytes that cannot be HTTP (garbage, a TLS ClientHello in fragments, a
 *   client slower than the timeout) go to the TCP chain as they came, never
 *   to the HTTP side; an HTTP start followed by garbage is answered 400 and
 *   never reaches the router;
 * - half a request line then silence is closed with 408 by the head timeout;
 * - a connection storm is served and the listener keeps accepting;
 * - a connection with no original destination (someone dialling the capture
 *   port itself, real SO_ORIGINAL_DST) is closed without a byte.
 * Loopback 127.38.7.1.
 */
import assert from 'node:assert/strict';
import type * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../src/logging/index.js';
import { compileCaptureListener } from '../../src/proxy/capture/capture-config.js';
import { createVirtualOutbound } from '../../src/proxy/capture/virtual-outbound.js';
import type { OutboundProxy } from '../../src/proxy/outbound/outbound-proxy.js';
import type { XdsSnapshot } from '../../src/proxy/xds-client/xds-resource.js';

const HOST = '127.38.7.1';
const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

const LISTENER = {
  name: 'virtualOutbound',
  listener_filters_timeout: { seconds: '0', nanos: 100_000_000 },
  continue_on_listener_filters_timeout: true,
  filter_chains: [
    {
      name: '0.0.0.0_9080',
      filter_chain_match: {
        destination_port: { value: 9080 },
        application_protocols: ['http/1.1', 'http/1.0', 'h2c'],
      },
      filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {} }],
    },
    {
      name: 'outbound|9080||web.default.svc.cluster.local',
      filter_chain_match: { destination_port: { value: 9080 } },
      filters: [
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: { cluster: 'outbound|9080||web.default.svc.cluster.local' },
        },
      ],
    },
  ],
};

/** What the chains saw: HTTP requests routed, TCP connections with their first bytes. */
const routed: string[] = [];
const tcpFirst: string[] = [];
const tcpSockets = new Set<net.Socket>();
const outbound = {
  handle(req: http.IncomingMessage, res: http.ServerResponse) {
    routed.push(req.url ?? '');
    res.end(`http-chain ${req.url ?? ''}`);
  },
  handleUpgrade(_req: http.IncomingMessage, socket: net.Socket) {
    socket.destroy();
  },
  handleTcp(socket: net.Socket, _config: unknown, first: Buffer) {
    tcpFirst.push(first.toString('latin1'));
    tcpSockets.add(socket);
    socket.on('close', () => tcpSockets.delete(socket));
    socket.on('error', () => undefined);
    // An opaque relay stand-in: says which chain, then echoes.
    socket.write(Buffer.concat([Buffer.from('TCP:'), first, Buffer.from('|')]));
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.resume();
  },
} as unknown as OutboundProxy;

const problems: string[] = [];
const snapshot = {
  listener: new Map([['virtualOutbound', LISTENER]]),
  typed: { virtualOutbound: compileCaptureListener(LISTENER, problems) },
} as unknown as XdsSnapshot;
assert.deepEqual(problems, []);

/** Connects, writes `parts` `gapMs` apart (each its own segment), collects the answer until close or `waitMs`. */
function exchange(
  port: number,
  parts: readonly (string | Buffer)[],
  gapMs: number,
  waitMs: number,
): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ port, host: HOST, noDelay: true });
    const got: Buffer[] = [];
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text: Buffer.concat(got).toString('latin1'), closed, ms: Date.now() - started });
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
      if (i >= parts.length || s.destroyed) return;
      const part = parts[i++];
      if (part !== undefined) s.write(part);
      setTimeout(next, gapMs);
    };
    s.on('connect', next);
  });
}

test('capture sniffing under hostile clients: bounded, fail closed, nothing unparsed routed as HTTP', async (t) => {
  const capture = createVirtualOutbound({
    snapshot: () => snapshot,
    outbound,
    logger: silentLogger(),
    originalDestination: () => ({ address: '10.96.0.10', port: 9080, family: 4 }),
  });
  const port = await capture.listen(HOST, 0);
  t.after(async () => {
    for (const s of tcpSockets) s.destroy();
    await capture.close();
  });

  // Half a request line, then silence: HTTP side, closed by the 15 s head timeout with 408.
  const halfLine = exchange(port, ['GET /half'], 0, 20_000);

  // A request line in 1-byte segments, 10 ms apart: still HTTP (routed), not opaque TCP.
  const request = 'GET /split HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n';
  const split = await exchange(
    port,
    Array.from(Buffer.from(request), (b) => Buffer.from([b])),
    10,
    5000,
  );
  assert.match(split.text, /^HTTP\/1\.1 200[\s\S]*http-chain \/split$/, split.text);

  // Slower than the detection timeout (1 byte per 200 ms): decided at the timeout, with the
  // byte that came, for the TCP chain — never parsed as HTTP later.
  const slow = await exchange(
    port,
    Array.from(Buffer.from('GET /slow HTTP/1.1\r\n'), (b) => Buffer.from([b])),
    200,
    1500,
  );
  assert.match(slow.text, /^TCP:G\|/, slow.text);
  assert.ok(!routed.includes('/slow'));

  // Garbage and a TLS ClientHello in fragments: the TCP chain at once, bytes intact.
  const garbage = await exchange(port, [Buffer.from([0, 0xff, 0x13, 0x37])], 0, 1000);
  assert.equal(garbage.text.slice(0, 9), 'TCP:\u0000\u00ff\u0013\u0037|');
  const hello = await exchange(
    port,
    [Buffer.from([0x16, 0x03]), Buffer.from([0x01, 0x00, 0x2f, 0x01])],
    50,
    1000,
  );
  assert.ok(hello.text.startsWith('TCP:\u0016'), JSON.stringify(hello.text));

  // An HTTP start then bytes the parser refuses: 400 from the capture side, nothing routed.
  const before = routed.length;
  const bad = await exchange(
    port,
    ['GET /bad HTTP/1.1\r\nHost: web\r\n\u0000\u0001 x\r\n\r\n'],
    0,
    3000,
  );
  assert.match(bad.text, /^HTTP\/1\.1 400/, bad.text);
  assert.equal(routed.length, before);

  // The HTTP/2 preface split after "PR": detected as h2c (the server's SETTINGS come back).
  const h2 = await exchange(
    port,
    ['PR', H2_PREFACE.slice(2), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])],
    30,
    1500,
  );
  assert.ok(!h2.text.startsWith('TCP:'), JSON.stringify(h2.text.slice(0, 20)));
  assert.equal(h2.text.charCodeAt(3), 4, 'an HTTP/2 SETTINGS frame');

  // A storm of 200 silent connections: each decided at the timeout, the listener keeps serving.
  const storm = await Promise.all(Array.from({ length: 200 }, () => exchange(port, [], 0, 1500)));
  assert.ok(
    storm.every((r) => r.text.startsWith('TCP:|')),
    JSON.stringify(storm.find((r) => !r.text.startsWith('TCP:|'))),
  );
  const after = await exchange(port, [request.replace('/split', '/after')], 0, 3000);
  assert.match(after.text, /http-chain \/after$/);

  const half = await halfLine;
  assert.ok(half.closed, 'half a request line is not held open');
  assert.match(half.text, /^HTTP\/1\.1 408/, half.text);
  assert.ok(!routed.includes('/half'));
});

test('a connection to the capture port with no original destination is closed without a byte', async (t) => {
  // The real SO_ORIGINAL_DST lookup: a direct, non-NATed loopback connection has none.
  const capture = createVirtualOutbound({
    snapshot: () => snapshot,
    outbound,
    logger: silentLogger(),
  });
  const port = await capture.listen(HOST, 0);
  t.after(() => capture.close());
  const routedBefore = routed.length;
  const tcpBefore = tcpFirst.length;
  const results = await Promise.all(
    Array.from({ length: 50 }, () =>
      exchange(port, ['GET / HTTP/1.1\r\nHost: web\r\n\r\n'], 0, 3000),
    ),
  );
  for (const r of results) {
    assert.ok(r.closed);
    assert.equal(r.text, '');
  }
  assert.equal(routed.length, routedBefore);
  assert.equal(tcpFirst.length, tcpBefore);
});
