// The ADS client against a real gRPC ADS server on loopback: subscriptions
// follow the config (CDS → EDS), updates are ACKed, an unsupported field is
// NACKed with its name and the last good config is kept, the bearer token is
// sent, and the client reconnects after the server is gone, resending versions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../xds/index.js';
import { adsPassthroughDefinition } from '../../xds/protos.js';
import { createAdsClient } from './ads-client.js';

interface Request {
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

interface TestServer {
  port: number;
  requests: Request[];
  tokens: string[];
  push(typeUrl: string, version: string, resources: object[]): void;
  /** Writes bytes as they are, as a message of every open stream. */
  pushRaw(bytes: Buffer): void;
  stop(): Promise<void>;
}

async function startAds(port = 0): Promise<TestServer> {
  const server = new grpc.Server();
  const requests: Request[] = [];
  const tokens: string[] = [];
  const calls = new Set<grpc.ServerDuplexStream<Request, object>>();
  let nonce = 0;
  server.addService(adsPassthroughDefinition(), {
    StreamAggregatedResources(call: grpc.ServerDuplexStream<Request, object>) {
      calls.add(call);
      tokens.push(String(call.metadata.get('authorization')[0] ?? ''));
      call.on('data', (request: Request) => requests.push(request));
      call.on('end', () => {
        calls.delete(call);
        call.end();
      });
      call.on('error', () => calls.delete(call));
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `127.0.0.1:${String(port)}`,
      grpc.ServerCredentials.createInsecure(),
      (error, p) => {
        if (error) reject(error);
        else resolve(p);
      },
    );
  });
  return {
    port: bound,
    requests,
    tokens,
    push(typeUrl, version, resources) {
      nonce += 1;
      for (const call of calls) {
        call.write({
          version_info: version,
          type_url: typeUrl,
          nonce: `n${String(nonce)}`,
          resources,
        });
      }
    },
    pushRaw(bytes) {
      for (const call of calls) call.write(bytes);
    },
    stop() {
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const edsCluster = (name: string): object => ({
  '@type': TYPE_URLS.cluster,
  name,
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {} } },
  connect_timeout: { seconds: '1', nanos: 0 },
});

const node = {
  id: 'sidecar~127.0.0.2~a.ns~ns.svc.cluster.local',
  cluster: 'a.ns',
  metadata: { NAMESPACE: 'ns' },
};

test('subscribes, ACKs, follows EDS names, sends the bearer token', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    token: () => 'tok',
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.some((r) => r.type_url === TYPE_URLS.cluster), 'CDS request');
  assert.equal(ads.tokens[0], 'Bearer tok');
  ads.push(TYPE_URLS.cluster, 'v1', [edsCluster('outbound|80||b.ns.svc.cluster.local')]);
  await until(() => client.versions.cluster === 'v1', 'CDS accepted');
  await until(
    () =>
      ads.requests.some(
        (r) =>
          r.type_url === TYPE_URLS.endpoint &&
          r.resource_names?.includes('outbound|80||b.ns.svc.cluster.local') === true,
      ),
    'EDS subscription',
  );
  const ack = ads.requests.find((r) => r.type_url === TYPE_URLS.cluster && r.version_info === 'v1');
  assert.ok(ack);
  assert.equal(ack.error_detail, undefined);
  assert.ok(client.snapshot.cluster.has('outbound|80||b.ns.svc.cluster.local'));
});

test('NACKs an unsupported field with its name and keeps the last good config', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const nacks: string[] = [];
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    onNack: (_kind, reason) => nacks.push(reason),
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  ads.push(TYPE_URLS.cluster, 'v1', [edsCluster('good')]);
  await until(() => client.versions.cluster === 'v1', 'v1 accepted');
  // dns_lookup_family is a real Cluster field the proxy does not implement.
  ads.push(TYPE_URLS.cluster, 'v2', [
    edsCluster('other'),
    { ...edsCluster('bad'), dns_lookup_family: 'V4_ONLY' },
  ]);
  await until(() => nacks.length > 0, 'NACK');
  assert.match(nacks[0] ?? '', /cluster "bad": unsupported field dns_lookup_family/);
  await until(
    () =>
      ads.requests.some((r) => r.type_url === TYPE_URLS.cluster && r.error_detail !== undefined),
    'NACK on the wire',
  );
  const nack = ads.requests.find(
    (r) => r.type_url === TYPE_URLS.cluster && r.error_detail !== undefined,
  );
  assert.ok(nack);
  assert.equal(nack.version_info, 'v1');
  assert.match(nack.error_detail?.message ?? '', /dns_lookup_family/);
  // Atomic: neither the good nor the bad resource of v2 was applied.
  assert.deepEqual([...client.snapshot.cluster.keys()], ['good']);
  assert.equal(client.versions.cluster, 'v1');
});

