/**
 * Authorization decision time with 1,000 AuthorizationPolicies on one
 * workload: Palisade's compiled Envoy RBAC evaluation (translate once,
 * compile to closures once, policies indexed by the exact peer principal
 * they require) beside a reference in the same run: the same compiled
 * closures scanned linearly in name order, as Envoy's RBAC filter does.
 * Median and p99 per decision; both must agree on every decision.
 *
 * Run: node --expose-gc dist/bench/authz.bench.js
 */
import {
  compilePermission,
  compilePrincipal,
  compileRbacFilter,
  translateAuthorizationPolicies,
  type RbacFilterConfig,
  type RequestFacts,
} from '../src/policy/index.js';
import type { AuthorizationPolicy } from '../src/api/security/index.js';

const N = 1000;
const policies: AuthorizationPolicy[] = Array.from({ length: N }, (_, i) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: `p${String(i).padStart(4, '0')}`, namespace: 'foo' },
  spec: {
    action: i % 10 === 0 ? 'DENY' : 'ALLOW',
    rules: [
      {
        from: [
          {
            source: {
              principals: [`cluster.local/ns/ns${i % 50}/sa/sa${i}`],
              notNamespaces: ['dev'],
            },
          },
        ],
        to: [{ operation: { methods: ['GET', 'POST'], paths: [`/api/v${i % 7}/*`, `/svc${i}`] } }],
        when: [{ key: 'request.headers[x-tenant]', values: [`t${i % 13}`] }],
      },
    ],
  },
}));

const filters = translateAuthorizationPolicies(policies, 'http');
const deny = compileRbacFilter(filters.deny ?? {});
const allow = compileRbacFilter(filters.allow ?? {});
const requests: RequestFacts[] = Array.from({ length: 2000 }, (_, i) => {
  const p = (i * 37) % N;
  return {
    principal: `spiffe://cluster.local/ns/ns${p % 50}/sa/sa${i % 3 === 0 ? p : p + 1}`,
    sourceIp: '10.0.0.1',
    destinationPort: 8000,
    headers: { ':method': 'GET', ':authority': 'svc.foo', 'x-tenant': `t${p % 13}` },
    path: i % 2 === 0 ? `/api/v${p % 7}/items` : `/svc${p}`,
  };
});

function decideCompiled(f: RequestFacts): boolean {
  if (deny.match(f) !== undefined) return false;
  return allow.match(f) !== undefined;
}
function linear(config: RbacFilterConfig): (f: RequestFacts) => boolean {
  const compiled = Object.entries(config.rules?.policies ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, p]) => ({
      perms: p.permissions.map(compilePermission),
      princ: p.principals.map(compilePrincipal),
    }));
  return (f) => compiled.some((c) => c.perms.some((x) => x(f)) && c.princ.some((x) => x(f)));
}
const linearDeny = linear(filters.deny ?? {});
const linearAllow = linear(filters.allow ?? {});
function decideNaive(f: RequestFacts): boolean {
  if (linearDeny(f)) return false;
  return linearAllow(f);
}

function measure(label: string, fn: (f: RequestFacts) => boolean, rounds: number): number {
  const times: number[] = [];
  let allowed = 0;
  for (let r = 0; r < rounds; r++) {
    for (const f of requests) {
      const t0 = process.hrtime.bigint();
      if (fn(f)) allowed += 1;
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  const p99 = times[Math.floor(times.length * 0.99)] ?? 0;
  console.log(
    `${label.padEnd(46)} median ${median.toFixed(2).padStart(8)} µs   p99 ${p99.toFixed(2).padStart(9)} µs   (${allowed} allowed)`,
  );
  return median;
}

// Both must agree on every decision.
for (const f of requests)
  if (decideCompiled(f) !== decideNaive(f)) throw new Error('compiled and naive decisions differ');
measure('warm-up', decideCompiled, 3);
const compiled = measure(`palisade: compiled RBAC, ${N} policies`, decideCompiled, 10);
const naive = measure(`reference: linear scan, ${N} policies`, decideNaive, 2);
console.log(
  `ratio reference/palisade: ${(naive / compiled).toFixed(1)}x (goal: palisade median < 5 µs)`,
);
