// Istio security API parity (issue 17): the cases come from Istio's own tests
// and docs, cited per test, and run through the same translation to Envoy RBAC
// and the same evaluator the proxy and `palisade check authz` use.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseManifests } from '../api/index.js';
import { validateSecurityResource } from '../api/security/index.js';
import {
  createWorkloadAuthorizer,
  expandTrustDomainAliases,
  loadSecurityPolicies,
  serviceAccountRegex,
  trustedClientAddress,
  type AuthorizerOptions,
  type InboundRequest,
} from './index.js';

const wl = { namespace: 'foo', labels: { app: 'httpbin' } };
const ap = (name: string, spec: string, ns = 'foo'): string =>
  `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n`;
const authorizer = (yaml: string, options: AuthorizerOptions = {}) =>
  createWorkloadAuthorizer(loadSecurityPolicies(parseManifests(yaml, 'test.yaml')), wl, options);
const http = (over: Partial<InboundRequest> = {}): InboundRequest => ({
  principal: 'spiffe://cluster.local/ns/bar/sa/sleep',
  sourceIp: '10.0.0.1',
  destinationPort: 8000,
  protocol: 'http',
  method: 'GET',
  host: 'httpbin.foo',
  path: '/ip',
  headers: {},
  ...over,
});
const issues = (spec: string): string[] => {
  const r = validateSecurityResource(parseManifests(ap('p', spec), 'x.yaml')[0]?.object);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
};

// istio/istio pilot/pkg/security/authz/model/generator_test.go TestServiceAccount and
// TestServiceAccountRegex: Envoy matches the whole principal against the regex.
test('serviceAccounts: Istio serviceAccountRegex and its TestServiceAccount table', () => {
  assert.equal(
    serviceAccountRegex('', 'my-ns/my-sa'),
    'spiffe://.+/ns/my\\-ns/(.+/|)sa/my\\-sa(/.+)?'.replace(/\\-/g, '-'),
  );
  const re = new RegExp(`^(?:${serviceAccountRegex('', 'my-ns/my-sa')})$`);
  const cases: [string, boolean][] = [
    ['spiffe://cluster.local/ns/my-ns/sa/my-sa', true],
    ['spiffe://cluster.local/ns/my-ns/sa/my-sa/k/v', true],
    ['spiffe://cluster.local/k/v/ns/my-ns/sa/my-sa', true],
    ['spiffe://cluster.local/ns/my-ns/k/v/sa/my-sa', true],
    ['spiffe://cluster.local/k1/v1/ns/my-ns/k2/v2/sa/my-sa/k3/v3', true],
    ['spiffe://cluster.local/ns/my-ns/sa/my-sa-suffix', false],
    ['spiffe://cluster.local/ns/my-ns-suffix/sa/my-sa', false],
    ['cluster.local/ns/my-ns/sa/my-sa', false],
    ['spiffe://ns/my-ns/sa/my-sa', false],
    ['spiffe://cluster.local/ns/my-ns', false],
    ['spiffe://cluster.local/sa/my-sa', false],
  ];
  for (const [id, want] of cases) assert.equal(re.test(id), want, id);
  assert.equal(serviceAccountRegex('my-ns', 'my-sa'), serviceAccountRegex('', 'my-ns/my-sa'));
});