test('NACKs an unsupported HTTP filter inside a listener', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const nacks: string[] = [];
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    onNack: (_kind, reason) => nacks.push(reason),
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  ads.push(TYPE_URLS.listener, 'v1', [
    {
      '@type': TYPE_URLS.listener,
      name: 'inbound|8080',
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type':
                  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                http_filters: [
                  {
                    name: 'envoy.filters.http.ext_authz',
                    typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
                  },
                ],
              },
            },
          ],
        },
      ],
    },
  ]);
  await until(() => nacks.length > 0, 'NACK');
  assert.match(
    nacks[0] ?? '',
    /unsupported extension type\.googleapis\.com\/google\.protobuf\.Empty/,
  );
  assert.equal(client.snapshot.listener.size, 0);
});

test('keeps the config when the server dies and resends versions on reconnect', async (t) => {
  let ads = await startAds();
  const port = ads.port;
  const client = createAdsClient({
    address: `127.0.0.1:${String(port)}`,
    node,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  ads.push(TYPE_URLS.cluster, 'v7', [edsCluster('kept')]);
  await until(() => client.versions.cluster === 'v7', 'v7 accepted');
  await ads.stop();
  await until(() => !client.connected, 'disconnect');
  assert.ok(client.snapshot.cluster.has('kept'));
  ads = await startAds(port);
  t.after(() => ads.stop());
  await until(
    () => ads.requests.some((r) => r.type_url === TYPE_URLS.cluster && r.version_info === 'v7'),
    'reconnect with the accepted version',
  );
  assert.ok(client.snapshot.cluster.has('kept'));
});

test('bytes that are not a DiscoveryResponse end the stream (INTERNAL, named); the config is kept and the stream comes back', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const ends: { code: number; details: string; established: boolean }[] = [];
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    onStreamEnd: (status, established) => ends.push({ ...status, established }),
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  ads.push(TYPE_URLS.cluster, 'v1', [edsCluster('kept')]);
  await until(() => client.versions.cluster === 'v1', 'v1 accepted');
  // version_info (field 1, a string) sent as a varint, then a truncated resource.
  ads.pushRaw(Buffer.from([0x08, 0x01, 0x12, 0x40, 0x0a]));
  await until(() => ends.length > 0, 'stream end');
  const [first] = ends;
  assert.ok(first);
  assert.equal(first.code, 13);
  assert.match(
    first.details,
    /undecodable DiscoveryResponse: .*DiscoveryResponse\.version_info: wire type 0, expected 2/,
  );
  assert.equal(first.established, true);
  assert.ok(client.snapshot.cluster.has('kept'));
  assert.equal(client.versions.cluster, 'v1');
  await until(() => ads.tokens.length === 2, 'a new stream');
  await until(
    () =>
      ads.requests.filter((r) => r.type_url === TYPE_URLS.cluster && r.version_info === 'v1')
        .length >= 2,
    'the accepted version resent',
  );
});

test('NACKs route features and listeners this build does not implement (fail closed)', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const nacks: string[] = [];
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    onNack: (_kind, reason) => nacks.push(reason),
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  ads.push(TYPE_URLS.listener, 'v1', [{ '@type': TYPE_URLS.listener, name: 'mysteryListener' }]);
  await until(() => nacks.length > 0, 'listener NACK');
  assert.match(
    nacks[0] ?? '',
    /"mysteryListener": only the outbound, inbound\|<port>, virtualOutbound, virtualInbound and 0\.0\.0\.0_<port> \(gateway\) listeners/,
  );
  // An inbound chain with a filter the inbound path does not enforce would fail open: NACK.
  ads.push(TYPE_URLS.listener, 'v2', [
    {
      '@type': TYPE_URLS.listener,
      name: 'inbound|8080',
      filter_chains: [
        {
          filter_chain_match: { transport_protocol: 'raw_buffer' },
          filters: [{ name: 'envoy.filters.network.ext_authz', typed_config: {} }],
        },
      ],
    },
  ]);
  await until(() => nacks.length > 1, 'inbound NACK');
  assert.match(
    nacks[1] ?? '',
    /filters must be network RBAC filters then one HTTP connection manager or tcp_proxy/,
  );
  ads.push(TYPE_URLS.route, 'v1', [
    {
      '@type': TYPE_URLS.route,
      name: '80',
      virtual_hosts: [
        {
          name: 'b',
          domains: ['b'],
          routes: [
            {
              match: { prefix: '/' },
              route: { cluster: 'c', hash_policy: [{ filter_state: { key: 'x' } }] },
              typed_per_filter_config: {
                'envoy.filters.http.ext_authz': {},
                'envoy.filters.http.cors': {
                  '@type': EXTENSION_TYPE_URLS.corsPolicy,
                  allow_private_network_access: { value: true },
                },
              },
            },
          ],
        },
      ],
    },
  ]);
  await until(() => nacks.length > 2, 'route NACK');
  assert.match(
    nacks[2] ?? '',
    /virtual_hosts\[0\]\.routes\[0\]\.route\.hash_policy\[0\]: unsupported hash policy filter_state/,
  );
  assert.match(nacks[2] ?? '', /unsupported filter envoy\.filters\.http\.ext_authz/);
  assert.match(
    nacks[2] ?? '',
    /\[envoy\.filters\.http\.cors\]: unsupported field allow_private_network_access/,
  );
  assert.equal(client.snapshot.listener.size, 0);
  assert.equal(client.snapshot.route.size, 0);
});

