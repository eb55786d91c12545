// Hostile bytes on the ADS stream, against a real `palisade proxy` process: a
// control plane (here the test ADS server writing raw messages) that sends
// bytes which are not a DiscoveryResponse — a wire type that contradicts the
// field, a truncated field, a group, a Struct nested 200 deep inside an Any,
// seeded random bytes. The proxy's codec refuses them by name, the stream is
// ended and reopened with the accepted versions, the last good config keeps
// serving (requests through the proxy still answer), and the process keeps
// its PID and never reports an uncaught error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
  waitAck,
} from '../proxy/ads-server.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** Field `number` with wire type 2 around `bytes`. */
function len(number: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
}

/** A DiscoveryResponse whose one resource is an Any holding a Struct nested `depth` deep. */
function deepStruct(depth: number): Buffer {
  let struct: Buffer = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) {
    // Struct.fields (1) → entry { key (1) "k", value (2) Value { struct_value (5) } }.
    const value = len(5, struct);
    const entry = Buffer.concat([len(1, Buffer.from('k')), len(2, value)]);
    struct = len(1, entry);
  }
  const any = Buffer.concat([
    len(1, Buffer.from('type.googleapis.com/google.protobuf.Struct')),
    len(2, struct),
  ]);
  return len(2, any);
}

/** Deterministic bytes (mulberry32). */
function randomBytes(seed: number, n: number): Buffer {
  let a = seed;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return out;
}

const UNDECODABLE: [string, Buffer][] = [
  ['version_info as a varint', Buffer.from([0x08, 0x01])],
  ['a truncated resource', Buffer.from([0x12, 0x40, 0x0a])],
  ['a group (unknown field 15)', Buffer.from([0x7b, 0x7c])],
  ['a Struct nested 200 deep inside an Any', deepStruct(200)],
];

test('bytes that are not a DiscoveryResponse: refused by name, stream reopened, last good config serving, same PID', async (t) => {
  const ads = await startTestAdsServer(t);
  const app = await startUpstream('app');
  t.after(() => app.close());
  feed(
    ads,
    outboundResources(
      [{ name: clusterName('app'), endpoints: [{ port: app.port }] }],
      [virtualHost('app', [{ match: { prefix: '/' }, route: { cluster: clusterName('app') } }])],
    ),
    'v1',
  );
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitAck(ads, TYPE_URLS.route, 'v1');
  await waitFor(async () => (await curl([...proxy.via, 'http://app/ok'])).status === 200, 20_000);

  const hostile: [string, Buffer][] = [
    ...UNDECODABLE,
    ...[1, 2, 3].map((seed): [string, Buffer] => [
      `random bytes #${String(seed)}`,
      randomBytes(seed, 96),
    ]),
  ];
  for (const [what, bytes] of hostile) {
    const streams = ads.streams;
    const accepted = ads.requests.length;
    ads.sendRaw(bytes);
    if (UNDECODABLE.some(([name]) => name === what)) {
      // Ended and reopened, asking again with the accepted version.
      await waitFor(() => ads.streams > streams, 20_000);
      await waitFor(
        () =>
          ads.requests
            .slice(accepted)
            .some((r) => r.type_url === TYPE_URLS.cluster && r.version_info === 'v1'),
        20_000,
      );
    }
    const r = await curl([...proxy.via, 'http://app/ok']);
    assert.equal(r.status, 200, `${what}: ${r.body}`);
    process.kill(proxy.pid, 0);
  }
  const out = proxy.output();
  for (const message of [
    /undecodable DiscoveryResponse: .*DiscoveryResponse\.version_info: wire type 0, expected 2/,
    /undecodable DiscoveryResponse: .*truncated/,
    /undecodable DiscoveryResponse: .*unknown field 15: wire type 3 is not supported/,
    /undecodable DiscoveryResponse: .*nested deeper than 100/,
  ])
    assert.match(out, message);
  assert.doesNotMatch(out, /uncaught|unhandled/i);
  // Still the accepted config, and still the same process.
  assert.equal((await curl([...proxy.via, 'http://app/after'])).status, 200);
  process.kill(proxy.pid, 0);
});
