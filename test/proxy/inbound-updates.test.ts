// Inbound and gateway listener updates through a real `palisade proxy` process fed by the
// test ADS server: an update is built whole (filter chains compiled, sockets
// bound) before it is ACKed, and any failure NACKs it with the reason while the
// old listeners keep serving and enforcing the old policy (Envoy's xDS
// protocol: "a NACK ... the client continues to use the last accepted
// version"; its listener manager swaps a listener in only once it is built).
// RBAC filters are classified by their action, not their position.
// Addresses: 127.35.0.0/16 (this suite's range) and ephemeral ports.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';
import { freePort, waitFor } from '../helpers/index.js';
import { inboundCluster, inboundListener, rbac } from './inbound-resources.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  waitAck,
  type TestAdsServer,
} from './ads-server.js';

const HOST = '127.35.0.1';
/** Waits for a NACK of `version` of the listeners and returns its reason. */
async function waitNack(ads: TestAdsServer, before: number): Promise<string> {
  const nack = await waitFor(() =>
    ads.requests
      .slice(before)
      .find((r) => r.type_url === TYPE_URLS.listener && r.error_detail !== undefined),
  );
  return nack?.error_detail?.message ?? '';
}

test('inbound updates: built before the ACK, NACKed whole on any failure', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const port = await freePort(HOST);
  const second = await freePort(HOST);
  const clusters = [inboundCluster(port, app.port), inboundCluster(second, app.port)];
  ads.set(TYPE_URLS.cluster, 'c1', clusters);
  const setListeners = (version: string, listeners: object[]): number => {
    const before = ads.requests.length;
    ads.set(TYPE_URLS.listener, version, listeners);
    return before;
  };
  setListeners('v1', [inboundListener(port, [rbac('DENY', '/admin')], HOST)]);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitAck(ads, TYPE_URLS.listener, 'v1');
  const url = (path: string): string => `http://${HOST}:${String(port)}${path}`;
  await waitFor(async () => (await curl([url('/ok')])).status === 200);

  /** The v1 policy: DENY /admin*, everything else allowed. */
  const assertOldPolicy = async (): Promise<void> => {
    const denied = await curl([url('/admin/x')]);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    assert.equal((await curl([url('/ok')])).status, 200);
  };

  await t.test('a lone DENY RBAC filter is enforced', async () => {
    const seen = app.seen.length;
    await assertOldPolicy();
    assert.ok(
      app.seen.slice(seen).every((r) => !r.url.startsWith('/admin')),
      'the denied request reached the app',
    );
  });

  await t.test(
    'a principal kind the proxy does not implement: NACK with the reason, old policy enforced',
    async () => {
      // The new config would DENY /ok too; its ALLOW names a principal kind the proxy does not know.
      const before = setListeners('v2', [
        inboundListener(
          port,
          [
            rbac('DENY', '/ok'),
            rbac('ALLOW', '/', { filter_state: { key: 'k', string_match: { exact: 'v' } } }),
          ],
          HOST,
        ),
      ]);
      const reason = await waitNack(ads, before);
      assert.match(reason, /inbound\|\d+.*unsupported RBAC principal kind "filter_state"/);
      await assertOldPolicy();
    },
  );

  await t.test('an unknown RBAC action: NACK (never skipped)', async () => {
    // An enum value this build does not know (a newer control plane's): decoded as its number.
    const bad = rbac('DENY', '/ok') as { typed_config: { rules: { action: string | number } } };
    bad.typed_config.rules.action = 7;
    const before = setListeners('v3', [inboundListener(port, [bad], HOST)]);
    assert.match(await waitNack(ads, before), /unsupported RBAC action 7/);
    await assertOldPolicy();
  });

  await t.test('more RBAC filters than the proxy enforces: NACK, never fail open', async () => {
    // Three DENY filters on an HTTP chain: the evaluator runs two (CUSTOM, DENY); the third
    // used to be dropped silently, so /ok would have been allowed.
    const before = setListeners('v4', [
      inboundListener(port, [rbac('DENY', '/a'), rbac('DENY', '/b'), rbac('DENY', '/ok')], HOST),
    ]);
    assert.match(await waitNack(ads, before), /more DENY RBAC filters than this proxy enforces/);
    await assertOldPolicy();
  });

  await t.test(
    'an unbindable address: NACK, the old listeners keep serving unchanged',
    async (st) => {
      // The second listener's port is taken; the first listener's change (DENY /ok) must not
      // be applied either: the update is all or nothing.
      const squatter = net.createServer();
      await new Promise<void>((resolve) => squatter.listen(second, HOST, resolve));
      st.after(() => squatter.close());
      const before = setListeners('v5', [
        inboundListener(port, [rbac('DENY', '/ok')], HOST),
        inboundListener(second, [], HOST),
      ]);
      const reason = await waitNack(ads, before);
      assert.match(
        reason,
        new RegExp(`cannot bind ${HOST.replace(/\./g, '\\.')}:${String(second)}`),
      );
      await assertOldPolicy();
    },
  );

  await t.test('ALLOW before DENY: each filter is classified by its action', async () => {
    // ALLOW first, DENY second: position no longer decides the role.
    const before = ads.requests.length;
    ads.set(TYPE_URLS.listener, 'v6', [
      inboundListener(port, [rbac('ALLOW', '/'), rbac('DENY', '/ok')], HOST),
    ]);
    await waitAck(ads, TYPE_URLS.listener, 'v6');
    assert.ok(
      ads.requests.slice(before).every((r) => r.error_detail === undefined),
      'a valid update was NACKed',
    );
    // Swapped in before the ACK was sent.
    assert.equal((await curl([url('/ok')])).status, 403);
    assert.equal((await curl([url('/admin/x')])).status, 200);
  });
});