const HCM_TYPE = EXTENSION_TYPE_URLS.httpConnectionManager;
const outboundListener = (routeName: string): object => ({
  '@type': TYPE_URLS.listener,
  name: 'outbound',
  address: { socket_address: { address: '127.32.0.1', port_value: 15001 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM_TYPE,
            stat_prefix: 'outbound',
            rds: { route_config_name: routeName, config_source: { ads: {} } },
            http_filters: [
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
});
const routeConfig = (name: string, cluster: string, action: object = {}): object => ({
  '@type': TYPE_URLS.route,
  name,
  virtual_hosts: [
    {
      name: 'all',
      domains: ['*'],
      routes: [{ match: { prefix: '/' }, route: { cluster, ...action } }],
    },
  ],
});
const assignment = (cluster: string, port: number, extra: object = {}): object => ({
  '@type': TYPE_URLS.endpoint,
  cluster_name: cluster,
  endpoints: [
    {
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '127.32.0.2', port_value: port } } } },
      ],
    },
  ],
  ...extra,
});
const rootCa = (name: string, extra: object = {}): object => ({
  '@type': TYPE_URLS.secret,
  name,
  validation_context: { trusted_ca: { inline_string: 'ca' } },
  ...extra,
});

// For every resource type: v1 (all good) is ACKed; v2 carries changed good
// resources beside one bad resource and is NACKed whole — the error names the
// bad resource and its field, and the snapshot still holds exactly v1.
test('one bad resource among good ones NACKs the whole update, per resource type', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  const nacks: { kind: string; reason: string }[] = [];
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    onNack: (kind, reason) => nacks.push({ kind, reason }),
  });
  t.after(() => {
    client.close();
  });
  await until(() => ads.requests.length > 0, 'first request');
  const subscribedTo = (typeUrl: string, name: string): boolean =>
    ads.requests.some((r) => r.type_url === typeUrl && r.resource_names?.includes(name) === true);

  // v1 of every type, subscriptions followed (CDS → EDS, LDS → RDS, ROOTCA).
  ads.push(TYPE_URLS.cluster, 'v1', [edsCluster('a'), edsCluster('b')]);
  await until(() => client.versions.cluster === 'v1', 'CDS v1');
  ads.push(TYPE_URLS.listener, 'v1', [outboundListener('r')]);
  await until(() => client.versions.listener === 'v1', 'LDS v1');
  await until(() => subscribedTo(TYPE_URLS.endpoint, 'b'), 'EDS subscription');
  await until(() => subscribedTo(TYPE_URLS.route, 'r'), 'RDS subscription');
  await until(() => subscribedTo(TYPE_URLS.secret, 'ROOTCA'), 'SDS subscription');
  ads.push(TYPE_URLS.endpoint, 'v1', [assignment('a', 8080), assignment('b', 8080)]);
  ads.push(TYPE_URLS.route, 'v1', [routeConfig('r', 'a')]);
  ads.push(TYPE_URLS.secret, 'v1', [rootCa('ROOTCA')]);
  await until(
    () =>
      client.versions.endpoint === 'v1' &&
      client.versions.route === 'v1' &&
      client.versions.secret === 'v1',
    'EDS, RDS and SDS v1',
  );
  const before = {
    cluster: new Map(client.snapshot.cluster),
    endpoint: new Map(client.snapshot.endpoint),
    route: new Map(client.snapshot.route),
    listener: new Map(client.snapshot.listener),
    secret: new Map(client.snapshot.secret),
  };

  const cases: {
    kind: keyof typeof before;
    bad: string;
    typeUrl: string;
    resources: object[];
    error: RegExp;
  }[] = [
    {
      kind: 'cluster',
      bad: 'bad',
      typeUrl: TYPE_URLS.cluster,
      resources: [
        edsCluster('a'),
        { ...edsCluster('b'), connect_timeout: { seconds: '2', nanos: 0 } },
        { ...edsCluster('bad'), lb_policy: 'LOAD_BALANCING_POLICY_CONFIG' },
      ],
      error: /cluster "bad": unsupported lb_policy LOAD_BALANCING_POLICY_CONFIG/,
    },
    {
      kind: 'endpoint',
      bad: 'b',
      typeUrl: TYPE_URLS.endpoint,
      resources: [
        assignment('a', 9090),
        assignment('b', 9090, {
          named_endpoints: {
            x: { address: { socket_address: { address: '127.32.0.3', port_value: 1 } } },
          },
        }),
      ],
      error: /endpoint "b": unsupported field named_endpoints/,
    },
    {
      kind: 'route',
      bad: 'r2',
      typeUrl: TYPE_URLS.route,
      resources: [
        routeConfig('r', 'b'),
        routeConfig('r2', 'a', { idle_timeout: { seconds: '5', nanos: 0 } }),
      ],
      error: /route "r2": virtual_hosts\[0\]\.routes\[0\]\.route: unsupported field idle_timeout/,
    },
    {
      kind: 'listener',
      bad: 'inbound|9080',
      typeUrl: TYPE_URLS.listener,
      resources: [
        outboundListener('r2'),
        {
          ...outboundListener('r'),
          name: 'inbound|9080',
          per_connection_buffer_limit_bytes: { value: 1024 },
        },
      ],
      error: /listener "inbound\|9080": unsupported field per_connection_buffer_limit_bytes/,
    },
    {
      kind: 'secret',
      bad: 'extra',
      typeUrl: TYPE_URLS.secret,
      resources: [
        rootCa('ROOTCA', { validation_context: { trusted_ca: { inline_string: 'other' } } }),
        rootCa('extra', { generic_secret: { secret: { inline_string: 'x' } } }),
      ],
      error: /secret "extra": unsupported field generic_secret/,
    },
  ];
  for (const c of cases) {
    const seen = nacks.length;
    ads.push(c.typeUrl, 'v2', c.resources);
    await until(() => nacks.length > seen, `${c.kind} NACK`);
    const nack = nacks[seen];
    assert.equal(nack?.kind, c.kind);
    assert.match(nack.reason, c.error);
    // Only the bad resource is named: the good ones beside it are not the reason.
    for (const problem of nack.reason.split('; '))
      assert.ok(problem.startsWith(`${c.kind} ${JSON.stringify(c.bad)}:`), problem);
    await until(
      () =>
        ads.requests.some(
          (r) =>
            r.type_url === c.typeUrl && r.version_info === 'v1' && r.error_detail !== undefined,
        ),
      `${c.kind} NACK on the wire`,
    );
    assert.equal(client.versions[c.kind], 'v1');
    assert.deepEqual(client.snapshot[c.kind], before[c.kind], `${c.kind} snapshot kept`);
  }
});

