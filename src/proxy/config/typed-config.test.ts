// The typed config is compiled before the ACK (typed-config.ts): clusters and
// endpoints become the typed objects the cluster layer reads per request, and a
// resource that does not compile is a problem (the ADS client NACKs the whole
// update on it; test/proxy/nack-keeps-serving.test.ts shows a proxy still
// serving the previous config).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../xds/index.js';
import { adsServiceDefinition } from '../../xds/protos.js';
import { HTTP_PROTOCOL_OPTIONS_KEY } from '../h2-upstream.js';
import type { XdsResource } from '../xds-client/xds-resource.js';
import { compileTypedConfig, emptyTypedConfig, validateResource } from './index.js';

const sds = (name: string): object => ({ name, sds_config: { ads: {} } });
const mtls = {
  name: 'envoy.transport_sockets.tls',
  typed_config: {
    '@type': EXTENSION_TYPE_URLS.upstreamTls,
    common_tls_context: {
      tls_certificate_sds_secret_configs: [sds('default')],
      combined_validation_context: {
        default_validation_context: {
          match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/reviews' }],
        },
        validation_context_sds_secret_config: sds('ROOTCA'),
      },
    },
  },
};
const lbEndpoint = (address: string, health?: string): object => ({
  endpoint: { address: { socket_address: { address, port_value: 9080 } } },
  ...(health === undefined ? {} : { health_status: health }),
});
const raw = (
  clusters: Record<string, XdsResource>,
  endpoints: Record<string, XdsResource> = {},
): Parameters<typeof compileTypedConfig>[1] => ({
  listener: new Map(),
  route: new Map(),
  secret: new Map(),
  cluster: new Map(Object.entries(clusters)),
  endpoint: new Map(Object.entries(endpoints)),
});

test('clusters compile to typed policy, TLS, protocol and static hosts', () => {
  const problems: string[] = [];
  const typed = compileTypedConfig(
    emptyTypedConfig(),
    raw({
      reviews: {
        '@type': TYPE_URLS.cluster,
        name: 'reviews',
        type: 'EDS',
        lb_policy: 'MAGLEV',
        maglev_lb_config: { table_size: { value: 307 } },
        circuit_breakers: { thresholds: [{ max_requests: { value: 7 } }] },
        outlier_detection: { consecutive_5xx: { value: 2 }, base_ejection_time: { seconds: 5 } },
        transport_socket: mtls,
        typed_extension_protocol_options: {
          [HTTP_PROTOCOL_OPTIONS_KEY]: {
            '@type': EXTENSION_TYPE_URLS.httpProtocolOptions,
            use_downstream_protocol_config: { http2_protocol_options: {} },
          },
        },
      },
      inbound: {
        '@type': TYPE_URLS.cluster,
        name: 'inbound',
        type: 'STATIC',
        load_assignment: {
          cluster_name: 'inbound',
          endpoints: [
            { lb_endpoints: [lbEndpoint('10.0.0.9', 'DRAINING'), lbEndpoint('127.0.0.1')] },
          ],
        },
      },
    }),
    'cluster',
    problems,
  );
  assert.deepEqual(problems, []);
  const reviews = typed.clusters.get('reviews');
  assert.ok(reviews !== undefined);
  assert.equal(reviews.policy.lbPolicy, 'MAGLEV');
  assert.equal(reviews.policy.hashTableSize, 307);
  assert.equal(reviews.policy.maxRequests, 7);
  assert.deepEqual(reviews.policy.outlier, {
    consecutive5xx: 2,
    consecutiveGatewayFailure: undefined,
    baseEjectionMs: 5_000,
    maxEjectionPercent: 10,
  });
  assert.equal(reviews.mtls, true);
  assert.equal(reviews.tls?.certificateSecret, 'default');
  assert.equal(reviews.upstreamHttp2, 'downstream');
  const inbound = typed.clusters.get('inbound');
  assert.ok(inbound !== undefined);
  assert.equal(inbound.mtls, false);
  assert.equal(inbound.tls, undefined);
  assert.equal(inbound.upstreamHttp2, 'never');
  assert.equal(inbound.policy.lbPolicy, 'ROUND_ROBIN');
  assert.equal(inbound.policy.hashTableSize, 1024);
  // Draining hosts are not sent to (Envoy), for static hosts as for EDS.
  assert.deepEqual(inbound.loadAssignment, [{ host: '127.0.0.1', port: 9080 }]);
});

