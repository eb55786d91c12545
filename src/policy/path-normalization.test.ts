import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { normalizePath, removeDotSegments, type PathNormalization } from './path-normalization.js';

const table: [string, PathNormalization, string | null][] = [
  ['/a/b', 'BASE', '/a/b'],
  ['/a/./b', 'BASE', '/a/b'],
  ['/a/../b', 'BASE', '/b'],
  ['/../../b', 'BASE', '/b'],
  ['/a/%2e%2e/b', 'BASE', '/b'],
  ['/a/%2E/b', 'BASE', '/a/b'],
  ['/%61dmin', 'BASE', '/admin'],
  ['/a\\b', 'BASE', '/a/b'],
  ['/a%2fb', 'BASE', '/a%2Fb'],
  ['/a%2Fb', 'BASE', '/a%2Fb'],
  ['/a//b', 'BASE', '/a//b'],
  ['/a//b', 'MERGE_SLASHES', '/a/b'],
  ['/a%2Fb', 'MERGE_SLASHES', '/a%2Fb'],
  ['/a%2F%2fb', 'DECODE_AND_MERGE_SLASHES', '/a/b'],
  ['/a%5Cb', 'DECODE_AND_MERGE_SLASHES', '/a/b'],
  ['/a/b/', 'BASE', '/a/b/'],
  ['/a/b/..', 'BASE', '/a/'],
  ['/admin?x=1#frag', 'BASE', '/admin'],
  ['/admin#/../public', 'BASE', '/admin'],
  ['/a/../b', 'NONE', '/a/../b'],
  ['/a%00b', 'BASE', null],
  ['/a%00b', 'NONE', null],
  ['/a%zzb', 'BASE', null],
  ['/a%2', 'BASE', null],
  ['a/b', 'BASE', null],
];

test('normalizePath follows Istio BASE / MERGE_SLASHES / DECODE_AND_MERGE_SLASHES', () => {
  for (const [input, mode, expected] of table) {
    const r = normalizePath(input, mode);
    if (expected === null) assert.ok(!r.ok, `${mode} ${input} should be rejected with 400`);
    else assert.deepEqual(r.ok ? r.path : r.reason, expected, `${mode} ${input}`);
  }
  const q = normalizePath('/p?a=1&b=2');
  assert.ok(q.ok);
  assert.equal(q.query, 'a=1&b=2');
});

// Equivalent spellings of one canonical path, as an attacker would write them.
const segment = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
function disguise(canonical: string[], mode: PathNormalization): fc.Arbitrary<string> {
  return fc
    .tuple(
      ...canonical.map((seg) =>
        fc.tuple(
          fc.array(fc.constantFrom('.', 'x/..', 'y/z/../..'), { maxLength: 2 }), // detours
          fc.array(fc.boolean(), { minLength: seg.length, maxLength: seg.length }), // escape this char?
          fc.boolean(), // upper-case hex
          fc.constantFrom(
            '/',
            '\\',
            ...(mode === 'BASE' ? [] : ['//']),
            ...(mode === 'DECODE_AND_MERGE_SLASHES' ? ['%2F', '%2f', '%5C'] : []),
          ),
        ),
      ),
    )
    .map((parts) =>
      parts
        .map(([detours, escapes, upper], i) => {
          const seg = canonical[i] ?? '';
          const spelled = Array.from(seg) // segments are ASCII [a-z0-9_-]
            .map((c, j) => {
              if (!escapes[j]) return c;
              const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
              return `%${upper ? hex.toUpperCase() : hex}`;
            })
            .join('');
          return [...detours.map((d) => `/${d}`), `/${spelled}`].join('');
        })
        .map((s, i) => (i === 0 ? s : s.replace(/^\//, parts[i]?.[3] ?? '/')))
        .join(''),
    );
}

for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
  test(`property (${mode}): no equivalent spelling of a path escapes its canonical form`, () => {
    fc.assert(
      fc.property(
        fc
          .array(segment, { minLength: 1, maxLength: 4 })
          .chain((segs) => fc.tuple(fc.constant(segs), disguise(segs, mode))),
        ([segs, spelled]) => {
          const r = normalizePath(spelled, mode);
          assert.ok(r.ok, `${spelled}: ${r.ok ? '' : r.reason}`);
          assert.equal(r.path, `/${segs.join('/')}`, `${mode}: ${spelled}`);
        },
      ),
      { numRuns: 1500 },
    );
  });
}

test('property: normalisation is idempotent and never yields dot segments or backslashes', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('/', '.', '\\', '%', '2', 'e', 'F', 'a', 'b', '0', 'c') }),
      (s) => {
        for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
          const r = normalizePath(`/${s}`, mode);
          if (!r.ok) continue;
          assert.ok(!/(^|\/)\.\.?(\/|$)/.test(r.path), `${mode} /${s} -> ${r.path}`);
          assert.ok(!r.path.includes('\\'));
          const again = normalizePath(r.path, mode);
          assert.ok(again.ok);
          assert.equal(again.path, r.path, `${mode} not idempotent for /${s}`);
        }
      },
    ),
    { numRuns: 3000 },
  );
});

/**
 * The general algorithm, written out here as the reference: percent-decode (unreserved
 * characters decoded, the rest upper-cased), `\` → `/`, RFC 3986 remove_dot_segments (the
 * module's own), then merge slashes. normalizePath skips it for paths it cannot change; this checks the skip.
 */
function reference(rawPath: string, mode: Exclude<PathNormalization, 'NONE'>): string | null {
  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath.charAt(i);
    if (ch !== '%') {
      decoded += ch === '\\' ? '/' : ch;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex) || parseInt(hex, 16) === 0) return null;
    const c = String.fromCharCode(parseInt(hex, 16));
    if (/^[A-Za-z0-9\-._~]$/.test(c)) decoded += c;
    else if (mode === 'DECODE_AND_MERGE_SLASHES' && (c === '/' || c === '\\')) decoded += '/';
    else decoded += `%${hex.toUpperCase()}`;
    i += 2;
  }
  // remove_dot_segments is checked by the table above; the skip is what is checked here.
  const path = removeDotSegments(decoded);
  return mode === 'BASE' ? path : path.replace(/\/{2,}/g, '/');
}

test('property: the skip for already-normal paths agrees with the general algorithm', () => {
  fc.assert(
    fc.property(
      fc.string({
        unit: fc.constantFrom('/', '.', '\\', '%', '2', 'e', 'F', 'a', '~', '0', '5', 'C'),
      }),
      (s) => {
        for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
          const r = normalizePath(`/${s}?q`, mode);
          const want = reference(`/${s}`, mode);
          assert.equal(r.ok ? r.path : null, want, `${mode} /${s}`);
        }
      },
    ),
    { numRuns: 5000 },
  );
  // Paths the skip takes: left exactly as they are (same string, not a rebuilt copy).
  for (const p of ['/', '/a/b', '/a//b', '/a/b/', '/reviews/0', '/x.y/z.', '/a/b.'])
    assert.equal((normalizePath(p, 'BASE') as { path: string }).path, p);
});
