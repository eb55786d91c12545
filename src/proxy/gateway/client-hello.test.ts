import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { test } from 'node:test';
import fc from 'fast-check';
import { chainForSni } from './gateway-listeners.js';
import { readClientHello } from './client-hello.js';

/** The first bytes a real Node TLS client sends (its ClientHello), captured on loopback. */
async function captureHello(servername: string | undefined): Promise<Buffer> {
  let resolveHello: (b: Buffer) => void = () => undefined;
  const hello = new Promise<Buffer>((resolve) => {
    resolveHello = resolve;
  });
  const server = net.createServer((socket) => {
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
        resolveHello(got);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = tls.connect({
    host: '127.0.0.1',
    port,
    ...(servername === undefined ? {} : { servername }),
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  client.on('error', () => undefined);
  try {
    return await hello;
  } finally {
    client.destroy();
    server.close();
  }
}

test('the SNI of a real ClientHello is read; every shorter prefix is incomplete', async () => {
  const hello = await captureHello('Secure.Example.com');
  assert.deepEqual(readClientHello(hello), { kind: 'hello', serverName: 'secure.example.com' });
  for (let n = 0; n < hello.length; n += 1)
    assert.equal(readClientHello(hello.subarray(0, n)).kind, 'incomplete', `prefix ${String(n)}`);
});

test('a ClientHello without SNI (a client dialling an IP) has no server name', async () => {
  const hello = await captureHello(undefined);
  assert.deepEqual(readClientHello(hello), { kind: 'hello', serverName: undefined });
});

test('plaintext is not TLS; garbage after a record header never throws', () => {
  assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls');
  assert.equal(readClientHello(Buffer.from('PRI * HTTP/2.0\r\n')).kind, 'not-tls');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const record = Buffer.concat([
        Buffer.from([0x16, 0x03, 0x01, bytes.length >> 8, bytes.length & 0xff]),
        Buffer.from(bytes),
      ]);
      const state = readClientHello(record);
      assert.ok(state.kind === 'hello' || state.kind === 'not-tls');
    }),
  );
});

test("SNI chooses chains by Envoy's server_names precedence", () => {
  const chains = [
    { id: 'wild', names: ['*.example.com'] },
    { id: 'deeper', names: ['*.api.example.com'] },
    { id: 'exact', names: ['a.api.example.com'] },
    { id: 'default', names: [] },
  ];
  const pick = (sni: string | undefined): string | undefined => chainForSni(chains, sni)?.id;
  assert.equal(pick('a.api.example.com'), 'exact');
  assert.equal(pick('b.api.example.com'), 'deeper');
  assert.equal(pick('www.example.com'), 'wild');
  assert.equal(pick('example.com'), 'default', 'a wildcard needs a label before the suffix');
  assert.equal(pick('other.test'), 'default');
  assert.equal(pick(undefined), 'default');
  assert.equal(chainForSni(chains.slice(0, 3), 'other.test'), undefined);
});
