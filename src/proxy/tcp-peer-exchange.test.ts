// The TCP peer-metadata preamble as hostile bytes meet it: split across chunks, garbage, an
// oversized length, a peer that never sends it; the app's bytes after it are never lost.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { MAX_PEER_METADATA_BYTES } from '../telemetry/index.js';
import { encodePreamble, parsePreamble, readPreamble } from './tcp-peer-exchange.js';

test('a preamble parses back, with the bytes after it left over', () => {
  const bytes = Buffer.concat([encodePreamble('eyJOQU1FIjoieCJ9'), Buffer.from('app bytes')]);
  const parsed = parsePreamble(bytes);
  assert.equal(parsed.kind, 'done');
  assert.equal(parsed.value, 'eyJOQU1FIjoieCJ9');
  assert.equal(parsed.rest.toString(), 'app bytes');
  for (let cut = 0; cut < 8 + 16; cut += 1)
    assert.equal(parsePreamble(bytes.subarray(0, cut)).kind, 'more', `cut at ${String(cut)}`);
});

test('garbage and oversized preambles are refused without reading on', () => {
  assert.equal(parsePreamble(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'bad');
  const huge = encodePreamble('');
  huge.writeUInt32BE(MAX_PEER_METADATA_BYTES + 1, 4);
  const parsed = parsePreamble(huge);
  assert.equal(parsed.kind, 'bad');
  assert.match(parsed.reason, /limit/);
  assert.equal(parsePreamble(Buffer.alloc(0xffff, 0xff)).kind, 'bad');
});

/** A connected loopback pair; `server` is the side readPreamble reads. */
async function pair(): Promise<{ client: net.Socket; server: net.Socket; close(): void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const address = listener.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const client = net.connect(address.port, '127.0.0.1');
  const server = await accepted;
  server.pause();
  return {
    client,
    server,
    close() {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

test('readPreamble over a socket: split chunks, then the app bytes intact', async () => {
  const p = await pair();
  try {
    const bytes = Buffer.concat([encodePreamble('claim'), Buffer.from('hello app')]);
    for (const b of bytes) p.client.write(Buffer.from([b]));
    const value = await readPreamble(p.server, 5_000);
    assert.equal(value, 'claim');
    let rest = '';
    p.server.on('data', (d: Buffer) => (rest += d.toString()));
    p.server.resume();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rest, 'hello app');
  } finally {
    p.close();
  }
});

test('readPreamble: garbage, a silent peer and a closed peer are errors, never throws', async () => {
  const garbage = await pair();
  try {
    garbage.client.write('SSH-2.0-OpenSSH\r\n');
    const r = await readPreamble(garbage.server, 5_000);
    assert.ok(r instanceof Error);
    assert.match(r.message, /magic/);
  } finally {
    garbage.close();
  }
  const silent = await pair();
  try {
    const r = await readPreamble(silent.server, 100);
    assert.ok(r instanceof Error);
    assert.match(r.message, /within 100 ms/);
  } finally {
    silent.close();
  }
  const closed = await pair();
  try {
    closed.client.end(encodePreamble('claim').subarray(0, 5));
    const r = await readPreamble(closed.server, 5_000);
    assert.ok(r instanceof Error);
  } finally {
    closed.close();
  }
});
