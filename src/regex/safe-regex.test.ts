// Config regexes: RE2 syntax and full-match semantics (Envoy safe_regex, Istio
// StringMatch.regex), linear-time matching, and the bounds (Istio's 1024-byte
// length; an RE2 program-size limit like Envoy's re2.max_program_size.error_level).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPalisadeError } from '../errors/index.js';
import {
  compileRewrite,
  compileSafeRegex,
  MAX_REGEX_LENGTH,
  MAX_REGEX_PROGRAM_SIZE,
  rewriteProblem,
  safeRegexProblem,
} from './index.js';

test('the whole value must match (Envoy: safe_regex is a full match)', () => {
  const re = compileSafeRegex('/items/[0-9]+');
  assert.equal(re.fullMatch('/items/42'), true);
  assert.equal(re.fullMatch('/items/4x2'), false);
  assert.equal(re.fullMatch('x/items/42'), false);
  assert.equal(re.fullMatch('/items/42/'), false);
  // Alternation binds inside the full match: `a|b` is ^(?:a|b)$, not ^a|b$.
  assert.equal(compileSafeRegex('a|bc').fullMatch('abc'), false);
  assert.equal(compileSafeRegex('a|bc').fullMatch('bc'), true);
});

test('RE2 syntax that V8 rejects is accepted: inline flags, \\Q…\\E, POSIX classes, \\z', () => {
  assert.equal(compileSafeRegex('(?i)bearer .+').fullMatch('BEARER abc'), true);
  assert.equal(compileSafeRegex('\\Qa.b\\E').fullMatch('a.b'), true);
  assert.equal(compileSafeRegex('\\Qa.b\\E').fullMatch('axb'), false);
  assert.equal(compileSafeRegex('[[:digit:]]+').fullMatch('123'), true);
  assert.equal(compileSafeRegex('(?P<v>v[0-9])').fullMatch('v1'), true);
  assert.equal(compileSafeRegex('abc\\z').fullMatch('abc'), true);
});

test('RE2 defaults: `.` does not match a newline unless (?s) or dotAll', () => {
  assert.equal(compileSafeRegex('a.b').fullMatch('a\nb'), false);
  assert.equal(compileSafeRegex('(?s)a.b').fullMatch('a\nb'), true);
  assert.equal(compileSafeRegex('a.b', { dotAll: true }).fullMatch('a\nb'), true);
  assert.equal(compileSafeRegex('abc', { ignoreCase: true }).fullMatch('ABC'), true);
  assert.equal(compileSafeRegex('abc').fullMatch('ABC'), false);
});

test('what RE2 rejects is rejected with the construct named', () => {
  const cases: [string, RegExp][] = [
    ['(a)\\1', /backreference "\\1" is not supported/],
    ['(?<n>a)\\k<n>', /named backreference/],
    ['foo(?=bar)', /lookahead "\(\?=" is not supported/],
    ['foo(?!bar)', /negative lookahead/],
    ['(?<=foo)bar', /lookbehind "\(\?<=" is not supported/],
    ['(?<!foo)bar', /negative lookbehind/],
    ['a++', /possessive quantifier "\+\+"/],
    ['a{2}+', /possessive quantifier "}\+"/],
    ['(?>a)', /atomic group/],
    ['(a', /not RE2 syntax \(.*missing closing \)/],
    ['*', /not RE2 syntax/],
    ['', /must not be empty/],
  ];
  for (const [pattern, reason] of cases) {
    const problem = safeRegexProblem(pattern);
    assert.ok(problem !== undefined, `${pattern} must be rejected`);
    assert.match(problem, reason, pattern);
    assert.throws(
      () => compileSafeRegex(pattern),
      (err: unknown) => isPalisadeError(err, 'PAL_ERR_REGEX_INVALID'),
    );
  }
  // An escaped backslash followed by a digit is a literal, not a backreference.
  assert.equal(compileSafeRegex('a\\\\1').fullMatch('a\\1'), true);
});

test('length and program-size bounds', () => {
  // A literal of n characters compiles to n + 2 instructions.
  assert.equal(safeRegexProblem('a'.repeat(MAX_REGEX_PROGRAM_SIZE - 2)), undefined);
  assert.match(safeRegexProblem('a'.repeat(MAX_REGEX_LENGTH + 1)) ?? '', /1025 bytes long/);
  // UTF-8 bytes count, as Go's len() in Istio's validation.
  assert.match(safeRegexProblem('é'.repeat(513)) ?? '', /1026 bytes long/);
  assert.equal(safeRegexProblem('([a-z0-9-]{1,63}\\.){1,4}[a-z]{2,63}'), undefined);
  assert.match(safeRegexProblem('[a-z]{1,1000}') ?? '', /program size 2001/);
  const big = '(\\w+\\s?){1,1000}';
  assert.match(
    safeRegexProblem(big) ?? '',
    new RegExp(`program size \\d+ exceeds the maximum ${String(MAX_REGEX_PROGRAM_SIZE)}`),
  );
  // RE2's own repeat limit (1000) still applies.
  assert.match(safeRegexProblem('(a{1000}){1000}') ?? '', /invalid repeat count/);
});

