// The sidecar's DNS proxy over real UDP/TCP sockets on loopback: mesh names
// from the `dns` listener's table, no data for AAAA of a mesh name, other
// names forwarded to a real upstream (a dns-packet server the test runs),
// REFUSED with no upstream, SERVFAIL when the upstream is silent, and hostile
// input (garbage, truncated, oversized, responses, multi-question, TCP
// framing abuse) answered with FORMERR or nothing — the proxy keeps serving.
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { silentLogger } from '../../logging/index.js';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../xds/index.js';
import { createDnsProxy } from './dns-server.js';
import { compileDnsTable } from './dns-table.js';
import { dnsListenerProblems } from './dns-validation.js';

const LISTENER = {
  '@type': TYPE_URLS.listener,
  name: 'dns',
  address: { socket_address: { protocol: 'UDP', address: '127.0.0.1', port_value: 15053 } },
  listener_filters: [
    {
      name: 'envoy.filters.udp.dns_filter',
      typed_config: {
        '@type': EXTENSION_TYPE_URLS.dnsFilter,
        stat_prefix: 'dns',
        server_config: {
          inline_dns_table: {
            virtual_domains: [
              { name: 'reviews', endpoint: { address_list: { address: ['10.96.0.12'] } } },
              {
                name: 'reviews.default.svc.cluster.local',
                endpoint: { address_list: { address: ['10.96.0.12'] } },
              },
              {
                name: 'many.example',
                endpoint: {
                  address_list: {
                    address: Array.from({ length: 60 }, (_, i) => `240.240.0.${String(i + 1)}`),
                  },
                },
              },
            ],
          },
        },
        client_config: { resolver_timeout: { seconds: '1' }, max_pending_lookups: '8' },
      },
    },
  ],
};
/** The table as the proxy compiles it with the listener update. */
const TABLE = compileDnsTable(LISTENER);

async function udpQuery(port: number, message: Buffer, waitMs = 1500): Promise<Buffer | undefined> {
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        resolve(undefined);
      }, waitMs);
      socket.on('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      socket.send(message, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

function query(name: string, type: dnsPacket.RecordType = 'A', id = 7): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
  });
}

function rcodeOf(b: Buffer | undefined): number {
  assert.ok(b !== undefined && b.length >= 12, 'no response');
  return b.readUInt16BE(2) & 0xf;
}

/**
 * A real upstream resolver on UDP and TCP (same port): `*.upstream.test` A 192.0.2.1 (60
 * records for `big.upstream.test`, and over UDP only the first 5 with TC set), NXDOMAIN otherwise.
 */
async function upstream(): Promise<{ port: number; close: () => void; seen: string[] }> {
  const seen: string[] = [];
  const answer = (m: Buffer, udp: boolean): Buffer => {
    const q = dnsPacket.decode(m);
    const question = q.questions?.[0];
    const name = question?.name ?? '';
    seen.push(`${udp ? 'udp' : 'tcp'}:${name}`);
    const ok = name.endsWith('.upstream.test');
    const count = name === 'big.upstream.test' ? 60 : 1;
    const truncated = udp && count > 5;
    return dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: (ok ? 0 : 3) | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0),
      questions: q.questions ?? [],
      answers: ok
        ? Array.from({ length: truncated ? 5 : count }, (_, i) => ({
            type: 'A' as const,
            name,
            ttl: 5,
            data: `192.0.2.${String(i + 1)}`,
          }))
        : [],
    });
  };
  const socket = dgram.createSocket('udp4');
  socket.on('message', (m, r) => {
    socket.send(answer(m, true), r.port, r.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const tcp = net.createServer((s) => {
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
      const out = answer(got.subarray(2, 2 + got.readUInt16BE(0)), false);
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(out.length);
      s.end(Buffer.concat([prefix, out]));
    });
  });
  await new Promise<void>((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () => {
      socket.close();
      tcp.close();
    },
    seen,
  };
}

/** One query over TCP (length-prefixed), its response. */
async function tcpQuery(port: number, q: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(q.length);
      s.write(Buffer.concat([prefix, q]));
    });
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        s.destroy();
        resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    });
    s.on('error', reject);
  });
}

