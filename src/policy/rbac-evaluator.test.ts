// The principal index must never change a decision: compare against a plain
// linear scan over random policies and requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  compilePermission,
  compilePrincipal,
  compileRbacFilter,
  type Principal,
  type RbacPolicy,
  type RequestFacts,
} from './index.js';

const ids = ['spiffe://td/ns/a/sa/x', 'spiffe://td/ns/a/sa/y', 'spiffe://td/ns/b/sa/x'];
const leaf: fc.Arbitrary<Principal> = fc.oneof(
  fc
    .constantFrom(...ids)
    .map((exact): Principal => ({ authenticated: { principal_name: { exact } } })),
  fc.constant<Principal>({ authenticated: { principal_name: { prefix: 'spiffe://td/ns/a/' } } }),
  fc.constant<Principal>({ any: true }),
  fc.constant<Principal>({ header: { name: 'x-t', string_match: { exact: '1' } } }),
);
const principal: fc.Arbitrary<Principal> = fc.letrec<{ p: Principal }>((tie) => ({
  p: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc
      .array(tie('p'), { minLength: 1, maxLength: 3 })
      .map((xs): Principal => ({ and_ids: { ids: xs } })),
    fc
      .array(tie('p'), { minLength: 1, maxLength: 3 })
      .map((xs): Principal => ({ or_ids: { ids: xs } })),
    tie('p').map((x): Principal => ({ not_id: x })),
  ),
})).p;
const policy: fc.Arbitrary<RbacPolicy> = fc.record({
  principals: fc.array(principal, { minLength: 1, maxLength: 3 }),
  permissions: fc.constantFrom([{ any: true as const }], [{ destination_port: 80 }]),
});
const facts: fc.Arbitrary<RequestFacts> = fc.record({
  principal: fc.constantFrom(null, ...ids, 'spiffe://td/ns/c/sa/z'),
  destinationPort: fc.constantFrom(80, 81),
  headers: fc.constantFrom<Record<string, string>>({}, { 'x-t': '1' }),
});

test('property: indexed RBAC matching equals a linear scan in name order', () => {
  fc.assert(
    fc.property(
      fc.array(policy, { maxLength: 12 }),
      fc.array(facts, { minLength: 1, maxLength: 10 }),
      (ps, fs) => {
        const policies = Object.fromEntries(
          ps.map((p, i) => [`p${String(i).padStart(2, '0')}`, p]),
        );
        const indexed = compileRbacFilter({ rules: { action: 'ALLOW', policies } });
        const linear = Object.entries(policies).map(([name, p]) => ({
          name,
          perms: p.permissions.map(compilePermission),
          princ: p.principals.map(compilePrincipal),
        }));
        for (const f of fs) {
          const expected = linear.find(
            (c) => c.perms.some((x) => x(f)) && c.princ.some((x) => x(f)),
          )?.name;
          assert.equal(indexed.match(f), expected);
        }
      },
    ),
    { numRuns: 500 },
  );
});

// RBAC safe_regex string matchers are RE2 (Envoy's RBAC StringMatcher): a
// full match in linear time, so a pattern that backtracks exponentially in V8
// costs O(n) on a hostile header, and non-RE2 syntax is refused at compile.
test('RBAC safe_regex matchers are RE2 full matches in linear time', () => {
  const hostile = compilePrincipal({
    header: { name: 'x-user', string_match: { safe_regex: { regex: '(a+)+b' } } },
  });
  const facts = (v: string): RequestFacts => ({ principal: null, headers: { 'x-user': v } });
  assert.equal(hostile(facts(`${'a'.repeat(5000)}!`)), false);
  assert.equal(hostile(facts('aaab')), true);
  assert.equal(hostile(facts('aaabc')), false, 'the whole value must match');
  const ns = compilePrincipal({
    authenticated: { principal_name: { safe_regex: { regex: '.*/ns/[^/]+/.*' } } },
  });
  assert.equal(ns({ principal: 'spiffe://td/ns/a/sa/x' }), true);
  assert.equal(ns({ principal: 'spiffe://td/sa/x' }), false);
  assert.throws(
    () =>
      compilePrincipal({
        header: { name: 'x', string_match: { safe_regex: { regex: '(?=a)a' } } },
      }),
    /lookahead/,
  );
});

test('a plaintext peer never matches `authenticated`, whatever the matcher', () => {
  // Envoy RBAC: `authenticated` matches only a peer with a verified certificate; a matcher
  // that accepts the empty string (`.*`, prefix "") must not let a plaintext peer in.
  for (const principal_name of [
    { safe_regex: { regex: '.*' } },
    { prefix: '' },
    { suffix: '' },
    { contains: '' },
  ]) {
    const p = compilePrincipal({ authenticated: { principal_name } });
    assert.equal(p({ principal: null }), false, JSON.stringify(principal_name));
    assert.equal(p({ principal: 'spiffe://td/ns/a/sa/x' }), true, JSON.stringify(principal_name));
  }
});

test('an absent header never matches, even inverted (unless present_match)', () => {
  // Envoy source/common/http/header_utility.cc HeaderData::matchesHeaders: a missing header
  // matches only a `present_match: false` (or inverted `present_match: true`) matcher.
  const inverted = compilePrincipal({
    header: { name: 'x-user', string_match: { exact: 'admin' }, invert_match: true },
  });
  assert.equal(inverted({ principal: null, headers: {} }), false);
  assert.equal(inverted({ principal: null, headers: { 'x-user': 'bob' } }), true);
  assert.equal(inverted({ principal: null, headers: { 'x-user': 'admin' } }), false);
  const absent = compilePrincipal({
    header: { name: 'x-user', present_match: false },
  });
  assert.equal(absent({ principal: null, headers: {} }), true);
});

test('safe_regex matches the whole value (RE2 FullMatch), never a part of it', () => {
  // Envoy StringMatcher.safe_regex: "The input string must match the regular expression
  // specified here" — the whole string, so `/admin` does not match `/x/admin/y`.
  const perm = compilePermission({ url_path: { path: { safe_regex: { regex: '/admin' } } } });
  assert.equal(perm({ principal: null, path: '/admin' }), true);
  assert.equal(perm({ principal: null, path: '/admin/x' }), false);
  assert.equal(perm({ principal: null, path: '/x/admin' }), false);
  const alt = compilePermission({ url_path: { path: { safe_regex: { regex: '/a|/b' } } } });
  assert.equal(alt({ principal: null, path: '/a/x' }), false, 'alternation is anchored as a whole');
  assert.equal(alt({ principal: null, path: '/b' }), true);
});
