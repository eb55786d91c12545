/**
 * The service graph from metric text: the proxies' own Istio metrics
 * (src/telemetry, the real producer) are scraped as text twice and the edges,
 * rates, error rates, quantiles and mTLS flags checked — including the
 * Bookinfo case where the destination cannot name its caller (reviews v1–v3
 * share one service account) and the source side's report is used instead.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { createMeshMetrics, requestLabels, type PeerInfo } from '../telemetry/index.js';
import { parsePrometheusText } from './prometheus-text.js';
import {
  computeServiceGraph,
  computeWorkloadStats,
  histogramQuantile,
  type MeshWorkload,
  type ProxyScrape,
} from './service-graph.js';

const TD = 'spiffe://cluster.local/ns/default/sa/';
const host = (s: string): string => `${s}.default.svc.cluster.local`;
function wl(name: string, app: string, version: string, sa: string): MeshWorkload {
  return {
    id: `${name}.default`,
    workload: name,
    namespace: 'default',
    app,
    version,
    labels: { app, version },
    serviceAccount: sa,
    principal: `${TD}${sa}`,
    kind: 'workload',
    services: [host(app)],
    ports: [9080],
    proxies: [{ name: `${name}-0-sidecar`, adminUrl: 'http://127.0.0.1:1' }],
  };
}
const WORKLOADS = [
  wl('productpage-v1', 'productpage', 'v1', 'bookinfo-productpage'),
  wl('reviews-v1', 'reviews', 'v1', 'bookinfo-reviews'),
  wl('reviews-v2', 'reviews', 'v2', 'bookinfo-reviews'),
  wl('ratings-v1', 'ratings', 'v1', 'bookinfo-ratings'),
];
const peer = (w: MeshWorkload): PeerInfo => ({
  workload: w.workload,
  namespace: w.namespace,
  principal: w.principal,
  app: w.app,
  version: w.version,
});
const [productpage, reviews1, reviews2, ratings] = WORKLOADS as [
  MeshWorkload,
  MeshWorkload,
  MeshWorkload,
  MeshWorkload,
];

/** A proxy's registry, scraped as its admin endpoint serves it. */
function proxy(w: MeshWorkload): {
  metrics: ReturnType<typeof createMeshMetrics>;
  scrape: (atMs: number) => Promise<ProxyScrape>;
} {
  const metrics = createMeshMetrics();
  return {
    metrics,
    scrape: async (atMs) => ({
      proxy: `${w.workload}-0-sidecar`,
      workloadId: w.id,
      atMs,
      samples: parsePrometheusText(await metrics.registry.metrics()),
    }),
  };
}

/** Inbound as the proxy reports it today: the caller known only by its SPIFFE ID. */
function inbound(
  p: ReturnType<typeof proxy>,
  self: MeshWorkload,
  caller: MeshWorkload | null,
  status: number,
  durationMs: number,
): void {
  p.metrics.recordRequest(
    requestLabels({
      reporter: 'destination',
      source: caller === null ? {} : { principal: caller.principal, namespace: caller.namespace },
      destination: peer(self),
      responseCode: status,
      mutualTls: caller !== null,
    }),
    { durationMs, requestBytes: 0, responseBytes: 0 },
  );
}

function outbound(
  p: ReturnType<typeof proxy>,
  self: MeshWorkload,
  service: string,
  status: number,
  durationMs: number,
): void {
  p.metrics.recordRequest(
    requestLabels({
      reporter: 'source',
      source: peer(self),
      destination: { service },
      responseCode: status,
    }),
    { durationMs, requestBytes: 0, responseBytes: 0 },
  );
}