test('serviceAccounts / notServiceAccounts: a bare name is the policy namespace', async () => {
  const a = authorizer(
    ap('p', '  rules: [{from: [{source: {serviceAccounts: ["sleep", "bar/sleep"]}}]}]'),
  );
  assert.equal((await a.decide(http())).status, 200);
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://cluster.local/ns/foo/sa/sleep' }))).status,
    200,
  );
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://cluster.local/ns/foo/sa/sleep-suffix' }))).status,
    403,
  );
  assert.equal((await a.decide(http({ principal: null }))).status, 403);
  const not = authorizer(
    ap('p', '  action: DENY\n  rules: [{from: [{source: {notServiceAccounts: ["bar/sleep"]}}]}]'),
  );
  assert.equal((await not.decide(http())).status, 200);
  assert.equal(
    (await not.decide(http({ principal: 'spiffe://cluster.local/ns/bar/sa/other' }))).status,
    403,
  );
  assert.deepEqual(issues('  rules: [{from: [{source: {serviceAccounts: ["a/b/c", "x*"]}}]}]'), [
    'spec.rules[0].from[0].source.serviceAccounts[0]: must be <service-account> or <namespace>/<service-account> (Kubernetes names, no wildcards), got "a/b/c"',
    'spec.rules[0].from[0].source.serviceAccounts[1]: must be <service-account> or <namespace>/<service-account> (Kubernetes names, no wildcards), got "x*"',
  ]);
});

test('trustDomains / notTrustDomains match the trust domain of the peer SPIFFE ID', async () => {
  const a = authorizer(
    ap(
      'p',
      '  rules: [{from: [{source: {trustDomains: ["td1", "*.example.com"], notTrustDomains: ["bad.example.com"]}}]}]',
    ),
  );
  assert.equal((await a.decide(http({ principal: 'spiffe://td1/ns/a/sa/b' }))).status, 200);
  assert.equal((await a.decide(http({ principal: 'spiffe://td10/ns/a/sa/b' }))).status, 403);
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://x.example.com/ns/a/sa/b' }))).status,
    200,
  );
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://bad.example.com/ns/a/sa/b' }))).status,
    403,
  );
  assert.equal((await a.decide(http({ principal: null }))).status, 403);
});

// generator_test.go envoyFilterGenerator-string / -list: `experimental.a.b.c[d]` is a metadata
// permission on filter a.b.c key d; a `[v]` value matches one element of a list.
test('experimental.envoy.filters.* condition keys match the filter dynamic metadata', async () => {
  assert.deepEqual(
    issues(
      '  rules: [{when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}]}]',
    ),
    [],
  );
  const a = authorizer(
    ap(
      'p',
      '  action: DENY\n  rules: [{when: [{key: "experimental.envoy.filters.http.custom[verdict]", values: ["bad*"]}]}]',
    ),
  );
  // No such metadata: the condition does not match, the DENY does not apply.
  assert.equal((await a.decide(http())).status, 200);
  assert.deepEqual(a.rbacFilters('http').deny?.rules?.policies['ns[foo]-policy[p]-rule[0]'], {
    principals: [{ any: true }],
    permissions: [
      {
        and_rules: {
          rules: [
            { any: true },
            {
              metadata: {
                filter: 'envoy.filters.http.custom',
                path: [{ key: 'verdict' }],
                value: { string_match: { prefix: 'bad' } },
              },
            },
          ],
        },
      },
    ],
  });
  assert.deepEqual(issues('  rules: [{when: [{key: "experimental.other[x]", values: ["a"]}]}]'), [
    'spec.rules[0].when[0].key: unknown or unsupported condition key "experimental.other[x]"',
  ]);
});