test('a node that cannot be encoded is refused when the client is made, naming the field', () => {
  assert.throws(
    () =>
      createAdsClient({
        address: '127.0.0.1:1',
        node: { ...node, cluster: 7 as unknown as string },
      }),
    /xDS node cannot be sent: envoy\.config\.core\.v3\.Node\.cluster: expected a string/,
  );
});

test('a control plane that answers only garbage is retried with a growing backoff', async (t) => {
  const ads = await startAds();
  t.after(() => ads.stop());
  let ends = 0;
  const client = createAdsClient({
    address: `127.0.0.1:${String(ads.port)}`,
    node,
    initialBackoffMs: 50,
    maxBackoffMs: 5_000,
    onStreamEnd: () => (ends += 1),
  });
  t.after(() => {
    client.close();
  });
  // Every new stream gets bytes that are not a DiscoveryResponse as soon as it asks.
  const answered = new Set<number>();
  const started = Date.now();
  while (Date.now() - started < 1_500) {
    if (ads.tokens.length > answered.size) {
      answered.add(ads.tokens.length);
      ads.pushRaw(Buffer.from([0x08, 0x01]));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  // 25–50, 50–100, 100–200, 200–400, 400–800 ms: at most six streams in 1.5 s. A backoff
  // reset by each garbage answer would reconnect every 25–50 ms (some thirty streams).
  assert.ok(ends >= 2, `${String(ends)} stream ends`);
  assert.ok(ads.tokens.length <= 7, `${String(ads.tokens.length)} streams in 1.5 s`);
  assert.equal(client.versions.cluster, '');
});