test('Bookinfo edges from two scrapes: rates, errors, quantiles, mTLS, and the source side where the destination cannot name the caller', async () => {
  const pp = proxy(productpage);
  const r1 = proxy(reviews1);
  const r2 = proxy(reviews2);
  const ra = proxy(ratings);
  const all = [pp, r1, r2, ra];
  // Traffic before the first scrape must not count.
  inbound(r1, reviews1, productpage, 200, 3);
  outbound(pp, productpage, host('reviews'), 200, 4);
  const before = await Promise.all(all.map((p) => p.scrape(0)));
  for (let i = 0; i < 6; i += 1) {
    outbound(pp, productpage, host('reviews'), 200, 7);
    inbound(r1, reviews1, productpage, 200, 4);
  }
  for (let i = 0; i < 4; i += 1) {
    outbound(pp, productpage, host('reviews'), i === 0 ? 503 : 200, 20);
    inbound(r2, reviews2, productpage, i === 0 ? 503 : 200, 20);
    outbound(r2, reviews2, host('ratings'), 200, 2);
    inbound(ra, ratings, reviews2, 200, 1);
  }
  // A plaintext caller outside the mesh.
  inbound(ra, ratings, null, 403, 0.2);
  const after = await Promise.all(all.map((p) => p.scrape(10_000)));
  const graph = computeServiceGraph(WORKLOADS, before, after);

  assert.equal(graph.windowSeconds, 10);
  const edges = Object.fromEntries(graph.edges.map((e) => [`${e.source}>${e.target}`, e]));
  assert.deepEqual(Object.keys(edges).sort(), [
    'productpage-v1.default>reviews-v1.default',
    'productpage-v1.default>reviews-v2.default',
    'reviews-v2.default>ratings-v1.default',
    'unknown>ratings-v1.default',
  ]);
  const toV1 = edges['productpage-v1.default>reviews-v1.default'];
  assert.equal(toV1?.rps, 0.6);
  assert.equal(toV1.errorRate, 0);
  assert.equal(toV1.mtls, true);
  assert.equal(toV1.reporter, 'destination');
  // All six took 4 ms: Envoy's buckets (1, 5] → histogram_quantile interpolates inside it.
  assert.equal(toV1.p50Ms, 3);
  const toV2 = edges['productpage-v1.default>reviews-v2.default'];
  assert.equal(toV2?.rps, 0.4);
  assert.equal(toV2.errorRate, 0.25);
  assert.deepEqual(toV2.codes, { '200': 3, '503': 1 });
  // reviews-v2 → ratings: ratings sees bookinfo-reviews, shared by v1 and v2; the source side names it.
  const toRatings = edges['reviews-v2.default>ratings-v1.default'];
  assert.equal(toRatings?.reporter, 'source');
  assert.equal(toRatings.rps, 0.4);
  assert.equal(toRatings.mtls, true, 'mTLS as the destination saw that identity');
  const plain = edges['unknown>ratings-v1.default'];
  assert.equal(plain?.mtls, false);
  assert.equal(plain.deniedRps, 0.1);
  // No service node: reviews v1 and v2 reported productpage's calls themselves.
  assert.deepEqual(
    graph.nodes.map((n) => n.id).sort(),
    [...WORKLOADS.map((w) => w.id), 'unknown'].sort(),
  );

  const stats = Object.fromEntries(
    computeWorkloadStats(WORKLOADS, before, after).map((s) => [s.workload, s]),
  );
  assert.equal(stats['reviews-v2']?.rps, 0.4);
  assert.equal(stats['reviews-v2'].successRate, 0.75);
  assert.equal(stats['reviews-v2'].mtlsRate, 1);
  // A 403 is the server answering: success for `top`, as linkerd viz stat counts it.
  assert.equal(stats['ratings-v1']?.successRate, 1);
  assert.equal(stats['ratings-v1'].mtlsRate, 0.8);
  assert.equal(stats['productpage-v1']?.rps, 0);
  assert.equal(stats['productpage-v1'].successRate, null);
});

test('a restarted proxy (counter reset) counts from zero, as rate() does; unrouted traffic to a shared service is a service node', async () => {
  const pp = proxy(productpage);
  outbound(pp, productpage, host('reviews'), 200, 1);
  outbound(pp, productpage, host('reviews'), 200, 1);
  const before = [await pp.scrape(0)];
  const restarted = proxy(productpage);
  outbound(restarted, productpage, host('reviews'), 200, 1);
  outbound(restarted, productpage, 'api.example.com', 200, 1);
  const graph = computeServiceGraph(WORKLOADS, before, [await restarted.scrape(2000)]);
  const edges = Object.fromEntries(graph.edges.map((e) => [e.target, e]));
  assert.equal(edges['service:reviews.default.svc.cluster.local']?.rps, 0.5);
  assert.equal(edges['external:api.example.com']?.rps, 0.5);
  assert.equal(edges['external:api.example.com'].mtls, false);
  assert.ok(graph.nodes.some((n) => n.id === 'external:api.example.com' && n.kind === 'external'));
});

test('histogram_quantile: linear interpolation inside the bucket, +Inf answers the highest finite bound', () => {
  const b = new Map([
    [5, 10],
    [10, 20],
    [Infinity, 20],
  ]);
  assert.equal(histogramQuantile(0.5, b), 5);
  assert.equal(histogramQuantile(0.75, b), 7.5);
  assert.equal(
    histogramQuantile(
      0.99,
      new Map([
        [5, 1],
        [Infinity, 10],
      ]),
    ),
    5,
  );
  assert.equal(histogramQuantile(0.5, new Map()), null);
});

test('exposition text: escaped label values, comments, +Inf, and odd lines skipped', () => {
  const text = [
    '# HELP x y',
    '# TYPE x counter',
    'x{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3',
    'y_bucket{le="+Inf"} 7 1700000000000',
    'broken{a="unterminated} 1',
    'z 4',
    'nan_value NaN',
  ].join('\n');
  assert.deepEqual(parsePrometheusText(text), [
    { name: 'x', labels: { a: 'q"uote', b: 'back\\slash', c: 'new\nline' }, value: 3 },
    { name: 'y_bucket', labels: { le: '+Inf' }, value: 7 },
    { name: 'z', labels: {}, value: 4 },
  ]);
  assert.deepEqual(
    parsePrometheusText(text, (n) => n === 'z').map((s) => s.name),
    ['z'],
  );
});
