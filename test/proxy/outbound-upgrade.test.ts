// WebSocket upgrade through the outbound listener of a real `palisade proxy`
// process fed by the test ADS server: an absolute-form upgrade request is
// routed like any request (route match, cluster, endpoint), the app's 101 with
// its Sec-WebSocket-Accept comes back intact, bytes flow both ways; an
// upgrade the app refuses is relayed as its answer, an unrouted one is 404,
// and an upgrade to a cluster without endpoints is 503.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../helpers/index.js';
import { echoUpgrades, upgradeOver } from '../helpers/websocket.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  virtualHost,
} from './ads-server.js';

const WS = clusterName('ws');
const EMPTY = clusterName('empty');

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

test('WebSocket upgrade through the outbound listener', async (t) => {
  const app = http.createServer((_req, res) => {
    res.end('plain');
  });
  const seen = echoUpgrades(app, 'app');
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  const appPort = (app.address() as net.AddressInfo).port;
  const ads = await startTestAdsServer(t);
  feed(
    ads,
    outboundResources(
      [
        { name: WS, endpoints: [{ port: appPort }] },
        { name: EMPTY, endpoints: [] },
      ],
      [
        virtualHost('ws', [
          { match: { prefix: '/chat' }, route: { cluster: WS, prefix_rewrite: '/socket' } },
          { match: { prefix: '/' }, route: { cluster: WS } },
        ]),
        virtualHost('empty', [{ match: { prefix: '/' }, route: { cluster: EMPTY } }]),
      ],
    ),
    'v1',
  );
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitFor(async () => (await curl([...proxy.via, 'http://ws/'])).status === 200, 20_000);

  await t.test('101 with the app accept value; bytes both ways; several at once', async () => {
    const sessions = await Promise.all(
      [1, 2, 3].map(async () =>
        upgradeOver(await connect(proxy.outbound), 'http://ws/chat/room', 'ws'),
      ),
    );
    for (const [i, s] of sessions.entries()) {
      assert.equal(s.status, 101, s.head);
      assert.equal(await s.exchange(`hello ${String(i)}`), `app:hello ${String(i)}`);
      assert.equal(await s.exchange('again'), 'app:again');
      s.close();
    }
    const last = seen.at(-1);
    assert.ok(last !== undefined);
    assert.equal(last.url, '/socket/room', 'prefix_rewrite applies to upgrades too');
    assert.equal(last.headers.host, 'ws');
    assert.equal(last.headers.upgrade, 'websocket');
    assert.ok(typeof last.headers['x-request-id'] === 'string');
  });

  await t.test('refused, unrouted and endpoint-less upgrades', async () => {
    const refused = await upgradeOver(await connect(proxy.outbound), 'http://ws/refuse', 'ws');
    assert.equal(refused.status, 403);
    assert.match(refused.head, /refused$/);
    const unrouted = await upgradeOver(
      await connect(proxy.outbound),
      'http://nowhere/x',
      'nowhere',
    );
    assert.equal(unrouted.status, 404);
    const empty = await upgradeOver(await connect(proxy.outbound), 'http://empty/x', 'empty');
    assert.equal(empty.status, 503);
    assert.match(empty.head, /no healthy upstream/);
    await waitFor(() => proxy.accessLog().some((l) => l['response_code'] === 101), 5000);
  });
});
