/**
 * Istio standard metrics: exact names, label names and values, bucket
 * boundaries in the Prometheus text a scrape returns, and the cardinality guard.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import {
  ISTIO_DEFAULT_BUCKETS,
  createMeshMetrics,
  requestLabels,
  tcpLabels,
  type PeerInfo,
} from './mesh-metrics.js';

const productpage: PeerInfo = {
  workload: 'productpage-v1',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
  app: 'productpage',
  version: 'v1',
  cluster: 'Kubernetes',
};
const reviews: PeerInfo = {
  workload: 'reviews-v2',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
  app: 'reviews',
  version: 'v2',
  cluster: 'Kubernetes',
  service: 'reviews.default.svc.cluster.local',
};

/** Parses `name{a="b",…} value` lines of a scrape into records. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    if (open !== -1) {
      for (const m of line.slice(open + 1, close).matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
        labels[m[1]!] = m[2]!;
      }
    }
    out.push({ labels, value: Number(line.slice((open === -1 ? name.length : close + 1) + 1)) });
  }
  return out;
}

test('requestLabels: Istio label names and value conventions', () => {
  const dest = requestLabels({
    reporter: 'destination',
    source: productpage,
    destination: reviews,
    responseCode: 200,
    mutualTls: true,
  });
  assert.deepEqual(dest, {
    reporter: 'destination',
    source_workload: 'productpage-v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    source_app: 'productpage',
    source_version: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_service: 'reviews.default.svc.cluster.local',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_service_name: 'reviews',
    destination_service_namespace: 'default',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });

  // An unauthenticated caller the proxy knows nothing about.
  const anon = requestLabels({
    reporter: 'destination',
    source: {},
    destination: { ...reviews, service: 'httpbin.org' },
    responseCode: 503,
    responseFlags: 'UF,URX',
    mutualTls: false,
  });
  assert.equal(anon.source_workload, 'unknown');
  assert.equal(anon.source_principal, 'unknown');
  assert.equal(anon.source_canonical_service, 'unknown');
  assert.equal(anon.source_canonical_revision, 'latest');
  assert.equal(anon.source_cluster, 'unknown');
  assert.equal(anon.destination_service_name, 'httpbin.org');
  assert.equal(anon.destination_service_namespace, 'unknown');
  assert.equal(anon.response_flags, 'UF,URX');
  assert.equal(anon.connection_security_policy, 'none');

  // The client side cannot know the server's policy: Istio reports unknown.
  const src = requestLabels({
    reporter: 'source',
    source: productpage,
    destination: reviews,
    protocol: 'grpc',
    responseCode: 200,
    grpcStatus: 14,
    mutualTls: true,
  });
  assert.equal(src.connection_security_policy, 'unknown');
  assert.equal(src.request_protocol, 'grpc');
  assert.equal(src.grpc_response_status, '14');

  const tcp = tcpLabels({
    reporter: 'destination',
    source: productpage,
    destination: reviews,
    mutualTls: true,
  });
  assert.equal(tcp.request_protocol, 'tcp');
  assert.equal('response_code' in tcp, false);
  assert.equal('grpc_response_status' in tcp, false);
});

test('a scrape has Istio metric names, labels and Envoy default buckets', async () => {
  const metrics = createMeshMetrics();
  const labels = requestLabels({
    reporter: 'destination',
    source: productpage,
    destination: reviews,
    responseCode: 200,
    mutualTls: true,
  });
  metrics.recordRequest(labels, { durationMs: 5, requestBytes: 0, responseBytes: 295 });
  metrics.recordRequest(labels, { durationMs: 70, requestBytes: 12, responseBytes: 295 });
  const failed = requestLabels({
    reporter: 'destination',
    source: productpage,
    destination: reviews,
    responseCode: 503,
    responseFlags: 'UH',
    mutualTls: true,
  });
  metrics.recordRequest(failed, { durationMs: 0.2, requestBytes: 0, responseBytes: 19 });
  const tcp = tcpLabels({
    reporter: 'destination',
    source: productpage,
    destination: reviews,
    mutualTls: true,
  });
  metrics.recordTcpOpen(tcp);
  metrics.recordTcpBytes(tcp, { sent: 100, received: 40 });
  metrics.recordTcpBytes(tcp, { sent: 5, received: 2 });
  metrics.recordTcpClose(tcp);

  const text = await metrics.registry.metrics();
  assert.match(metrics.registry.contentType, /^text\/plain; version=0\.0\.4/);
  for (const [name, type] of [
    ['istio_requests_total', 'counter'],
    ['istio_request_duration_milliseconds', 'histogram'],
    ['istio_request_bytes', 'histogram'],
    ['istio_response_bytes', 'histogram'],
    ['istio_tcp_sent_bytes_total', 'counter'],
    ['istio_tcp_received_bytes_total', 'counter'],
    ['istio_tcp_connections_opened_total', 'counter'],
    ['istio_tcp_connections_closed_total', 'counter'],
    ['palisade_metrics_overflow_total', 'counter'],
  ] as const) {
    assert.ok(text.includes(`# TYPE ${name} ${type}\n`), `${name} ${type} missing:\n${text}`);
  }

  const total = samples(text, 'istio_requests_total');
  assert.equal(total.length, 2);
  const ok = total.find((s) => s.labels.response_code === '200');
  assert.ok(ok);
  assert.equal(ok.value, 2);
  assert.deepEqual(ok.labels, labels);
  const bad = total.find((s) => s.labels.response_code === '503');
  assert.equal(bad?.value, 1);
  assert.equal(bad.labels.response_flags, 'UH');

  const expectedLe = [...ISTIO_DEFAULT_BUCKETS.map(String), '+Inf'];
  assert.deepEqual(expectedLe, [
    '0.5',
    '1',
    '5',
    '10',
    '25',
    '50',
    '100',
    '250',
    '500',
    '1000',
    '2500',
    '5000',
    '10000',
    '30000',
    '60000',
    '300000',
    '600000',
    '1800000',
    '3600000',
    '+Inf',
  ]);
  for (const hist of [
    'istio_request_duration_milliseconds',
    'istio_request_bytes',
    'istio_response_bytes',
  ]) {
    const buckets = samples(text, `${hist}_bucket`).filter((s) => s.labels.response_code === '200');
    assert.deepEqual(
      buckets.map((b) => b.labels.le),
      expectedLe,
      hist,
    );
    assert.equal(
      samples(text, `${hist}_count`).find((s) => s.labels.response_code === '200')?.value,
      2,
    );
  }
  const dur = samples(text, 'istio_request_duration_milliseconds_bucket').filter(
    (s) => s.labels.response_code === '200',
  );
  const le = (v: string): number | undefined => dur.find((b) => b.labels.le === v)?.value;
  // Prometheus buckets are upper-inclusive: 5 ms counts in le="5".
  assert.equal(le('1'), 0);
  assert.equal(le('5'), 1);
  assert.equal(le('50'), 1);
  assert.equal(le('100'), 2);
  assert.equal(
    samples(text, 'istio_request_duration_milliseconds_sum').find(
      (s) => s.labels.response_code === '200',
    )?.value,
    75,
  );

  assert.equal(samples(text, 'istio_tcp_sent_bytes_total')[0]?.value, 105);
  assert.equal(samples(text, 'istio_tcp_received_bytes_total')[0]?.value, 42);
  assert.equal(samples(text, 'istio_tcp_connections_opened_total')[0]?.value, 1);
  assert.equal(samples(text, 'istio_tcp_connections_closed_total')[0]?.value, 1);
  assert.deepEqual(samples(text, 'istio_tcp_connections_opened_total')[0]?.labels, tcp);
  assert.equal(samples(text, 'palisade_metrics_overflow_total')[0]?.value, 0);
});

test('cardinality guard: label sets beyond the cap are dropped and counted', async () => {
  const registry = new Registry();
  const metrics = createMeshMetrics({ registry, maxSeries: 5 });
  assert.equal(metrics.registry, registry);
  for (let i = 0; i < 8; i += 1) {
    const labels = requestLabels({
      reporter: 'destination',
      source: { ...productpage, workload: `w${i}` },
      destination: reviews,
      responseCode: 200,
    });
    metrics.recordRequest(labels, { durationMs: 1, requestBytes: 1, responseBytes: 1 });
    // A repeat of an admitted set is still recorded.
    if (i < 5) metrics.recordRequest(labels, { durationMs: 1, requestBytes: 1, responseBytes: 1 });
  }
  const tcp = tcpLabels({ reporter: 'source', source: productpage, destination: reviews });
  metrics.recordTcpOpen(tcp);
  assert.equal(metrics.seriesCount, 5);
  const text = await registry.metrics();
  const total = samples(text, 'istio_requests_total');
  assert.equal(total.length, 5);
  assert.ok(total.every((s) => s.value === 2));
  assert.equal(samples(text, 'istio_tcp_connections_opened_total').length, 0);
  assert.equal(samples(text, 'palisade_metrics_overflow_total')[0]?.value, 4);
});

test('recording never throws on odd measurements', () => {
  const metrics = createMeshMetrics();
  const labels = requestLabels({
    reporter: 'source',
    source: {},
    destination: {},
    responseCode: 0,
  });
  metrics.recordRequest(labels, {
    durationMs: Number.NaN,
    requestBytes: -1,
    responseBytes: Infinity,
  });
  metrics.recordTcpBytes(tcpLabels({ reporter: 'source', source: {}, destination: {} }), {
    sent: -5,
    received: Number.NaN,
  });
  assert.equal(metrics.seriesCount, 2);
});
