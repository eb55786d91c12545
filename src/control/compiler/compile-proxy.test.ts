// Everything the compiler produces must survive Envoy's protos (the ADS
// codec), decode in the proxy's own codec exactly as protobufjs decodes it, and
// be accepted by Palisade's own proxy: a wrapper written as a bare
// value (`prefix_len: 32` for a UInt32Value) or a snake_case Struct field is
// silently dropped or fails to encode, and a field the proxy does not
// implement is NACKed. This compiles Bookinfo plus a config that uses every
// translated feature, round-trips each resource through the codec and runs
// the proxy's validation on the decoded form.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseManifests, readManifests } from '../../api/index.js';
import { validateResource } from '../../proxy/index.js';
import { decodeMessage, TYPE_URLS, type ResourceKind } from '../../xds/index.js';
import { adsServiceDefinition } from '../../xds/protos.js';
import { REPO_ROOT } from '../../../test/helpers/index.js';
import { createSnapshot, validateManifests } from '../config/config-snapshot.js';
import { buildRegistry, type InstanceView } from '../registry/service-registry.js';
import { compileProxy, type ProxyResources } from './compile-proxy.js';
import { GATEWAY_LABELS, type ProxyNode } from './proxy-node.js';

const EXTRA = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
    - match: [{ headers: { end-user: { exact: jason } }, uri: { prefix: /reviews }, ignoreUriCase: true, queryParams: { v: { regex: "[0-9]+" } } }]
      fault: { delay: { fixedDelay: 7s, percentage: { value: 100 } }, abort: { httpStatus: 500, percentage: { value: 10 } } }
      route: [{ destination: { host: reviews, subset: v2 } }]
      headers: { request: { set: { x-a: "1" }, add: { x-b: "2" }, remove: [x-c] }, response: { set: { x-d: "4" } } }
    - match: [{ uri: { exact: /old } }]
      redirect: { uri: /new, redirectCode: 302 }
    - match: [{ uri: { exact: /teapot } }]
      directResponse: { status: 418, body: { string: "I'm a teapot" } }
    - match: [{ uri: { exact: /nodebug }, withoutHeaders: { x-debug: { regex: "*" } } }]
      directResponse: { status: 200, body: { string: "no debug header" } }
    - route:
        - { destination: { host: reviews, subset: v1 }, weight: 80 }
        - { destination: { host: reviews, subset: v3 }, weight: 20 }
      timeout: 3s
      retries: { attempts: 3, perTryTimeout: 1s, retryOn: "5xx,connect-failure" }
      rewrite: { uri: /v2, authority: reviews.internal }
      mirror: { host: ratings }
      mirrorPercentage: { value: 50 }
      corsPolicy:
        allowOrigins: [{ exact: "https://app.example.com" }, { regex: "https://.*[.]example[.]org" }]
        allowMethods: [GET, POST]
        allowHeaders: [x-custom]
        exposeHeaders: [x-upstream]
        maxAge: 24h
        allowCredentials: true
        unmatchedPreflights: IGNORE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-policy, namespace: default }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: { simple: LEAST_REQUEST }
    connectionPool: { tcp: { maxConnections: 10, connectTimeout: 2s }, http: { http1MaxPendingRequests: 5, http2MaxRequests: 20, maxRetries: 2, maxRequestsPerConnection: 10 } }
    outlierDetection: { consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
    - { name: v3, labels: { version: v3 }, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-sticky, namespace: default }
spec:
  host: api.example.com
  trafficPolicy:
    loadBalancer: { consistentHash: { httpCookie: { name: user, ttl: 0s, path: / }, ringHash: { minimumRingSize: 256 } } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/default/sa/bookinfo-reviews"], ipBlocks: ["127.10.0.0/16"], notIpBlocks: ["127.10.9.9"] } }]
      to: [{ operation: { methods: [GET], paths: ["/ratings/*"] } }]
      when: [{ key: "request.headers[x-tenant]", values: ["a"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: istio-system }
spec:
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  jwtRules:
    - issuer: https://issuer.example
      jwksUri: https://issuer.example/jwks.json
      outputClaimToHeaders: [{ header: x-sub, claim: sub }]
      forwardOriginalToken: true
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ratings, namespace: default }
spec:
  podSelector: { matchLabels: { app: ratings } }
  ingress: [{ from: [{ podSelector: { matchLabels: { app: reviews } } }, { ipBlock: { cidr: 10.0.0.0/8, except: [10.1.0.0/16] } }] }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: elsewhere, namespace: default }
spec:
  podSelector: { matchLabels: { app: no-such-app } }
  ingress: [{ from: [{ ipBlock: { cidr: 192.168.0.0/16 } }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: default }
spec:
  hosts: [api.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.90 }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  selector: { app: echo }
  ports: [{ name: grpc-echo, port: 7070 }, { name: http, port: 7080 }, { name: web, port: 7090, appProtocol: http }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo-h2, namespace: default }
spec:
  host: echo
  trafficPolicy:
    portLevelSettings:
      - { port: { number: 7080 }, connectionPool: { http: { h2UpgradePolicy: UPGRADE } } }
`;

function instance(
  id: string,
  address: string,
  labels: Record<string, string>,
  sa: string,
): InstanceView {
  return {
    id,
    address,
    namespace: 'default',
    labels,
    serviceAccount: sa,
    workload: id,
    portNames: { http: 9080 },
    healthy: true,
  };
}

test('every compiled resource encodes with the Envoy protos and is accepted by the proxy', () => {
  const bookinfo = join(REPO_ROOT, 'examples', 'bookinfo');
  const manifests = [
    ...readManifests([bookinfo]).filter((m) => !m.file.includes('/samples/')),
    ...parseManifests(EXTRA, 'extra.yaml'),
  ];
  const validated = validateManifests(manifests);
  assert.ok(validated.ok, JSON.stringify(validated.ok ? [] : validated.problems));
  const snapshot = createSnapshot(1, validated.objects);
  const registry = buildRegistry(snapshot, [
    instance('reviews-v1-0', '127.10.4.1', { app: 'reviews', version: 'v1' }, 'bookinfo-reviews'),
    instance('reviews-v3-0', '127.10.6.1', { app: 'reviews', version: 'v3' }, 'bookinfo-reviews'),
    instance('ratings-v1-0', '127.10.3.1', { app: 'ratings', version: 'v1' }, 'bookinfo-ratings'),
  ]);
  const inputs = {
    snapshot,
    registry,
    trustDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    mesh: { outboundTrafficPolicy: 'ALLOW_ANY' as const },
    trustBundlePem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
    credentials: new Map([
      [
        'kubernetes://bookinfo-credential',
        {
          '@type': TYPE_URLS.secret,
          name: 'kubernetes://bookinfo-credential',
          tls_certificate: {
            certificate_chain: { inline_string: 'c' },
            private_key: { inline_string: 'k' },
          },
        },
      ],
    ]),
  };
  const ratings = registry.workloads.find((w) => w.name === 'ratings-v1');
  assert.ok(ratings);
  const sidecar: ProxyNode = {
    id: 'ratings-v1-0',
    type: 'sidecar',
    ip: '127.10.3.1',
    appAddress: '127.11.3.1',
    namespace: 'default',
    serviceAccount: 'bookinfo-ratings',
    labels: ratings.labels,
    workload: ratings,
  };
  const gateway: ProxyNode = {
    id: 'gw',
    type: 'ingress',
    ip: '127.12.0.1',
    appAddress: '127.0.0.1',
    namespace: 'istio-system',
    serviceAccount: 'istio-ingressgateway-service-account',
    labels: GATEWAY_LABELS.ingress,
    workload: undefined,
  };
  const codec = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(codec);
  const seen = new Set<string>();
  for (const proxy of [sidecar, gateway]) {
    const resources: ProxyResources = compileProxy(inputs, proxy);
    for (const kind of Object.keys(resources) as ResourceKind[]) {
      for (const [name, resource] of resources[kind]) {
        const bytes = codec.responseSerialize({
          version_info: '1',
          type_url: TYPE_URLS[kind],
          nonce: '1',
          resources: [resource],
        });
        const decoded = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', bytes) as {
          resources: Record<string, unknown>[];
        };
        // The proxy's codec (src/xds/wire) reads exactly what protobufjs reads.
        assert.deepStrictEqual(decoded, codec.responseDeserialize(bytes), `${kind} ${name}`);
        const back = decoded.resources[0];
        assert.ok(back, `${kind} ${name} lost in encoding`);
        const problems = validateResource(kind, back);
        assert.deepEqual(problems, [], `${proxy.id}: ${kind} ${name}`);
        seen.add(`${kind}:${name}`);
      }
    }
  }
  // The config really exercised the translations.
  for (const name of [
    'listener:inbound|9080',
    'listener:0.0.0.0_443',
    'route:9080',
    'cluster:outbound|9080|v3|reviews.default.svc.cluster.local',
    'secret:kubernetes://bookinfo-credential',
    'cluster:outbound|80||api.example.com',
  ])
    assert.ok(seen.has(name), name);
  // gRPC/HTTP2 ports, and HTTP ports upgraded by a DestinationRule, get HTTP/2 upstream.
  const clusters = compileProxy(inputs, sidecar).cluster;
  const h2 = (port: number): boolean =>
    JSON.stringify(
      clusters.get(`outbound|${String(port)}||echo.default.svc.cluster.local`),
    ).includes('"explicit_http_config":{"http2_protocol_options":{}}');
  assert.deepEqual([h2(7070), h2(7080), h2(7090)], [true, true, false]);
  // corsPolicy: the CORS filter runs on the port's HCM (ahead of fault) and the route carries its policy.
  const outbound = compileProxy(inputs, sidecar).listener.get('outbound');
  const chain9080 = JSON.stringify(
    (outbound?.['filter_chains'] as { name: string }[]).find((c) => c.name === 'outbound|9080'),
  );
  assert.match(chain9080, /envoy\.filters\.http\.cors.*envoy\.filters\.http\.fault.*router/);
  const corsText = JSON.stringify(compileProxy(inputs, sidecar).route.get('9080'));
  assert.match(corsText, /"allow_methods":"GET,POST","allow_headers":"x-custom"/);
  assert.match(corsText, /"max_age":"86400","allow_credentials":\{"value":true\}/);
  assert.match(corsText, /"forward_not_matching_preflights":\{"value":false\}/);
  assert.match(corsText, /"safe_regex":\{"regex":"https:\/\/\.\*\[\.\]example\[\.\]org"\}/);
  // Istio: withoutHeaders `regex: "*"` is "header present" (not a regex), inverted.
  assert.match(corsText, /\{"name":"x-debug","present_match":true,"invert_match":true\}/);
  // consistentHash on a DestinationRule without a VirtualService: the default route hashes too.
  const stickyCluster = compileProxy(inputs, sidecar).cluster.get('outbound|80||api.example.com');
  assert.ok(stickyCluster !== undefined);
  assert.equal(stickyCluster['lb_policy'], 'RING_HASH');
  assert.deepEqual(stickyCluster['ring_hash_lb_config'], {
    minimum_ring_size: { value: '256' },
  });
  const stickyRoutes = JSON.stringify(compileProxy(inputs, sidecar).route.get('80'));
  assert.match(stickyRoutes, /"hash_policy":\[\{"cookie":\{"name":"user","path":"\/","ttl"/);
  const inbound = compileProxy(inputs, sidecar).listener.get('inbound|9080');
  const text = JSON.stringify(inbound);
  assert.match(text, /envoy\.filters\.network\.rbac/, 'NetworkPolicy became a network RBAC filter');
  assert.match(text, /envoy\.filters\.http\.jwt_authn/);
  assert.match(text, /"address_prefix":"127\.10\.4\.1"/, 'reviews-v1 may connect to ratings');
  assert.match(
    text,
    /"not_id":\{"or_ids":\{"ids":\[\{"direct_remote_ip":\{"address_prefix":"10\.1\.0\.0"/,
  );
  assert.match(text, /"address_prefix":"10\.0\.0\.0"/, "ratings' ipBlock is allowed");
  // Another policy's ipBlock does not open ratings: only what ratings' policies allow is in its filter.
  assert.doesNotMatch(text, /192\.168\.0\.0/, "another policy's ipBlock admitted to ratings");

  // A proxyless gRPC client gets api listeners and only what gRPC accepts.
  const proxyless = compileProxy(inputs, {
    id: 'sidecar~127.0.0.9~client-0.default~default.svc.cluster.local',
    type: 'proxyless',
    ip: '127.0.0.9',
    appAddress: '',
    namespace: 'default',
    serviceAccount: 'default',
    labels: {},
    workload: undefined,
  });
  assert.equal(proxyless.secret.size, 0);
  const host = 'reviews.default.svc.cluster.local:9080';
  const listener = proxyless.listener.get(host);
  assert.ok(listener !== undefined && 'api_listener' in listener, 'api listener by target name');
  const routeText = JSON.stringify(proxyless.route.get(host));
  assert.doesNotMatch(routeText, /redirect|direct_response|request_mirror_policies|prefix_rewrite/);
  assert.match(routeText, /"max_stream_duration":\{"max_stream_duration":\{"seconds":"3"/);
  assert.match(routeText, /"grpc_status"|"http_status":500/);
  for (const cluster of proxyless.cluster.values()) {
    assert.ok(!('transport_socket' in cluster), `${String(cluster['name'])} has no TLS`);
    assert.ok(['ROUND_ROBIN', 'RING_HASH'].includes(String(cluster['lb_policy'])));
  }
  for (const [kind, map] of Object.entries(proxyless))
    for (const resource of (map as Map<string, object>).values())
      codec.responseSerialize({ type_url: TYPE_URLS[kind as ResourceKind], resources: [resource] });
});

test('the proxy takes a gRPC-status fault abort and NACKs abort kinds it does not implement', () => {
  const route = (extra: object): Record<string, unknown> => ({
    '@type': TYPE_URLS.route,
    name: '80',
    virtual_hosts: [
      {
        name: 'echo',
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            route: { cluster: 'c' },
            typed_per_filter_config: {
              'envoy.filters.http.fault': {
                abort: { grpc_status: 14, percentage: { numerator: 100 }, ...extra },
              },
            },
          },
        ],
      },
    ],
  });
  assert.deepEqual(validateResource('route', route({})), []);
  assert.match(
    validateResource('route', route({ header_abort: {} })).join('\n'),
    /abort: unsupported field header_abort/,
  );
});