test('a cluster that does not compile is a problem naming it; other kinds keep their typed maps', () => {
  const problems: string[] = [];
  const previous = compileTypedConfig(
    emptyTypedConfig(),
    raw(
      {},
      {
        reviews: {
          cluster_name: 'reviews',
          endpoints: [
            { lb_endpoints: [lbEndpoint('10.0.0.1'), lbEndpoint('10.0.0.2', 'UNHEALTHY')] },
          ],
        },
      },
    ),
    'endpoint',
    problems,
  );
  assert.deepEqual(previous.endpoints.get('reviews'), [{ host: '10.0.0.1', port: 9080 }]);
  const unanchored = structuredClone(mtls);
  delete (
    unanchored.typed_config.common_tls_context.combined_validation_context as Record<
      string,
      unknown
    >
  )['validation_context_sds_secret_config'];
  const next = compileTypedConfig(
    previous,
    raw({
      good: { '@type': TYPE_URLS.cluster, name: 'good', type: 'EDS' },
      bad: { '@type': TYPE_URLS.cluster, name: 'bad', type: 'EDS', transport_socket: unanchored },
    }),
    'cluster',
    problems,
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /^cluster "bad": transport_socket: no trust anchor/);
  assert.equal(next.clusters.has('bad'), false);
  // A cluster update leaves the endpoints' typed map as it was (and the other way round).
  assert.equal(next.endpoints, previous.endpoints);
  const listenerUpdate = compileTypedConfig(next, raw({}), 'listener', problems);
  assert.equal(listenerUpdate.clusters, next.clusters);
  assert.equal(compileTypedConfig(next, raw({}), 'secret', problems), next);
});

