// Capture's pure parts: the sockaddr decoding of SO_ORIGINAL_DST answers,
// Envoy's filter chain matching order on the original destination, and
// http_inspector's protocol detection.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { originalDestination, decodeSockaddr } from './original-dst.js';
import { candidateChains, detectProtocol } from './virtual-outbound.js';
import { compileCaptureListener } from './capture-config.js';

test('sockaddr_in / sockaddr_in6 decode to address and port', () => {
  const v4 = Buffer.alloc(16);
  v4.writeUInt16LE(2, 0);
  v4.writeUInt16BE(9080, 2);
  Buffer.from([10, 96, 0, 10]).copy(v4, 4);
  assert.deepEqual(decodeSockaddr(v4), { address: '10.96.0.10', port: 9080, family: 4 });
  const v6 = Buffer.alloc(28);
  v6.writeUInt16LE(10, 0);
  v6.writeUInt16BE(443, 2);
  v6.writeUInt16BE(0xfd00, 8);
  v6.writeUInt16BE(0x1, 22);
  assert.deepEqual(decodeSockaddr(v6), { address: 'fd00::1', port: 443, family: 6 });
  const mapped = Buffer.alloc(28);
  mapped.writeUInt16LE(10, 0);
  mapped.writeUInt16BE(80, 2);
  mapped.writeUInt16BE(0xffff, 18);
  Buffer.from([10, 0, 0, 7]).copy(mapped, 20);
  assert.deepEqual(decodeSockaddr(mapped), { address: '10.0.0.7', port: 80, family: 4 });
});

test('a connection that was not NATed has no original destination', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const socket = await accepted;
  try {
    assert.equal(originalDestination(socket), undefined);
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
});

test('chains match by port, then longest prefix, as Envoy orders them', () => {
  const listener = {
    filter_chains: [
      {
        name: 'http',
        filter_chain_match: {
          destination_port: { value: 9080 },
          application_protocols: ['http/1.1'],
        },
      },
      { name: 'http-tcp', filter_chain_match: { destination_port: { value: 9080 } } },
      {
        name: 'pod',
        filter_chain_match: {
          destination_port: { value: 9080 },
          prefix_ranges: [{ address_prefix: '10.234.0.3', prefix_len: { value: 32 } }],
        },
      },
      {
        name: 'vip',
        filter_chain_match: {
          destination_port: { value: 9000 },
          prefix_ranges: [{ address_prefix: '10.96.0.0', prefix_len: { value: 16 } }],
        },
      },
      { name: 'passthrough' },
    ],
  };
  const names = (address: string, port: number): string[] =>
    candidateChains(compileCaptureListener(listener, []).chains, { address, port, family: 4 }).map(
      (c) => c.name,
    );
  assert.deepEqual(names('10.234.0.3', 9080), ['pod']);
  assert.deepEqual(names('10.96.0.10', 9080), ['http', 'http-tcp']);
  assert.deepEqual(names('10.96.4.4', 9000), ['vip']);
  // Port 9000 has chains but none for this address: no chain (Envoy does not fall back).
  assert.deepEqual(names('8.8.8.8', 9000), []);
  assert.deepEqual(names('8.8.8.8', 443), ['passthrough']);
});

test('http_inspector: request lines and the HTTP/2 preface are HTTP, other bytes are not', () => {
  assert.equal(detectProtocol(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), 'http/1.1');
  assert.equal(detectProtocol(Buffer.from('POST /x HTTP/1.0\r\n')), 'http/1.0');
  assert.equal(detectProtocol(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'h2c');
  assert.equal(detectProtocol(Buffer.from([0x16, 0x03, 0x01, 0x00])), undefined);
  assert.equal(detectProtocol(Buffer.from('ping\n')), undefined);
});

test('virtualOutbound compiles before the ACK: actions, IPv6 prefixes, and problems that NACK', () => {
  const problems: string[] = [];
  const compiled = compileCaptureListener(
    {
      listener_filters_timeout: { seconds: 0 },
      filter_chains: [
        {
          name: 'outbound|9000|endpoint|db',
          filter_chain_match: {
            destination_port: { value: 9000 },
            prefix_ranges: [{ address_prefix: 'fd00:10::', prefix_len: { value: 32 } }],
          },
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: { stat_prefix: 'db', cluster: 'outbound|9000||db' },
            },
          ],
        },
        {
          name: 'PassthroughFilterChain',
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: { stat_prefix: 'p', cluster: 'PassthroughCluster' },
            },
          ],
        },
      ],
    },
    problems,
  );
  assert.deepEqual(problems, []);
  assert.equal(compiled.egress, false);
  assert.deepEqual(
    compiled.detection,
    { ms: 15_000, close: true },
    '0 s: close after the head timeout',
  );
  const [db, passthrough] = compiled.chains;
  assert.deepEqual(db?.action, {
    kind: 'tcp',
    tcp: { cluster: 'outbound|9000||db', weighted: [], totalWeight: 0 },
    toDestination: true,
  });
  assert.equal(passthrough?.action.kind, 'passthrough');
  const pick = (address: string): string[] =>
    candidateChains(compiled.chains, { address, port: 9000, family: 6 }).map((c) => c.name);
  assert.deepEqual(pick('fd00:10::7'), ['outbound|9000|endpoint|db']);
  // Port 9000 has a chain, but not for this address: no chain (no fall back to Passthrough).
  assert.deepEqual(pick('fd00:11::7'), []);

  // A prefix that is no IP prefix, and an RBAC filter that does not compile, are problems.
  const bad: string[] = [];
  compileCaptureListener(
    {
      filter_chains: [
        {
          name: 'x',
          filter_chain_match: {
            prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 33 } }],
          },
          filters: [
            {
              name: 'envoy.filters.network.rbac',
              typed_config: { stat_prefix: 'n', rules: { action: 'NO_SUCH_ACTION' } },
            },
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: { cluster: 'BlackHoleCluster' },
            },
          ],
        },
      ],
    },
    bad,
  );
  assert.equal(bad.length, 2, bad.join('\n'));
  assert.match(
    bad[0] ?? '',
    /filter_chains\[0\]\.filter_chain_match\.prefix_ranges: "10\.0\.0\.0"\/33/,
  );
  assert.match(bad[1] ?? '', /filter_chains\[0\]: network RBAC filter does not compile/);
});