// istio.io AuthorizationPolicy reference (Operation.paths) and Istio's path-template
// validation (pkg/config/security CheckValidPathTemplate); Envoy uri_template `**` is
// zero or more segments (source/extensions/path/uri_template/uri_template_internal.cc).
test('paths: not starting with "/" is valid and never matches; {*} and {**} as Envoy templates', async () => {
  assert.deepEqual(issues('  rules: [{to: [{operation: {paths: ["foo", "api/v1*"]}}]}]'), []);
  const never = authorizer(ap('p', '  rules: [{to: [{operation: {paths: ["ip", "foo*"]}}]}]'));
  assert.equal((await never.decide(http({ path: '/ip' }))).status, 403);
  assert.equal((await never.decide(http({ path: '/foo' }))).status, 403);

  const t = authorizer(
    ap(
      'p',
      '  rules: [{to: [{operation: {paths: ["/allow/{**}", "/store/{**}", "/one/{*}/x"]}}]}]',
    ),
  );
  const status = async (path: string) => (await t.decide(http({ path }))).status;
  assert.equal(await status('/allow/admin/'), 200);
  assert.equal(await status('/allow/'), 200);
  assert.equal(await status('/allow/a/b/c'), 200);
  assert.equal(await status('/allow'), 403);
  assert.equal(await status('/store/cart'), 200);
  assert.equal(await status('/one/a/x'), 200);
  assert.equal(await status('/one//x'), 403);
  assert.equal(await status('/one/a/b/x'), 403);

  // A literal after {**} is fine (Envoy: `**` is the last operator, literals may follow).
  assert.deepEqual(
    issues('  rules: [{to: [{operation: {paths: ["/a/{**}/b", "/a/{x}", "/a*/{*}"]}}]}]'),
    [
      `spec.rules[0].to[0].operation.paths[1]: invalid or unsupported path segment "{x}": '{' or '}' beyond a supported path template ({*} or a last {**})`,
      `spec.rules[0].to[0].operation.paths[2]: invalid or unsupported path segment "a*": '*' beyond a supported path template`,
    ],
  );
});

test('paths: {**} after {**} or {*} after {**} is invalid', () => {
  assert.equal(issues('  rules: [{to: [{operation: {paths: ["/a/{**}/{*}"]}}]}]').length, 1);
  assert.deepEqual(issues('  rules: [{to: [{operation: {paths: ["/a/{*}/{**}"]}}]}]'), []);
});

// generator_test.go TestRequestPrincipal: issuer and subject are matched separately on the
// token's iss and sub claims.
test('requestPrincipals as Istio requestPrincipalGenerator: *, iss, iss/*, */sub, prefixes', async () => {
  const jwtFacts = (iss: string, sub: string | undefined) => ({
    'request.auth.claims': { iss, ...(sub === undefined ? {} : { sub }) },
  });
  const cases: [string, string, string | undefined, boolean][] = [
    ['*', 'iss', 'sub', true],
    ['*', 'iss', '', false],
    ['*', 'iss', undefined, false],
    ['foo*', 'foo.com', 'x', true],
    ['foo/*', 'foo', 'bar', true],
    ['foo/*', 'foo', '', false],
    ['foo/bar*', 'foo', 'barista', true],
    ['*foo', 'x', 'afoo', true],
    ['*/foo', 'any', 'foo', true],
    ['*bar/foo', 'xbar', 'foo', true],
    ['foo/bar', 'foo', 'bar', true],
    ['foo/bar', 'foo', 'baz', false],
    ['https://issuer.example/sub1', 'https://issuer.example', 'sub1', true],
    // No "/": issuer `iss`, subject the empty string (iss=value, sub="" in upstream).
    ['iss', 'iss', '', true],
    ['iss', 'iss', 'someone', false],
  ];
  const { compilePrincipal } = await import('./rbac-evaluator.js');
  for (const [value, iss, sub, want] of cases) {
    const a = authorizer(
      ap('p', `  rules: [{from: [{source: {requestPrincipals: ["${value}"]}}]}]`),
    );
    const principal =
      a.rbacFilters('http').allow?.rules?.policies['ns[foo]-policy[p]-rule[0]']?.principals[0];
    assert.ok(principal !== undefined);
    const got = compilePrincipal(principal)({
      principal: null,
      metadata: { istio_authn: jwtFacts(iss, sub) },
    });
    assert.equal(got, want, `${value} vs ${iss}/${String(sub)}`);
  }
});

// matcher.HeaderMatcher in istio/istio pilot/pkg/security/authz/matcher: methods take
// exact, prefix, suffix and presence like every other string field.
test('methods: exact, prefix, suffix and *', async () => {
  const a = authorizer(
    ap('p', '  rules: [{to: [{operation: {methods: ["GET", "PO*", "*ETE"]}}]}]'),
  );
  const status = async (method: string) => (await a.decide(http({ method }))).status;
  assert.equal(await status('GET'), 200);
  assert.equal(await status('POST'), 200);
  assert.equal(await status('DELETE'), 200);
  assert.equal(await status('PUT'), 403);
  const any = authorizer(ap('p', '  rules: [{to: [{operation: {methods: ["*"]}}]}]'));
  assert.equal((await any.decide(http({ method: 'PATCH' }))).status, 200);
});