test('catastrophic-backtracking patterns match in linear time', () => {
  // V8's backtracking engine needs ~2^n steps for these on "aaaa…!"; RE2 needs O(n).
  for (const pattern of ['/(a+)+', '/(a|a)*b', '/(a|aa)+$', '/(a*)*b', '/([a-z]+)*x']) {
    const re = compileSafeRegex(pattern);
    assert.equal(re.fullMatch(`/${'a'.repeat(10_000)}!`), false, pattern);
  }
});

test('replaceAll follows RE2::GlobalReplace and RE2 rewrite strings (Envoy regex_rewrite)', () => {
  // Envoy's documented examples for regex_rewrite.
  const re = compileSafeRegex('^/service/([^/]+)(/.*)$');
  assert.equal(
    re.replaceAll('/service/foo/v1/api', compileRewrite('\\2/instance/\\1', re)),
    '/v1/api/instance/foo',
  );
  const one = compileSafeRegex('one');
  assert.equal(
    one.replaceAll('/xxx/one/yyy/one/zzz', compileRewrite('two', one)),
    '/xxx/two/yyy/two/zzz',
  );
  // `\0` is the whole match, `\\` a backslash, `$` is literal (not a JS replacement token).
  const x = compileSafeRegex('b+');
  assert.equal(x.replaceAll('abbc', compileRewrite('[\\0]\\\\$1$&', x)), 'a[bb]\\$1$&c');
  // RE2 skips an empty match right after the previous match (Go and RE2, unlike JavaScript).
  const empty = compileSafeRegex('a*');
  assert.equal(empty.replaceAll('baaac', compileRewrite('-', empty)), '-b-c-');
  const slashes = compileSafeRegex('/+');
  assert.equal(slashes.replaceAll('//a///b', compileRewrite('/', slashes)), '/a/b');
  // A group that did not take part in the match is empty.
  const opt = compileSafeRegex('x(y)?');
  assert.equal(opt.replaceAll('xz', compileRewrite('[\\1]', opt)), '[]z');
  assert.match(rewriteProblem('(a)', '\\2') ?? '', /uses group \\2 but the regex has 1/);
  assert.match(rewriteProblem('a', '\\n') ?? '', /invalid escape/);
  assert.equal(rewriteProblem('^/svc/([^/]+)(/.*)$', '\\2/instance/\\1'), undefined);
});

// Property: for simple patterns (literals, classes, groups, alternation and
// quantifiers, the common subset of RE2 and JavaScript syntax), RE2's full
// match agrees with the anchored native RegExp the proxy used before.
test('property: re2js full match agrees with the old native ^(?:…)$ on the common subset', () => {
  const atom = fc.constantFrom('a', 'b', '/', '.', '[ab]', '[^/]', '\\d', '[0-9]', 'x');
  const regexArb = fc.letrec<{ re: string; piece: string }>((tie) => ({
    piece: fc.oneof(
      { depthSize: 'small' },
      atom,
      fc
        .tuple(tie('re'), fc.constantFrom('', '*', '+', '?', '{1,2}'))
        .map(([r, q]) => (q === '' ? `(${r})` : `(?:${r})${q}`)),
      fc.tuple(atom, fc.constantFrom('*', '+', '?', '{2}')).map(([a, q]) => a + q),
    ),
    re: fc.oneof(
      { depthSize: 'small' },
      fc.array(tie('piece'), { minLength: 1, maxLength: 4 }).map((xs) => xs.join('')),
      fc.tuple(tie('piece'), tie('piece')).map(([a, b]) => `${a}|${b}`),
    ),
  })).re;
  const input = fc.array(fc.constantFrom('a', 'b', '/', '1', 'x', '.'), { maxLength: 12 });
  fc.assert(
    fc.property(regexArb, fc.array(input, { minLength: 1, maxLength: 8 }), (pattern, inputs) => {
      const native = new RegExp(`^(?:${pattern})$`);
      const safe = compileSafeRegex(pattern);
      for (const chars of inputs) {
        const value = chars.join('');
        assert.equal(safe.fullMatch(value), native.test(value), `${pattern} on ${value}`);
      }
    }),
    { numRuns: 400 },
  );
});

test('re2js is loaded on first use: importing the proxy does not load it', () => {
  const proxy = new URL('../proxy/index.js', import.meta.url).href;
  const regex = new URL('./index.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const cache = createRequire(import.meta.url).cache;
    const loaded = () => Object.keys(cache).some((k) => k.includes('re2js'));
    await import(${JSON.stringify(proxy)});
    const before = loaded();
    (await import(${JSON.stringify(regex)})).compileSafeRegex('a+');
    console.log(JSON.stringify([before, loaded()]));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), [false, true]);
});