test('route configurations compile to matchers and actions the router reads per request', () => {
  const problems: string[] = [];
  const candidate = {
    ...raw({}),
    route: new Map<string, XdsResource>([
      [
        '9080',
        {
          name: '9080',
          virtual_hosts: [
            {
              name: 'reviews',
              domains: ['Reviews', 'reviews:9080'],
              routes: [
                {
                  match: {
                    prefix: '/API/',
                    case_sensitive: false,
                    headers: [
                      { name: 'end-user', string_match: { exact: 'Jason', ignore_case: true } },
                    ],
                  },
                  route: {
                    cluster: 'v2',
                    prefix_rewrite: '/',
                    regex_rewrite: { pattern: { regex: '^/(\\d+)$' }, substitution: '/id/\\1' },
                    host_rewrite_literal: 'reviews.internal',
                    timeout: { seconds: 2 },
                    retry_policy: { retry_on: '5xx,reset', num_retries: { value: 4 } },
                    request_mirror_policies: [
                      {
                        cluster: 'shadow',
                        runtime_fraction: { default_value: { numerator: 25 } },
                      },
                    ],
                  },
                  request_headers_to_add: [{ header: { key: 'X-Route', value: 'r' } }],
                  response_headers_to_remove: ['Server'],
                  typed_per_filter_config: {
                    'envoy.filters.http.fault': {
                      abort: { http_status: 503, percentage: { numerator: 100 } },
                    },
                  },
                },
                {
                  match: { prefix: '/' },
                  route: {
                    weighted_clusters: {
                      clusters: [
                        { name: 'v1', weight: { value: 3 } },
                        { name: 'v3', weight: { value: 1 } },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
    ]),
  };
  const typed = compileTypedConfig(emptyTypedConfig(), candidate, 'route', problems);
  assert.deepEqual(problems, []);
  const vhost = typed.routes.get('9080')?.virtualHosts[0];
  assert.ok(vhost !== undefined);
  assert.deepEqual(vhost.domains, ['reviews', 'reviews:9080']);
  const [first, second] = vhost.routes;
  assert.ok(first !== undefined && second !== undefined);
  assert.equal(first.match.caseSensitive, false);
  assert.equal(first.match.prefix, '/api/');
  assert.deepEqual(first.match.headers[0]?.string, {
    kind: 'exact',
    value: 'jason',
    ignoreCase: true,
    regex: null,
  });
  assert.ok(first.action.kind === 'cluster' && second.action.kind === 'cluster');
  assert.equal(first.action.hostRewrite, 'reviews.internal');
  assert.equal(first.action.matchedPrefix, '/API/');
  assert.equal(first.action.regexRewrite?.regex.fullMatch('/42'), true);
  assert.deepEqual(second.action.weighted, [
    { name: 'v1', weight: 3 },
    { name: 'v3', weight: 1 },
  ]);
  assert.equal(second.action.totalWeight, 4);
  // The route action's settings, header operations and fault config, compiled with it.
  assert.equal(first.retry.timeoutMs, 2_000);
  assert.deepEqual([...first.retry.retryOn], ['5xx', 'reset']);
  assert.equal(first.retry.asked, 4);
  assert.deepEqual(first.mirrors, [{ cluster: 'shadow', share: 0.25 }]);
  assert.deepEqual(first.requestHeaders.add, [{ key: 'x-route', value: 'r', append: false }]);
  assert.deepEqual(first.responseHeaders.remove, ['server']);
  assert.deepEqual(first.fault.abort, { status: 503, grpcStatus: undefined });
  assert.equal(first.fault.abortShare, 1);
  assert.equal(second.retry.asked, 0);
  assert.equal(second.retry.timeoutMs, 15_000);
  assert.equal(second.fault.abort, undefined);
  // A route update leaves the clusters' typed map as it was.
  assert.equal(typed.clusters.size, 0);
  // An RDS update that keeps a configuration (the same accepted object) keeps its compiled form;
  // one it resends is compiled again.
  const kept = compileTypedConfig(typed, candidate, 'route', problems);
  assert.equal(kept.routes.get('9080'), typed.routes.get('9080'));
  const resent = new Map([['9080', structuredClone(candidate.route.get('9080') ?? {})]]);
  const again = compileTypedConfig(typed, { ...candidate, route: resent }, 'route', problems);
  assert.notEqual(again.routes.get('9080'), typed.routes.get('9080'));
  assert.deepEqual(again.routes.get('9080')?.virtualHosts[0]?.domains, vhost.domains);
});

test('a virtualOutbound listener compiles with the listeners; a chain that does not compile NACKs', () => {
  const chain = (prefix: string, len: number): object => ({
    name: 'vip',
    filter_chain_match: {
      destination_port: { value: 9000 },
      prefix_ranges: [{ address_prefix: prefix, prefix_len: { value: len } }],
    },
    filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { cluster: 'db' } }],
  });
  const withCapture = (listener: XdsResource): Parameters<typeof compileTypedConfig>[1] => ({
    ...raw({}),
    listener: new Map([['virtualOutbound', listener]]),
  });
  const problems: string[] = [];
  const typed = compileTypedConfig(
    emptyTypedConfig(),
    withCapture({ name: 'virtualOutbound', filter_chains: [chain('10.96.0.0', 16)] }),
    'listener',
    problems,
  );
  assert.deepEqual(problems, []);
  assert.equal(typed.virtualOutbound?.chains[0]?.prefixes[0]?.len, 16);
  const bad: string[] = [];
  compileTypedConfig(
    typed,
    withCapture({ name: 'virtualOutbound', filter_chains: [chain('10.96.0.0', 40)] }),
    'listener',
    bad,
  );
  assert.equal(bad.length, 1);
  assert.match(bad[0] ?? '', /^listener "virtualOutbound": filter_chains\[0\]/);
  // Without a virtualOutbound listener there is nothing captured to route.
  const none = compileTypedConfig(typed, raw({}), 'listener', bad);
  assert.equal(none.virtualOutbound, undefined);
});

test("a route's upgrade_configs live on its RouteAction: decoded, validated and compiled from there", () => {
  // Through the real codec: RouteAction.upgrade_configs survives decoding (a field on the
  // Route itself would not exist in the proto).
  const codec = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(codec);
  const decode = (resource: object): XdsResource => {
    const bytes = codec.responseSerialize({
      version_info: '1',
      type_url: TYPE_URLS.route,
      nonce: '1',
      resources: [{ '@type': TYPE_URLS.route, ...resource }],
    });
    const back = (codec.responseDeserialize(bytes) as { resources: XdsResource[] }).resources[0];
    assert.ok(back);
    return back;
  };
  const routeWith = (upgrades: object[]): XdsResource =>
    decode({
      name: '80',
      virtual_hosts: [
        {
          name: 'ws',
          domains: ['*'],
          routes: [
            {
              match: { prefix: '/' },
              route: { cluster: 'ws', upgrade_configs: upgrades },
            },
          ],
        },
      ],
    });
  const off = routeWith([{ upgrade_type: 'websocket', enabled: { value: false } }]);
  assert.deepEqual(validateResource('route', off), []);
  const problems: string[] = [];
  const typed = compileTypedConfig(
    emptyTypedConfig(),
    { ...raw({}), route: new Map([['80', off]]) },
    'route',
    problems,
  );
  assert.deepEqual(problems, []);
  const entry = typed.routes.get('80')?.virtualHosts[0]?.routes[0];
  assert.equal(entry?.upgrades.get('websocket'), false, 'the route turns websocket off');
  // An entry with fields this proxy would skip (CONNECT termination) is NACKed, not ignored.
  const filtered = routeWith([{ upgrade_type: 'CONNECT', connect_config: {} }]);
  assert.match(
    validateResource('route', filtered).join('\n'),
    /virtual_hosts\[0\]\.routes\[0\]\.route\.upgrade_configs\[0\]: unsupported field connect_config/,
  );
});