// istio/istio pilot/pkg/security/trustdomain/bundle_test.go (ReplaceTrustDomainAliases) and
// istio.io "Migrate trust domain without changing the policy".
test('trust domain aliases: principals match under the trust domain and every alias', async () => {
  // Every case of TestReplaceTrustDomainAliases: [trust domain, aliases, principals, expected].
  const cases: [string, string[], string[], string[]][] = [
    ['cluster.local', [], ['cluster.local/ns/foo/sa/bar'], ['cluster.local/ns/foo/sa/bar']],
    ['cluster.local', [], ['*'], ['*']],
    ['cluster.local', [], ['*/ns/foo/sa/bar'], ['*/ns/foo/sa/bar']],
    ['td2', ['td1'], ['td1/ns/foo/sa/bar'], ['td2/ns/foo/sa/bar', 'td1/ns/foo/sa/bar']],
    [
      'td1',
      ['cluster.local'],
      ['cluster.local/ns/foo/sa/bar', 'cluster.local/ns/yyy/sa/zzz'],
      [
        'td1/ns/foo/sa/bar',
        'cluster.local/ns/foo/sa/bar',
        'td1/ns/yyy/sa/zzz',
        'cluster.local/ns/yyy/sa/zzz',
      ],
    ],
    [
      'td1',
      ['cluster.local'],
      ['*/ns/foo/sa/bar', '*sa/zzz', '*'],
      ['*/ns/foo/sa/bar', '*sa/zzz', '*'],
    ],
    [
      'td2',
      ['td1', 'cluster.local'],
      ['cluster.local/ns/foo/sa/bar', 'td1/ns/yyy/sa/zzz'],
      [
        'td2/ns/foo/sa/bar',
        'td1/ns/foo/sa/bar',
        'cluster.local/ns/foo/sa/bar',
        'td2/ns/yyy/sa/zzz',
        'td1/ns/yyy/sa/zzz',
        'cluster.local/ns/yyy/sa/zzz',
      ],
    ],
    [
      'td2',
      ['foo-td1', 'cluster.local'],
      ['*-td1/ns/foo/sa/bar'],
      ['td2/ns/foo/sa/bar', '*-td1/ns/foo/sa/bar', 'cluster.local/ns/foo/sa/bar'],
    ],
    ['td1', ['td2'], ['some-td/ns/foo/sa/bar'], ['some-td/ns/foo/sa/bar']],
    [
      'td1',
      ['td2', 'some-td'],
      ['some-td/ns/foo/sa/bar'],
      ['td1/ns/foo/sa/bar', 'td2/ns/foo/sa/bar', 'some-td/ns/foo/sa/bar'],
    ],
    [
      'new-td',
      ['td2', 'td3'],
      ['td1/ns/some-ns/sa/some-sa', 'td2/ns/foo/sa/bar'],
      [
        'td1/ns/some-ns/sa/some-sa',
        'new-td/ns/foo/sa/bar',
        'td2/ns/foo/sa/bar',
        'td3/ns/foo/sa/bar',
      ],
    ],
  ];
  for (const [td, aliases, principals, want] of cases)
    assert.deepEqual(expandTrustDomainAliases(principals, [td, ...aliases]), want, principals[0]);

  const policy = ap(
    'p',
    '  rules: [{from: [{source: {principals: ["old-td/ns/bar/sa/sleep"]}}], when: [{key: source.principal, values: ["old-td/ns/bar/sa/sleep"]}]}]',
  );
  const migrated = authorizer(policy, { trustDomain: 'new-td', trustDomainAliases: ['old-td'] });
  assert.equal(
    (await migrated.decide(http({ principal: 'spiffe://new-td/ns/bar/sa/sleep' }))).status,
    200,
  );
  assert.equal(
    (await migrated.decide(http({ principal: 'spiffe://old-td/ns/bar/sa/sleep' }))).status,
    200,
  );
  assert.equal(
    (await migrated.decide(http({ principal: 'spiffe://other/ns/bar/sa/sleep' }))).status,
    403,
  );
  const plain = authorizer(policy, { trustDomain: 'new-td' });
  assert.equal(
    (await plain.decide(http({ principal: 'spiffe://new-td/ns/bar/sa/sleep' }))).status,
    403,
  );
});

