// Istio's own Bookinfo samples validate unchanged; mistakes are named with their field paths.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssue, parseManifests } from '../index.js';
import { validateNetworkingResource } from './index.js';

const SAMPLES = `apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 8080
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - fault:
      abort:
        percentage:
          value: 100.0
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.example
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
`;

test("Istio's Bookinfo samples validate unchanged", () => {
  for (const m of parseManifests(SAMPLES, 'samples.yaml')) {
    const r = validateNetworkingResource(m.object);
    assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  }
});

test('mistakes are reported with field paths', () => {
  const bad = parseManifests(
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {regex: "(("}, headers: {End-User: {exact: x}}}]
    redirect: {uri: /x}
    route: [{destination: {host: reviews}}]
  - fault: {abort: {percentage: {value: 150}}}
    route: [{destination: {host: reviews}, wieght: 5}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: MUTUAL, credentialName: x}}, {port: {number: 8443, name: tls, protocol: HTTPS}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec: {host: reviews, subsets: [{name: v1}, {name: v1}]}
`,
    'bad.yaml',
  );
  const messages = bad.flatMap((m) => {
    const r = validateNetworkingResource(m.object);
    return r.ok ? [] : r.issues.map(formatIssue);
  });
  for (const expected of [
    'spec.http[1].fault.abort.percentage.value: must be <= 100',
    'spec.http[1].route[0].wieght: unknown field (not supported by this kind)',
    'spec.servers[1].tls: a HTTPS server needs tls settings',
    'spec.subsets[1].name: duplicate subset name "v1"',
  ]) {
    assert.ok(messages.includes(expected), `missing ${expected}\n${messages.join('\n')}`);
  }
  // Semantic checks of the first VirtualService (its schema is valid apart from rule 1).
  const vs = validateNetworkingResource({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'v' },
    spec: {
      hosts: ['reviews'],
      http: [
        {
          match: [{ uri: { regex: '((' }, headers: { 'End-User': { exact: 'x' } } }],
          redirect: { uri: '/x' },
          route: [{ destination: { host: 'reviews' } }],
        },
      ],
    },
  });
  assert.ok(!vs.ok);
  const vm = vs.issues.map(formatIssue);
  for (const expected of [
    'spec.http[0]: route, redirect, directResponse and delegate are mutually exclusive',
    'spec.http[0].match[0].uri.regex: invalid regular expression "((": not RE2 syntax (error parsing regexp: missing closing ): `((`) (RE2 syntax, https://github.com/google/re2/wiki/Syntax)',
    'spec.http[0].match[0].headers.End-User: header names must be lower case',
  ]) {
    assert.ok(vm.includes(expected), `missing ${expected}\n${vm.join('\n')}`);
  }
});

test('fault.abort.grpcStatus takes gRPC status names, as Istio documents', () => {
  const vs = (status: string): unknown => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'g' },
    spec: {
      hosts: ['echo'],
      http: [
        {
          fault: { abort: { grpcStatus: status, percentage: { value: 100 } } },
          route: [{ destination: { host: 'echo' } }],
        },
      ],
    },
  });
  assert.ok(validateNetworkingResource(vs('UNAVAILABLE')).ok);
  const bad = validateNetworkingResource(vs('14'));
  assert.ok(!bad.ok);
  assert.match(
    bad.issues.map(formatIssue).join('\n'),
    /spec\.http\[0\]\.fault\.abort\.grpcStatus: unknown gRPC status "14"/,
  ); // Names of Object's own properties are not status names either.
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    const inherited = validateNetworkingResource(vs(name));
    assert.ok(!inherited.ok, name);
    assert.match(inherited.issues.map(formatIssue).join('\n'), /unknown gRPC status/, name);
  }
});

// Istio validates every StringMatch regex (uri, scheme, method, authority,
// headers, withoutHeaders, queryParams, corsPolicy.allowOrigins) and
// uriRegexRewrite as RE2 (validateStringMatchRegexp: "Istio uses RE2 style
// regex-based match"); what RE2 rejects never reaches a proxy.
test('regexes must be RE2: backreferences, lookaround and possessive quantifiers are rejected', () => {
  const vs = (http: object): unknown => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 're' },
    spec: {
      hosts: ['reviews'],
      http: [{ ...http, route: [{ destination: { host: 'reviews' } }] }],
    },
  });
  const issues = (http: object): string[] => {
    const r = validateNetworkingResource(vs(http));
    return r.ok ? [] : r.issues.map(formatIssue);
  };
  const found = issues({
    match: [
      {
        uri: { regex: '/(?=admin).*' },
        scheme: { regex: '(?!http)' },
        method: { regex: '(?<=G)ET' },
        authority: { regex: '(?<!x)y' },
        headers: { 'x-user': { regex: '(a)\\1' } },
        withoutHeaders: { 'x-a': { regex: 'a++' }, 'x-present': { regex: '*' } },
        queryParams: { q: { regex: '(?>a)' } },
      },
      { uri: { regex: '' } },
    ],
    corsPolicy: { allowOrigins: [{ regex: 'https://(a+)+\\.example' }, { regex: '(x)\\1' }] },
    rewrite: { uriRegexRewrite: { match: '^/(a)$', rewrite: '/\\2' } },
  });
  const expect: [string, RegExp][] = [
    ['spec.http[0].match[0].uri.regex', /lookahead "\(\?=" is not supported/],
    ['spec.http[0].match[0].scheme.regex', /negative lookahead/],
    ['spec.http[0].match[0].method.regex', /lookbehind "\(\?<=" is not supported/],
    ['spec.http[0].match[0].authority.regex', /negative lookbehind/],
    ['spec.http[0].match[0].headers.x-user.regex', /backreference "\\1" is not supported/],
    ['spec.http[0].match[0].withoutHeaders.x-a.regex', /possessive quantifier "\+\+"/],
    ['spec.http[0].match[0].queryParams.q.regex', /atomic group/],
    ['spec.http[0].match[1].uri.regex', /must not be empty/],
    ['spec.http[0].corsPolicy.allowOrigins[1].regex', /backreference/],
    ['spec.http[0].rewrite.uriRegexRewrite.rewrite', /uses group \\2 but the regex has 1/],
  ];
  for (const [path, reason] of expect)
    assert.ok(
      found.some((m) => m.startsWith(`${path}: `) && reason.test(m)),
      `missing ${path} ${String(reason)}\n${found.join('\n')}`,
    );
  assert.equal(found.length, expect.length, found.join('\n'));
  // `regex: "*"` in withoutHeaders means "present" (Istio), and a catastrophic-for-V8
  // pattern such as https://(a+)+\.example is valid RE2.
  assert.ok(!found.some((m) => m.includes('x-present') || m.includes('allowOrigins[0]')));
  // Over the bounds: Istio's 1024-byte length, and the RE2 program size.
  const long = issues({ match: [{ uri: { regex: `/${'a'.repeat(1024)}` } }] });
  assert.match(long.join('\n'), /uri\.regex: .*1025 bytes long; at most 1024/);
  const big = issues({ match: [{ uri: { regex: '(\\w+\\s?){1,1000}' } }] });
  assert.match(big.join('\n'), /uri\.regex: .*RE2 program size \d+ exceeds the maximum 1024/);
  // RE2 syntax V8 does not know is accepted: inline flags, \Q…\E.
  assert.deepEqual(issues({ match: [{ uri: { regex: '(?i)/API/\\Qv1.0\\E/.*' } }] }), []);
});
