/**
 * NetworkPolicy reachability matrix for 1,000 pods × 200 policies:
 * Palisade's matrix (per-rule pod bitsets, each policy's selectors matched
 * once per pod) beside a naive reference in the same run — for every pair,
 * every policy's selectors and rules evaluated directly (the engine's
 * explained single-connection path). The naive path is timed on a sample of
 * source rows and scaled to the full matrix (it would take minutes); both
 * must agree on every sampled pair.
 *
 * Run: node --expose-gc dist/bench/netpol.bench.js
 */
import {
  createNetworkPolicyEngine,
  type NetpolNamespace,
  type NetpolPod,
  type NetworkPolicy,
  type NetworkPolicyPeer,
} from '../src/kubernetes/index.js';

function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

const APPS = Array.from({ length: 25 }, (_, i) => `app-${String(i)}`);
const TIERS = ['web', 'api', 'db', 'cache'];
const namespaces: NetpolNamespace[] = Array.from({ length: 20 }, (_, i) => ({
  name: `ns-${String(i)}`,
  labels: { team: `team-${String(i % 5)}`, env: i % 2 === 0 ? 'prod' : 'dev' },
}));
const pods: NetpolPod[] = Array.from({ length: 1000 }, (_, i) => ({
  namespace: namespaces[i % namespaces.length]?.name ?? 'ns-0',
  name: `pod-${String(i)}`,
  labels: { app: pick(APPS), tier: pick(TIERS) },
  ip: `10.${String(1 + (i >> 16))}.${String((i >> 8) & 255)}.${String(i & 255)}`,
  ports: [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
  ],
}));

function peer(): NetworkPolicyPeer {
  const k = rnd();
  if (k < 0.35) return { podSelector: { matchLabels: { tier: pick(TIERS) } } };
  if (k < 0.6)
    return {
      namespaceSelector: { matchLabels: { team: `team-${String(Math.floor(rnd() * 5))}` } },
    };
  if (k < 0.85)
    return {
      namespaceSelector: { matchLabels: { env: 'prod' } },
      podSelector: {
        matchExpressions: [{ key: 'app', operator: 'In', values: [pick(APPS), pick(APPS)] }],
      },
    };
  return { ipBlock: { cidr: '10.1.0.0/22', except: ['10.1.1.0/24'] } };
}
const policies: NetworkPolicy[] = Array.from({ length: 200 }, (_, i) => {
  const k = rnd();
  const ns = pick(namespaces).name;
  const podSelector = k < 0.15 ? {} : { matchLabels: { tier: pick(TIERS) } };
  const rules = Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => ({
    peers: Array.from({ length: 1 + Math.floor(rnd() * 2) }, peer),
    ports:
      rnd() < 0.5
        ? [{ port: 'http', protocol: 'TCP' }]
        : [{ port: 8000, endPort: 8100, protocol: 'TCP' }],
  }));
  const egress = i % 4 === 0;
  return {
    namespace: ns,
    name: `np-${String(i)}`,
    podSelector,
    policyTypes: egress ? ['Ingress', 'Egress'] : ['Ingress'],
    ingress: rules,
    egress: egress ? [{ peers: [peer()] }] : [],
  };
});

const engine = createNetworkPolicyEngine({ namespaces, pods, policies });
const PORT = 8080;

globalThis.gc?.();
const runs: number[] = [];
let matrix = engine.matrix(PORT);
for (let i = 0; i < 5; i++) {
  const t0 = process.hrtime.bigint();
  matrix = engine.matrix(PORT);
  runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
runs.sort((a, b) => a - b);
const palisadeMs = runs[Math.floor(runs.length / 2)] ?? 0;
let allowed = 0;
for (const row of matrix.matrix) for (const v of row) if (v) allowed++;

// Naive: pairwise evaluation of sampled rows, scaled to 1,000 rows.
const SAMPLE_ROWS = 40;
const rows = Array.from({ length: SAMPLE_ROWS }, (_, i) =>
  Math.floor((i * pods.length) / SAMPLE_ROWS),
);
const sorted = matrix.pods.map((k) => engine.pod(k));
globalThis.gc?.();
const t1 = process.hrtime.bigint();
let mismatches = 0;
for (const i of rows) {
  const from = sorted[i];
  if (from === undefined) continue;
  sorted.forEach((to, j) => {
    if (to === undefined) return;
    if (engine.evaluate({ from, to, port: PORT }).allowed !== matrix.matrix[i]?.[j]) mismatches++;
  });
}
const naiveSampleMs = Number(process.hrtime.bigint() - t1) / 1e6;
if (mismatches > 0) {
  console.error(
    `netpol bench: ${String(mismatches)} sampled pairs differ from the naive evaluation`,
  );
  process.exit(1);
}
const naiveMs = (naiveSampleMs * pods.length) / SAMPLE_ROWS;
console.log(
  `NetworkPolicy: ${String(pods.length)} pods, ${String(policies.length)} policies, ${String(namespaces.length)} namespaces, port ${String(PORT)}/TCP`,
);
console.log(
  `${String(pods.length * pods.length)} pairs, ${((100 * allowed) / (pods.length * pods.length)).toFixed(1)}% allowed; sampled rows identical to the naive evaluation`,
);
console.log(`palisade matrix (median of 5)      ${palisadeMs.toFixed(1).padStart(10)} ms`);
console.log(
  `naive pairwise (${String(SAMPLE_ROWS)} rows, scaled)  ${naiveMs.toFixed(1).padStart(10)} ms  (${naiveSampleMs.toFixed(1)} ms measured)`,
);
console.log(`ratio naive/palisade: ${(naiveMs / palisadeMs).toFixed(1)}x faster`);
