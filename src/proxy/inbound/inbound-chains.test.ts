// A connection's facts for policy (peer, source, original destination) are
// read once, at its first request, and kept for the requests that follow on
// it; a different verified peer gets its own.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { recordDestination } from '../capture/destinations.js';
import { peerOf } from './inbound-chains.js';

const HOST = '127.44.0.2';

test("a connection's facts are made once and kept for its later requests", async (t) => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const clients = [net.connect(port, HOST), net.connect(port, HOST)];
  t.after(() => {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  });
  await Promise.all(clients.map((c) => once(c, 'connect')));
  while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
  const [plain, captured] = accepted as [net.Socket, net.Socket];

  const first = peerOf(plain, null);
  assert.deepEqual(
    { ...first },
    { principal: null, sourceIp: '127.0.0.1', destinationIp: HOST, destinationPort: port },
  );
  assert.equal(peerOf(plain, null), first, 'the same facts for the next request');
  const verified = peerOf(plain, 'spiffe://cluster.local/ns/default/sa/reviews');
  assert.notEqual(verified, first);
  assert.equal(verified.principal, 'spiffe://cluster.local/ns/default/sa/reviews');
  assert.equal(verified.destinationPort, port);

  // A captured connection's destination is the one recorded before it reached a chain.
  recordDestination(captured, { address: '10.1.2.3', port: 9080, family: 4 });
  assert.deepEqual(
    { ...peerOf(captured, null) },
    { principal: null, sourceIp: '127.0.0.1', destinationIp: '10.1.2.3', destinationPort: 9080 },
  );

  // Kept after the connection closes (its address getters then read nothing).
  plain.destroy();
  await once(plain, 'close');
  assert.equal(peerOf(plain, verified.principal), verified);
});
