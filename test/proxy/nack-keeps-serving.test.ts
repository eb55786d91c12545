// A real `palisade proxy` process, for each xDS type it serves traffic with (CDS, EDS, RDS,
// LDS): an update that changes a good resource AND carries one bad resource is NACKed whole —
// the NACK names the bad resource and field, the good change never takes effect (traffic keeps
// going where v1 sent it), and the process keeps serving with the same PID (Envoy's xDS
// protocol: after a NACK "the client continues to use the last accepted version").
// The unit twin (src/proxy/xds-client/ads-client.test.ts) checks the snapshot; this checks the
// traffic. Addresses: 127.0.0.1 with ephemeral ports.
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
} from './ads-server.js';

const ECHO = clusterName('echo');

test('one bad resource among good ones: NACKed whole, old config keeps serving (CDS, EDS, RDS, LDS)', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.after(() => Promise.all([a.close(), b.close()]));
  const ads = await startTestAdsServer(t);
  const v1 = outboundResources(
    [{ name: ECHO, endpoints: [{ port: a.port }] }],
    [virtualHost('echo', [{ match: { prefix: '/' }, route: { cluster: ECHO } }])],
  );
  feed(ads, v1, 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  for (const typeUrl of Object.keys(v1)) await waitAck(ads, typeUrl, 'v1');

  /** Which upstream answers `http://echo/<path>` through the proxy now. */
  const servedBy = async (path: string): Promise<string> => {
    const seenA = a.seen.length;
    const seenB = b.seen.length;
    const r = await curl([...proxy.via, `http://echo/${path}`]);
    if (r.status !== 200) return `status ${String(r.status)}: ${r.body}`;
    if (a.seen.length > seenA) return 'a';
    if (b.seen.length > seenB) return 'b';
    return `nobody: ${r.body}`;
  };
  await waitFor(async () => (await servedBy('warm')) === 'a');

  const [v1Cluster] = v1[TYPE_URLS.cluster] ?? [];
  const [v1Assignment] = v1[TYPE_URLS.endpoint] ?? [];
  const [v1Listener] = v1[TYPE_URLS.listener] ?? [];
  const [v1Route] = v1[TYPE_URLS.route] ?? [];
  assert.ok(v1Cluster && v1Assignment && v1Listener && v1Route);
  const toB = {
    cluster_name: ECHO,
    endpoints: [
      {
        lb_endpoints: [
          {
            endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: b.port } } },
          },
        ],
      },
    ],
  };
  const cases: {
    name: string;
    typeUrl: string;
    /** The good resources, changed so that traffic would not reach a if they were applied. */
    good: object[];
    bad: object;
    error: RegExp;
  }[] = [
    {
      name: 'CDS',
      typeUrl: TYPE_URLS.cluster,
      // ECHO replaced by another cluster: applied, echo's requests would find no cluster.
      good: [{ ...v1Cluster, name: clusterName('other') }],
      bad: { ...v1Cluster, name: 'bad', lb_policy: 'LOAD_BALANCING_POLICY_CONFIG' },
      error: /cluster "bad": unsupported lb_policy LOAD_BALANCING_POLICY_CONFIG/,
    },
    {
      name: 'EDS',
      typeUrl: TYPE_URLS.endpoint,
      good: [{ '@type': TYPE_URLS.endpoint, ...toB }],
      bad: {
        '@type': TYPE_URLS.endpoint,
        cluster_name: 'bad',
        named_endpoints: {
          x: { address: { socket_address: { address: '127.0.0.1', port_value: b.port } } },
        },
      },
      error: /endpoint "bad": unsupported field named_endpoints/,
    },
    {
      name: 'RDS',
      typeUrl: TYPE_URLS.route,
      good: [
        {
          ...v1Route,
          virtual_hosts: [
            virtualHost('echo', [
              {
                match: { prefix: '/' },
                direct_response: { status: 200, body: { inline_string: 'v2' } },
              },
            ]),
          ],
        },
      ],
      bad: {
        '@type': TYPE_URLS.route,
        name: 'bad',
        virtual_hosts: [
          virtualHost('other', [
            { match: { prefix: '/' }, route: { cluster: ECHO, idle_timeout: { seconds: '5' } } },
          ]),
        ],
      },
      error: /route "bad": virtual_hosts\[0\]\.routes\[0\]\.route: unsupported field idle_timeout/,
    },
    {
      name: 'LDS',
      typeUrl: TYPE_URLS.listener,
      good: [
        {
          ...v1Listener,
          // The outbound listener now routes with a route table that answers itself.
          filter_chains: JSON.parse(
            JSON.stringify((v1Listener as { filter_chains: unknown }).filter_chains).replace(
              /"rds":\{"route_config_name":"80","config_source":\{"ads":\{\}\}\}/,
              JSON.stringify({
                route_config: {
                  name: 'inline',
                  virtual_hosts: [
                    virtualHost('echo', [
                      {
                        match: { prefix: '/' },
                        direct_response: { status: 200, body: { inline_string: 'v2' } },
                      },
                    ]),
                  ],
                },
              }).slice(1, -1),
            ),
          ) as unknown,
        },
      ],
      bad: { ...v1Listener, name: 'bad', per_connection_buffer_limit_bytes: { value: 1024 } },
      error: /listener "bad": unsupported field per_connection_buffer_limit_bytes/,
    },
  ];

  for (const c of cases)
    await t.test(`${c.name}: NACK names the bad resource; v1 keeps serving`, async () => {
      const before = ads.requests.length;
      ads.set(c.typeUrl, `v2-${c.name}`, [...c.good, c.bad]);
      const nack = await waitFor(() =>
        ads.requests
          .slice(before)
          .find((r) => r.type_url === c.typeUrl && r.error_detail !== undefined),
      );
      assert.match(nack?.error_detail?.message ?? '', c.error);
      // The good change beside the bad resource did not take effect: still a, not b or 'v2'.
      for (let i = 0; i < 5; i += 1) assert.equal(await servedBy(`${c.name}-${String(i)}`), 'a');
      // Back to v1 (ACKed) for the next type.
      ads.set(c.typeUrl, `v1-again-${c.name}`, v1[c.typeUrl] ?? []);
      await waitAck(ads, c.typeUrl, `v1-again-${c.name}`);
    });

  // The same process served throughout: its admin endpoint still answers, no crash was logged.
  assert.equal(await servedBy('last'), 'a');
  assert.equal((await curl([`http://127.0.0.1:${String(proxy.admin)}/ready`])).status, 200);
  assert.doesNotMatch(proxy.output(), /uncaught|FATAL/i);
});
