import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatSpiffeId, parseSpiffeId, parseWorkloadIdentity, workloadSpiffeId } from './index.js';

const cases: [string, string | null][] = [
  ['spiffe://example.org', null],
  ['spiffe://example.org/ns/default/sa/web', null],
  ['spiffe://a-b.c_d/x.y/Z-9_', null],
  ['', 'SPIFFE ID is empty'],
  ['http://example.org/a', 'scheme is missing or invalid'],
  ['SPIFFE://example.org/a', 'scheme must be lowercase'],
  ['spiffe://', 'trust domain is missing'],
  ['spiffe:///path', 'trust domain is missing'],
  ['spiffe://Example.org/a', 'trust domain must be lowercase'],
  ['spiffe://exa mple.org/a', 'trust domain characters are limited'],
  ['spiffe://user@example.org/a', 'userinfo is not allowed'],
  ['spiffe://example.org:8080/a', 'port is not allowed'],
  ['spiffe://example.org/a?x=1', 'query is not allowed'],
  ['spiffe://example.org/a#frag', 'fragment is not allowed'],
  ['spiffe://example.org/', 'trailing "/"'],
  ['spiffe://example.org/a/', 'trailing "/"'],
  ['spiffe://example.org//a', 'empty segments'],
  ['spiffe://example.org/a/./b', '"." or ".." segments'],
  ['spiffe://example.org/a/../b', '"." or ".." segments'],
  ['spiffe://example.org/a%2Fb', 'percent-encoded'],
  ['spiffe://ex%41mple.org/a', 'percent-encoded'],
  ['spiffe://example.org/a b', 'path segment characters are limited'],
  ['spiffe://example.org/ü', 'path segment characters are limited'],
  [`spiffe://${'a'.repeat(256)}/x`, 'exceeds 255 bytes'],
  [`spiffe://example.org/${'a'.repeat(2048)}`, 'exceeds 2048 bytes'],
];

test('parseSpiffeId accepts valid IDs and names the rule for each invalid one', () => {
  for (const [input, expected] of cases) {
    const r = parseSpiffeId(input);
    if (expected === null) {
      assert.ok(r.ok, `${input} should be valid: ${r.ok ? '' : r.error}`);
      assert.equal(r.id.uri, input);
    } else {
      assert.ok(!r.ok, `${input} should be invalid`);
      assert.ok(r.error.includes(expected), `${input}: "${r.error}" should mention "${expected}"`);
    }
  }
});

test('Istio workload IDs round-trip', () => {
  const id = workloadSpiffeId({
    trustDomain: 'cluster.local',
    namespace: 'bar',
    serviceAccount: 'sleep',
  });
  assert.equal(id, 'spiffe://cluster.local/ns/bar/sa/sleep');
  assert.deepEqual(parseWorkloadIdentity(id), {
    trustDomain: 'cluster.local',
    namespace: 'bar',
    serviceAccount: 'sleep',
  });
  assert.equal(parseWorkloadIdentity('spiffe://cluster.local/other'), undefined);
  assert.throws(() => formatSpiffeId('cluster.local', 'a/b'), /must not contain "\/"/);
});

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const segChar = fc.constantFrom(...'abcXYZ0123456789.-_'.split(''));
const segment = fc
  .string({ unit: segChar, minLength: 1, maxLength: 12 })
  .filter((s) => s !== '.' && s !== '..');

test('property: valid IDs built from allowed characters parse and round-trip', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: tdChar, minLength: 1, maxLength: 30 }),
      fc.array(segment, { maxLength: 6 }),
      (td, segs) => {
        const uri = formatSpiffeId(td, ...segs);
        const r = parseSpiffeId(uri);
        return r.ok && r.id.trustDomain === td && r.id.path === segs.map((s) => `/${s}`).join('');
      },
    ),
  );
});

test('property: any string is answered without throwing, and accepted ones contain only allowed characters', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.webUrl().map((u) => u.replace(/^https?/, 'spiffe')),
      ),
      (s) => {
        const r = parseSpiffeId(s);
        if (r.ok) {
          assert.match(s, /^spiffe:\/\/[a-z0-9._-]+(\/[a-zA-Z0-9._-]+)*$/);
        } else {
          assert.ok(r.error.length > 0);
        }
      },
    ),
    { numRuns: 2000 },
  );
});