/** A gateway listener `0.0.0.0_<port>` on `address`: one plaintext HCM routing by RDS "80". */
function gatewayListener(port: number, address: string, filters: readonly object[]): object {
  return {
    '@type': TYPE_URLS.listener,
    name: `0.0.0.0_${String(port)}`,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
              stat_prefix: `outbound_0.0.0.0_${String(port)}`,
              rds: { route_config_name: '80', config_source: { ads: {} } },
              http_filters: [
                ...filters,
                {
                  name: 'envoy.filters.http.router',
                  typed_config: { '@type': EXTENSION_TYPE_URLS.router },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

test('gateway updates: built before the ACK, NACKed whole on any failure', async (t) => {
  const gatewayHost = '127.35.0.3';
  const app = await startUpstream('app');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  const port = await freePort(gatewayHost);
  const second = await freePort(gatewayHost);
  const cluster = clusterName('app');
  const base = outboundResources(
    [{ name: cluster, endpoints: [{ port: app.port }] }],
    [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  );
  const outbound = base[TYPE_URLS.listener] ?? [];
  feed(ads, base, 'v1');
  const setListeners = (version: string, listeners: object[]): number => {
    const before = ads.requests.length;
    ads.set(TYPE_URLS.listener, version, [...outbound, ...listeners]);
    return before;
  };
  setListeners('v1', [gatewayListener(port, gatewayHost, [rbac('DENY', '/admin')])]);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  await waitAck(ads, TYPE_URLS.listener, 'v1');
  const url = (path: string): string => `http://${gatewayHost}:${String(port)}${path}`;
  await waitFor(async () => (await curl([url('/ok')])).status === 200);
  const assertOldPolicy = async (): Promise<void> => {
    assert.equal((await curl([url('/admin/x')])).status, 403);
    assert.equal((await curl([url('/ok')])).status, 200);
  };
  await assertOldPolicy();

  await t.test('a bad RBAC principal kind: NACK, old gateway policy enforced', async () => {
    const before = setListeners('v2', [
      gatewayListener(port, gatewayHost, [
        rbac('DENY', '/ok'),
        rbac('ALLOW', '/', { filter_state: { key: 'k', string_match: { exact: 'v' } } }),
      ]),
    ]);
    assert.match(
      await waitNack(ads, before),
      /0\.0\.0\.0_\d+.*unsupported RBAC principal kind "filter_state"/,
    );
    await assertOldPolicy();
  });

  await t.test('an unbindable address: NACK, the old gateway keeps serving', async (st) => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(second, gatewayHost, resolve));
    st.after(() => squatter.close());
    const before = setListeners('v3', [
      gatewayListener(port, gatewayHost, [rbac('DENY', '/ok')]),
      gatewayListener(second, gatewayHost, []),
    ]);
    assert.match(await waitNack(ads, before), /cannot bind 127\.35\.0\.3:\d+/);
    await assertOldPolicy();
  });
});
