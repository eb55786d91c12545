/**
 * RBAC decision time with 1,000 roles and 1,000 bindings: Palisade's
 * authorizer (bindings indexed by subject, aggregation resolved once)
 * beside a naive reference in the same run — for every request, a linear
 * scan over every binding, its subjects and its role's rules, in Kubernetes'
 * visiting order. Both must agree on every decision.
 *
 * Run: node --expose-gc dist/bench/rbac.bench.js
 */
import {
  authenticatedUser,
  createRbacAuthorizer,
  ruleAllows,
  subjectAppliesTo,
  type PolicyRule,
  type RbacBinding,
  type RbacRole,
  type RequestAttributes,
} from '../src/kubernetes/index.js';

// Deterministic PRNG (mulberry32) so every run measures the same workload.
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

const NAMESPACES = Array.from({ length: 50 }, (_, i) => `ns-${String(i)}`);
const USERS = Array.from({ length: 400 }, (_, i) => `user-${String(i)}`);
const GROUPS = Array.from({ length: 60 }, (_, i) => `group-${String(i)}`);
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const RESOURCES = [
  'pods',
  'services',
  'configmaps',
  'secrets',
  'deployments',
  'jobs',
  'pods/log',
  'pods/exec',
  'ingresses',
  'events',
];
const GROUP_OF: Record<string, string> = {
  deployments: 'apps',
  jobs: 'batch',
  ingresses: 'networking.k8s.io',
};

function randomRule(): PolicyRule {
  const resources = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(RESOURCES));
  return {
    verbs: Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(VERBS)),
    apiGroups: [...new Set(resources.map((r) => GROUP_OF[r.split('/')[0] ?? ''] ?? ''))],
    resources,
    ...(rnd() < 0.1 ? { resourceNames: [`obj-${String(Math.floor(rnd() * 5))}`] } : {}),
  };
}

const roles: RbacRole[] = [];
for (let i = 0; i < 1000; i++) {
  const rules = Array.from({ length: 1 + Math.floor(rnd() * 4) }, randomRule);
  if (i % 2 === 0) roles.push({ kind: 'ClusterRole', name: `cr-${String(i)}`, rules });
  else roles.push({ kind: 'Role', name: `r-${String(i)}`, namespace: pick(NAMESPACES), rules });
}
const clusterRoles = roles.filter((r) => r.kind === 'ClusterRole');
const nsRoles = roles.filter((r) => r.kind === 'Role');

const bindings: RbacBinding[] = [];
for (let i = 0; i < 1000; i++) {
  const subjects = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
    const k = rnd();
    if (k < 0.6) return { kind: 'User', name: pick(USERS) };
    if (k < 0.8) return { kind: 'Group', name: pick(GROUPS) };
    return {
      kind: 'ServiceAccount',
      name: `sa-${String(Math.floor(rnd() * 20))}`,
      namespace: pick(NAMESPACES),
    };
  });
  if (i % 10 === 0) {
    const role = pick(clusterRoles);
    bindings.push({
      kind: 'ClusterRoleBinding',
      name: `crb-${String(i)}`,
      roleRef: { kind: 'ClusterRole', name: role.name },
      subjects,
    });
  } else if (rnd() < 0.5) {
    const role = pick(nsRoles);
    bindings.push({
      kind: 'RoleBinding',
      name: `rb-${String(i)}`,
      namespace: role.namespace ?? '',
      roleRef: { kind: 'Role', name: role.name },
      subjects,
    });
  } else {
    const role = pick(clusterRoles);
    bindings.push({
      kind: 'RoleBinding',
      name: `rb-${String(i)}`,
      namespace: pick(NAMESPACES),
      roleRef: { kind: 'ClusterRole', name: role.name },
      subjects,
    });
  }
}

const requests: RequestAttributes[] = Array.from({ length: 20_000 }, () => {
  const sa = rnd() < 0.2;
  const user = sa
    ? authenticatedUser(
        `system:serviceaccount:${pick(NAMESPACES)}:sa-${String(Math.floor(rnd() * 20))}`,
      )
    : authenticatedUser(pick(USERS), rnd() < 0.5 ? [pick(GROUPS)] : []);
  const full = pick(RESOURCES);
  const [resource = '', subresource = ''] = full.split('/');
  return {
    user,
    verb: pick(VERBS),
    apiGroup: GROUP_OF[resource] ?? '',
    resource,
    subresource,
    namespace: pick(NAMESPACES),
    name: rnd() < 0.3 ? `obj-${String(Math.floor(rnd() * 5))}` : '',
  };
});

// Naive reference: the authorizer's algorithm without an index.
const roleMap = new Map(roles.map((r) => [`${r.kind}/${r.namespace ?? ''}/${r.name}`, r.rules]));
const ordered = [
  ...bindings.filter((b) => b.kind === 'ClusterRoleBinding'),
  ...bindings.filter((b) => b.kind === 'RoleBinding'),
];
function naive(req: RequestAttributes): boolean {
  const ns = req.namespace ?? '';
  for (const b of ordered) {
    if (b.kind === 'RoleBinding' && b.namespace !== ns) continue;
    if (!b.subjects.some((s) => subjectAppliesTo(req.user, s, b.namespace ?? ''))) continue;
    const key =
      b.roleRef.kind === 'ClusterRole'
        ? `ClusterRole//${b.roleRef.name}`
        : `Role/${b.namespace ?? ''}/${b.roleRef.name}`;
    const rules = roleMap.get(key) ?? [];
    if (rules.some((r) => ruleAllows(req, r))) return true;
  }
  return false;
}

function measure(
  label: string,
  fn: (r: RequestAttributes) => boolean,
  minMs = 1500,
): { perSec: number; allowedShare: number } {
  globalThis.gc?.();
  let n = 0;
  let allowed = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (const r of requests) if (fn(r)) allowed++;
    n += requests.length;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const perSec = (n / elapsed) * 1000;
  console.log(
    `${label.padEnd(34)} ${perSec.toFixed(0).padStart(10)} decisions/s  (${(1e6 / perSec).toFixed(2)} µs each)`,
  );
  return { perSec, allowedShare: allowed / n };
}

const authz = createRbacAuthorizer({ roles, bindings });
let mismatches = 0;
for (const r of requests) if (authz.authorize(r).allowed !== naive(r)) mismatches++;
if (mismatches > 0) {
  console.error(`rbac bench: ${String(mismatches)} decisions differ from the naive scan`);
  process.exit(1);
}
console.log(
  `RBAC: ${String(roles.length)} roles, ${String(bindings.length)} bindings, ${String(requests.length)} distinct requests; decisions identical to the naive scan`,
);
for (let round = 1; round <= 2; round++) {
  const ref = measure(`naive linear scan (round ${String(round)})`, naive);
  const pal = measure(
    `palisade authorizer (round ${String(round)})`,
    (r) => authz.authorize(r).allowed,
  );
  console.log(
    `ratio palisade/naive: ${(pal.perSec / ref.perSec).toFixed(1)}x  (${(100 * pal.allowedShare).toFixed(1)}% of requests allowed)`,
  );
}
const t0 = process.hrtime.bigint();
createRbacAuthorizer({ roles, bindings });
console.log(
  `build (index + aggregation): ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`,
);
