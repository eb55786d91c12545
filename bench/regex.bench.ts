/**
 * Config-regex matching cost per request: Palisade's RE2 engine (src/regex,
 * re2js: linear time) beside the reference it replaced in the same run, V8's
 * backtracking RegExp anchored as `^(?:…)$`.
 *
 * 1. Typical patterns on typical values (route paths, SPIFFE IDs, header
 *    values): median per full match; both engines must agree.
 * 2. A route table of 10 safe_regex routes before a catch-all, through the
 *    proxy's own `matchRoute`: median per request.
 * 3. The attack: `/(a+)+` on "/" + n×"a" + "!". The native engine doubles per
 *    character (so n stays small here); RE2 is linear (n up to 16 KiB, the
 *    proxy's header limit).
 * 4. The worst case RE2 allows within the bounds: a pattern whose DFA blows
 *    up (`.*a.{k}`), on 16 KiB of random a/b — program size × input length.
 *
 * Run: node --expose-gc dist/bench/regex.bench.js
 */
import { compileSafeRegex, MAX_REGEX_PROGRAM_SIZE } from '../src/regex/index.js';
import {
  compileRouteConfig,
  matchRoute,
  type RouteRequest,
} from '../src/proxy/outbound/route-table.js';

function median(fn: () => void, rounds: number): number {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

const typical: [string, string[]][] = [
  ['/items/[0-9]+', ['/items/12345', '/items/x']],
  ['/api/v[0-9]+/users/[^/]+', ['/api/v2/users/alice', '/api/v2/orders/1']],
  ['.*/ns/[^/]+/.*', ['spiffe://cluster.local/ns/default/sa/productpage']],
  ['.+', ['GET']],
  ['/reviews/[0-9]+(/ratings)?', ['/reviews/7/ratings', '/reviews/seven']],
  ['(?i)bearer [a-z0-9._-]+', ['Bearer abc.def-123_x']],
];

console.log('1. one full match, median ns (palisade RE2 | reference V8 RegExp | ratio)');
for (const [pattern, values] of typical) {
  const safe = compileSafeRegex(pattern);
  // V8 has no inline flags: the reference gets the `i` flag instead of (?i).
  const native = pattern.startsWith('(?i)')
    ? new RegExp(`^(?:${pattern.slice(4)})$`, 'i')
    : new RegExp(`^(?:${pattern})$`);
  for (const v of values)
    if (safe.fullMatch(v) !== native.test(v)) throw new Error(`${pattern} disagrees on ${v}`);
  const loops = 2000;
  const run = (f: (v: string) => boolean) => () => {
    for (let i = 0; i < loops; i++) for (const v of values) f(v);
  };
  for (let w = 0; w < 50; w++) {
    run((v) => safe.fullMatch(v))();
    run((v) => native.test(v))();
  }
  const per = loops * values.length;
  const a = median(
    run((v) => safe.fullMatch(v)),
    30,
  );
  const b = median(
    run((v) => native.test(v)),
    30,
  );
  console.log(
    `   ${pattern.padEnd(30)} ${(a / per).toFixed(0).padStart(6)} | ${(b / per).toFixed(0).padStart(5)} | ${(a / b).toFixed(1)}x`,
  );
}

// 2. matchRoute over 10 regex routes and a catch-all (the request falls through all of them).
const regexRoutes = Array.from({ length: 10 }, (_, i) => ({
  match: { safe_regex: { regex: `/svc${String(i)}/v[0-9]+/items/[0-9]+` } },
  direct_response: { status: 200 },
}));
const config = compileRouteConfig({
  name: '80',
  virtual_hosts: [
    {
      name: 'h',
      domains: ['h'],
      routes: [...regexRoutes, { match: { prefix: '/' }, direct_response: { status: 200 } }],
    },
  ],
});
const nativeRoutes = regexRoutes.map((r) => new RegExp(`^(?:${r.match.safe_regex.regex})$`));
const request: RouteRequest = { authority: 'h', path: '/svc9/v2/items/77?x=1', headers: {} };
const nativeMatch = (path: string): number => nativeRoutes.findIndex((re) => re.test(path));
const loops = 2000;
for (let w = 0; w < 20; w++) {
  for (let i = 0; i < loops; i++) matchRoute(config, request);
}
const routed = median(() => {
  for (let i = 0; i < loops; i++) matchRoute(config, request);
}, 30);
const nativeOnly = median(() => {
  for (let i = 0; i < loops; i++) nativeMatch('/svc9/v2/items/77');
}, 30);
console.log(
  `2. matchRoute, 10 safe_regex routes (last one matches): ${(routed / loops / 1000).toFixed(2)} µs per request; ` +
    `the same 10 patterns with V8 RegExp alone: ${(nativeOnly / loops / 1000).toFixed(2)} µs`,
);

// 3. The attack.
console.log('3. /(a+)+ on "/" + n×"a" + "!", ms per match');
const attack = compileSafeRegex('/(a+)+');
const nativeAttack = /^(?:\/(a+)+)$/;
for (const n of [16, 20, 22, 24]) {
  const input = `/${'a'.repeat(n)}!`;
  const t0 = process.hrtime.bigint();
  nativeAttack.test(input);
  const nativeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const re2Ms = median(() => attack.fullMatch(input), 5) / 1e6;
  console.log(
    `   n=${String(n).padStart(5)}  palisade ${re2Ms.toFixed(3).padStart(8)}  reference ${nativeMs.toFixed(1).padStart(8)}`,
  );
}
for (const n of [1024, 16_384]) {
  const input = `/${'a'.repeat(n)}!`;
  const re2Ms = median(() => attack.fullMatch(input), 5) / 1e6;
  console.log(
    `   n=${String(n).padStart(5)}  palisade ${re2Ms.toFixed(3).padStart(8)}  reference (would take ~2^n steps)`,
  );
}

// 4. The worst case within the bounds.
let seed = 7;
const random = Array.from({ length: 16_384 }, () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return (seed >> 8) % 2 === 0 ? 'a' : 'b';
}).join('');
console.log(
  `4. DFA-hostile patterns on 16 KiB of random a/b (bound: program size ${String(MAX_REGEX_PROGRAM_SIZE)}), ms`,
);
for (const k of [10, 20, 95, 500, 1000]) {
  const re = compileSafeRegex(`.*a.{${String(k)}}`);
  const ms = median(() => re.fullMatch(random), 3) / 1e6;
  console.log(
    `   .*a.{${String(k)}}`.padEnd(16) +
      ` program size ${String(re.programSize).padStart(5)}: ${ms.toFixed(1).padStart(8)}`,
  );
}