// Envoy docs, config/http/http_conn_man/headers "x-forwarded-for" examples.
test('trusted client address from X-Forwarded-For as Envoy xff_num_trusted_hops defines', () => {
  const xff = '192.0.2.10, 203.0.113.1, 198.51.100.7';
  assert.equal(trustedClientAddress(xff, '10.0.0.1'), '198.51.100.7');
  assert.equal(trustedClientAddress(xff, '10.0.0.1', { numTrustedHops: 1 }), '203.0.113.1');
  assert.equal(trustedClientAddress(xff, '10.0.0.1', { numTrustedHops: 3 }), '10.0.0.1');
  assert.equal(trustedClientAddress(xff, '10.0.0.1', { useRemoteAddress: true }), '10.0.0.1');
  assert.equal(
    trustedClientAddress(xff, '10.0.0.1', { useRemoteAddress: true, numTrustedHops: 1 }),
    '198.51.100.7',
  );
  assert.equal(
    trustedClientAddress(xff, '10.0.0.1', { useRemoteAddress: true, numTrustedHops: 2 }),
    '203.0.113.1',
  );
  assert.equal(trustedClientAddress(undefined, '10.0.0.1'), '10.0.0.1');
  assert.equal(trustedClientAddress('not-an-ip', '10.0.0.1'), '10.0.0.1');
});

test('remoteIpBlocks use the trusted client address; ipBlocks the peer', async () => {
  const a = authorizer(
    ap('p', '  rules: [{from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]}]'),
    { xff: { useRemoteAddress: true, numTrustedHops: 2 } },
  );
  const xff = { 'x-forwarded-for': '203.0.113.1, 198.51.100.7' };
  assert.equal((await a.decide(http({ headers: xff }))).status, 200);
  assert.equal(
    (await a.decide(http({ headers: { 'x-forwarded-for': '198.51.100.7' } }))).status,
    403,
  );
  assert.equal((await a.decide(http({ remoteIp: '203.0.113.9' }))).status, 200);
  assert.equal((await a.decide(http())).status, 403);
});

// Hostile input: any X-Forwarded-For value yields the peer or one of its own IP entries.
test('property: the trusted client address is the peer or an IP from X-Forwarded-For', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 12 })), { maxLength: 6 }),
      fc.nat({ max: 4 }),
      fc.boolean(),
      (entries, hops, useRemoteAddress) => {
        const xff = entries.join(',');
        const got = trustedClientAddress(xff, '10.9.9.9', {
          numTrustedHops: hops,
          useRemoteAddress,
        });
        return (
          got === '10.9.9.9' ||
          (isIP(got ?? '') !== 0 &&
            xff
              .split(',')
              .map((s) => s.trim())
              .includes(got ?? ''))
        );
      },
    ),
  );
});

test('condition keys naming prototype properties find nothing', async () => {
  const a = authorizer(
    ap(
      'p',
      '  rules: [{when: [{key: "experimental.envoy.filters.http.x[constructor]", notValues: ["nothing"]}, {key: "request.auth.claims[__proto__]", notValues: ["x"]}]}]',
    ),
  );
  // notValues over a missing value: the negated matcher holds, so ALLOW matches only when
  // lookups find nothing (as Envoy's metadata matcher on an absent key).
  assert.equal((await a.decide(http())).status, 200);
});
