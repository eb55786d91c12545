// Consistent-hash load balancing (Istio's DestinationRule
// loadBalancer.consistentHash → Envoy RING_HASH/MAGLEV clusters and route
// hash_policy) through a real `palisade proxy` process fed by the test ADS
// server: every key sticks to one of four upstreams, keys spread over them,
// an endpoint leaving moves only its own keys, a cookie policy with a ttl
// issues the sticky cookie, source IP and query parameter policies hash too,
// and requests without a key are spread.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  proxyClient,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
  waitAck,
  type ClusterSpec,
} from './ads-server.js';

const RING = clusterName('ring');
const MAGLEV = clusterName('maglev');

function routes(): object[] {
  return [
    virtualHost('ring', [
      {
        match: { prefix: '/cookie' },
        route: {
          cluster: RING,
          hash_policy: [{ cookie: { name: 'sticky', ttl: { seconds: '3600' }, path: '/' } }],
        },
      },
      {
        match: { prefix: '/source' },
        route: { cluster: RING, hash_policy: [{ connection_properties: { source_ip: true } }] },
      },
      {
        match: { prefix: '/query' },
        route: { cluster: RING, hash_policy: [{ query_parameter: { name: 'user' } }] },
      },
      {
        match: { prefix: '/' },
        route: { cluster: RING, hash_policy: [{ header: { header_name: 'x-user' } }] },
      },
    ]),
    virtualHost('maglev', [
      {
        match: { prefix: '/' },
        route: { cluster: MAGLEV, hash_policy: [{ header: { header_name: 'x-user' } }] },
      },
    ]),
  ];
}

test('consistent hashing through a palisade proxy process', async (t) => {
  const apps = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n)));
  for (const app of apps) t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const clustersFor = (live: typeof apps): ClusterSpec[] => [
    {
      name: RING,
      endpoints: live.map((a) => ({ port: a.port })),
      extra: {
        lb_policy: 'RING_HASH',
        ring_hash_lb_config: { minimum_ring_size: { value: '512' } },
      },
    },
    {
      name: MAGLEV,
      endpoints: live.map((a) => ({ port: a.port })),
      extra: { lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: '65537' } } },
    },
  ];
  feed(ads, outboundResources(clustersFor(apps), routes()), 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitFor(async () => (await curl([...proxy.via, 'http://ring/'])).status === 200, 20_000);
  const client = proxyClient(proxy.outbound);
  t.after(() => {
    client.close();
  });
  const serverOf = async (url: string, headers: Record<string, string> = {}): Promise<string> => {
    const r = await client.get(url, headers);
    assert.equal(r.status, 200, r.body);
    return r.body.split(' ')[0] ?? '';
  };
  const users = Array.from({ length: 40 }, (_, i) => `user-${String(i)}`);

  for (const host of ['ring', 'maglev'])
    await t.test(
      `${host}: a header key always reaches the same upstream; keys spread`,
      async () => {
        const owner = new Map<string, string>();
        for (let round = 0; round < 4; round += 1)
          for (const user of users) {
            const server = await serverOf(`http://${host}/`, { 'x-user': user });
            if (round === 0) owner.set(user, server);
            else
              assert.equal(server, owner.get(user), `${user} moved from ${owner.get(user) ?? ''}`);
          }
        const used = new Set(owner.values());
        assert.ok(used.size >= 3, `40 keys reached only ${[...used].join(',')}`);
      },
    );

  await t.test('without a key the requests are spread (Envoy picks at random)', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i += 1) seen.add(await serverOf('http://ring/'));
    assert.ok(seen.size >= 3, [...seen].join(','));
  });

  await t.test('query parameter and source IP policies hash', async () => {
    const byQuery = new Set<string>();
    for (let i = 0; i < 10; i += 1) byQuery.add(await serverOf('http://ring/query?user=alice&x=1'));
    assert.equal(byQuery.size, 1);
    const bySource = new Set<string>();
    for (let i = 0; i < 10; i += 1) bySource.add(await serverOf('http://ring/source'));
    assert.equal(bySource.size, 1);
  });

  await t.test(
    'a cookie policy with a ttl issues the sticky cookie; the cookie sticks',
    async () => {
      const first = await curl([...proxy.via, 'http://ring/cookie']);
      assert.equal(first.status, 200);
      const cookie = /^sticky=([0-9a-f]+); Max-Age=3600; Path=\/; HttpOnly$/.exec(
        first.headers['set-cookie'] ?? '',
      );
      assert.ok(cookie !== null, `set-cookie: ${first.headers['set-cookie'] ?? '(none)'}`);
      const servers = new Set<string>();
      for (let i = 0; i < 10; i += 1)
        servers.add(
          await serverOf('http://ring/cookie', { cookie: `other=1; sticky=${cookie[1] ?? ''}` }),
        );
      assert.equal(servers.size, 1);
      const again = await curl([
        ...proxy.via,
        '-H',
        `Cookie: sticky=${cookie[1] ?? ''}`,
        'http://ring/cookie',
      ]);
      assert.equal(
        again.headers['set-cookie'],
        undefined,
        'a request with the cookie gets no new one',
      );
    },
  );

  await t.test('an upstream leaving moves its keys and few others', async () => {
    const many = Array.from({ length: 200 }, (_, i) => `key-${String(i)}`);
    const before = new Map<string, string>();
    for (const key of many) before.set(key, await serverOf('http://ring/', { 'x-user': key }));
    const gone = apps[0]?.name ?? '';
    feed(ads, outboundResources(clustersFor(apps.slice(1)), routes()), 'v2');
    await waitAck(ads, TYPE_URLS.endpoint, 'v2');
    let owned = 0;
    let stayed = 0;
    for (const key of many) {
      const now = await serverOf('http://ring/', { 'x-user': key });
      assert.notEqual(now, gone);
      if (before.get(key) === gone) owned += 1;
      else if (now === before.get(key)) stayed += 1;
    }
    assert.ok(owned > 0, 'the removed upstream owned no key: the test proves nothing');
    // Envoy's ring gives each host ceil(minimum_ring_size / hosts) points, so the survivors gain
    // points and take a few keys from each other; rehashing modulo the host count would keep ~1/3.
    const share = stayed / (many.length - owned);
    assert.ok(share >= 0.7, `only ${(share * 100).toFixed(0)} % of unaffected keys stayed`);
  });
});