test('DNS proxy: mesh names, forwarding, REFUSED/SERVFAIL, hostile input', async (t) => {
  assert.deepEqual(dnsListenerProblems(LISTENER), []);
  const up = await upstream();
  t.after(up.close);
  const dns = createDnsProxy({
    table: () => TABLE,
    logger: silentLogger(),
    upstreams: [`127.0.0.1:${String(up.port)}`],
  });
  const port = await dns.listen('127.0.0.1', 0);
  t.after(() => dns.close());

  // A mesh name: authoritative A with the VIP, case-insensitive, trailing dot ignored.
  for (const name of ['reviews', 'REVIEWS.default.svc.cluster.local']) {
    const r = dnsPacket.decode((await udpQuery(port, query(name, 'A', 42))) ?? Buffer.alloc(0));
    assert.equal(r.id, 42);
    assert.equal(r.flag_aa, true);
    assert.deepEqual(
      (r.answers ?? []).map((a) => (a as { data: string }).data),
      ['10.96.0.12'],
      name,
    );
  }
  // AAAA of a mesh name: NOERROR with no data (the client then uses the A record).
  const aaaa = await udpQuery(port, query('reviews', 'AAAA'));
  assert.equal(rcodeOf(aaaa), 0);
  assert.equal(dnsPacket.decode(aaaa ?? Buffer.alloc(0)).answers?.length, 0);
  // Too many records for 512 bytes over UDP: truncated (TC) with no records; TCP gets them all.
  const big = await udpQuery(port, query('many.example'));
  const bigPacket = dnsPacket.decode(big ?? Buffer.alloc(0));
  assert.equal(bigPacket.flag_tc, true);
  assert.equal(bigPacket.answers?.length, 0);
  assert.ok((big?.length ?? 0) <= 512);
  const viaTcp = await tcpQuery(port, query('many.example'));
  assert.equal(dnsPacket.decode(viaTcp).answers?.length, 60);

  // Other names: forwarded to the upstream, its answer relayed (NXDOMAIN too).
  const fwd = dnsPacket.decode((await udpQuery(port, query('a.upstream.test'))) ?? Buffer.alloc(0));
  assert.deepEqual(
    (fwd.answers ?? []).map((a) => (a as { data: string }).data),
    ['192.0.2.1'],
  );
  assert.equal(rcodeOf(await udpQuery(port, query('nothing.example'))), 3);
  assert.ok(up.seen.includes('udp:a.upstream.test'));
  assert.ok(!up.seen.some((n) => n.endsWith(':reviews')), 'mesh names never leave the pod');
  // A truncated upstream answer is relayed as is (TC); the client's TCP retry is forwarded
  // over TCP and gets every record.
  const bigUdp = dnsPacket.decode(
    (await udpQuery(port, query('big.upstream.test'))) ?? Buffer.alloc(0),
  );
  assert.equal(bigUdp.flag_tc, true);
  const bigTcp = dnsPacket.decode(await tcpQuery(port, query('big.upstream.test')));
  assert.equal(bigTcp.answers?.length, 60);
  assert.ok(up.seen.includes('tcp:big.upstream.test'));

  // Hostile input: never a crash, never more bytes back than a header for junk.
  assert.equal(await udpQuery(port, Buffer.from([1, 2, 3]), 300), undefined, 'no header: dropped');
  const garbage = Buffer.concat([query('x').subarray(0, 12), Buffer.from('\xff\xff\xff\xff')]);
  assert.equal(rcodeOf(await udpQuery(port, garbage)), 1, 'FORMERR');
  const truncated = query('reviews').subarray(0, 20);
  assert.equal(rcodeOf(await udpQuery(port, truncated)), 1, 'truncated: FORMERR');
  const oversized = Buffer.concat([query('reviews'), Buffer.alloc(5000)]);
  const over = await udpQuery(port, oversized);
  assert.equal(rcodeOf(over), 1);
  assert.equal(over?.length, 12, 'header only');
  const response = Buffer.from(query('reviews'));
  response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
  assert.equal(await udpQuery(port, response, 300), undefined, 'a response is not answered');
  const two = dnsPacket.encode({
    type: 'query',
    id: 9,
    questions: [
      { type: 'A', name: 'reviews' },
      { type: 'A', name: 'reviews' },
    ],
  });
  assert.equal(rcodeOf(await udpQuery(port, two)), 1, 'two questions: FORMERR');
  const update = Buffer.from(query('reviews'));
  update.writeUInt16BE((update.readUInt16BE(2) & ~0x7800) | (5 << 11), 2);
  assert.equal(rcodeOf(await udpQuery(port, update)), 4, 'UPDATE: NOTIMP');
  // A header claiming 65535 questions in 12 bytes.
  const liar = Buffer.from(query('reviews').subarray(0, 12));
  liar.writeUInt16BE(0xffff, 4);
  assert.equal(rcodeOf(await udpQuery(port, liar)), 1);
  // TCP: a length prefix larger than allowed closes the connection.
  const closed = await new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(Buffer.from([0xff, 0xff, 0, 0]));
    });
    s.on('close', () => {
      resolve(true);
    });
    s.on('error', () => undefined);
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 2000).unref();
  });
  assert.equal(closed, true);
  // Still serving after all that.
  const after = dnsPacket.decode((await udpQuery(port, query('reviews'))) ?? Buffer.alloc(0));
  assert.equal(after.answers?.length, 1);
});

test('DNS proxy: REFUSED without an upstream, SERVFAIL when the upstream is silent', async (t) => {
  const none = createDnsProxy({ table: () => TABLE, logger: silentLogger(), upstreams: [] });
  const p1 = await none.listen('127.0.0.1', 0);
  t.after(() => none.close());
  assert.equal(rcodeOf(await udpQuery(p1, query('example.org'))), 5);
  assert.equal(
    dnsPacket.decode((await udpQuery(p1, query('reviews'))) ?? Buffer.alloc(0)).answers?.length,
    1,
  );

  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const dead = createDnsProxy({
    table: () => TABLE,
    logger: silentLogger(),
    upstreams: [`127.0.0.1:${String(silent.address().port)}`],
  });
  const p2 = await dead.listen('127.0.0.1', 0);
  t.after(() => dead.close());
  assert.equal(rcodeOf(await udpQuery(p2, query('example.org'), 3000)), 2);
});
