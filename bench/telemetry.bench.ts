/**
 * What telemetry costs the proxy per request: Istio metrics (labels +
 * prom-client recording), one access log line, trace propagation, and all of
 * it together, beside references in the same run: doing nothing (the loop),
 * pino writing the same access-log object (the alternative we did not pick),
 * and one loopback HTTP/1.1 request through node:http (what a request costs
 * the proxy anyway). Labels cycle through 200 distinct peer/status sets.
 * Also: the peer metadata exchange of one request (both sidecars' work) and
 * exporting one span (queue, JSON encoding, POST to a loopback receiver,
 * amortised over batches of 512).
 *
 * Run: node --expose-gc dist/bench/telemetry.bench.js
 */
import { createServer, Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  childSpan,
  createMeshMetrics,
  ensureRequestId,
  formatAccessLog,
  injectTraceContext,
  parseTraceContext,
  requestLabels,
  createOtlpExporter,
  createPeerMetadataExchange,
  newRootSpan,
  unixNanoNow,
  type AccessLogEntry,
  type PeerInfo,
} from '../src/telemetry/index.js';

const OPS = 20_000;
const ROUNDS = 5;

const peers: PeerInfo[] = Array.from({ length: 20 }, (_, i) => ({
  workload: `app${i}-v1`,
  namespace: `ns${i % 4}`,
  principal: `spiffe://cluster.local/ns/ns${i % 4}/sa/app${i}`,
  app: `app${i}`,
  version: 'v1',
  cluster: 'Kubernetes',
}));
const self: PeerInfo = {
  workload: 'reviews-v2',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
  app: 'reviews',
  version: 'v2',
  cluster: 'Kubernetes',
  service: 'reviews.default.svc.cluster.local',
};
const codes = [200, 201, 204, 301, 400, 403, 404, 500, 502, 503];
/** 20 peers × 10 codes = 200 label sets. */
const code = (i: number): number => codes[Math.floor(i / peers.length) % codes.length] ?? 200;
const headers = {
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'congo=t61rcWkgMzE',
  'x-request-id': 'a4cadca4-662f-4a9c-9f6b-5d1f0e2a1b3c',
  'user-agent': 'curl/8.0.1',
};
const entry = (i: number): AccessLogEntry => ({
  startTime: 1_771_929_045_123 + i,
  method: 'GET',
  path: `/reviews/${i % 100}`,
  protocol: 'HTTP/1.1',
  responseCode: code(i),
  responseCodeDetails: 'via_upstream',
  bytesReceived: 0,
  bytesSent: 295,
  durationMs: 4,
  upstreamServiceTimeMs: 3,
  userAgent: 'curl/8.0.1',
  requestId: headers['x-request-id'],
  authority: 'reviews:9080',
  upstreamHost: '127.0.0.1:9080',
  upstreamCluster: 'inbound|9080||',
  downstreamLocalAddress: '127.0.0.2:15006',
  downstreamRemoteAddress: '127.0.0.3:41234',
  routeName: 'default',
});

let sinkBytes = 0;
const sink = new Writable({
  write(chunk: Buffer | string, _enc, cb) {
    sinkBytes += chunk.length;
    cb();
  },
});

const metrics = createMeshMetrics();
const pinoLogger = pino({ base: null, timestamp: false, formatters: { level: () => ({}) } }, sink);

function recordMetrics(i: number): void {
  const labels = requestLabels({
    reporter: 'destination',
    source: peers[i % peers.length]!,
    destination: self,
    responseCode: code(i),
    mutualTls: true,
  });
  metrics.recordRequest(labels, { durationMs: 4, requestBytes: 0, responseBytes: 295 });
}
function accessLog(i: number): void {
  sink.write(formatAccessLog(entry(i)));
}
function pinoAccessLog(i: number): void {
  const e = entry(i);
  pinoLogger.info({
    authority: e.authority,
    bytes_received: e.bytesReceived,
    bytes_sent: e.bytesSent,
    connection_termination_details: null,
    downstream_local_address: e.downstreamLocalAddress,
    downstream_remote_address: e.downstreamRemoteAddress,
    duration: e.durationMs,
    method: e.method,
    path: e.path,
    protocol: e.protocol,
    request_id: e.requestId,
    requested_server_name: null,
    response_code: e.responseCode,
    response_code_details: e.responseCodeDetails,
    response_flags: '-',
    route_name: e.routeName,
    start_time: new Date(e.startTime).toISOString(),
    upstream_cluster: e.upstreamCluster,
    upstream_host: e.upstreamHost,
    upstream_local_address: null,
    upstream_service_time: '3',
    upstream_transport_failure_reason: null,
    user_agent: e.userAgent,
    x_forwarded_for: null,
  });
}
function tracing(): void {
  const incoming: Record<string, string | string[] | undefined> = { ...headers };
  ensureRequestId(incoming);
  const span = childSpan(parseTraceContext(incoming));
  injectTraceContext(incoming, span);
}
function everything(i: number): void {
  tracing();
  recordMetrics(i);
  accessLog(i);
}

// Peer metadata exchange, both sides of one request: the client's sidecar adds its headers;
// the server's decodes and verifies them against the mTLS principal and answers with its own;
// the client's decodes and verifies those against the cluster's SANs; both strip them.
const clientSide = createPeerMetadataExchange(
  'sidecar~127.10.2.1~productpage-v1-0.default~default.svc.cluster.local',
  {
    NAME: 'productpage-v1-0',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'productpage-v1',
    SERVICE_ACCOUNT: 'bookinfo-productpage',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'productpage', version: 'v1' },
  },
);
const serverSide = createPeerMetadataExchange(
  'sidecar~127.10.3.1~reviews-v2-0.default~default.svc.cluster.local',
  {
    NAME: 'reviews-v2-0',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'reviews-v2',
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'reviews', version: 'v2' },
  },
);
const sans = [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }];
let exchanged = 0;
function metadataExchange(): void {
  const request: Record<string, unknown> = { ...headers };
  Object.assign(request, clientSide.headers);
  const client = serverSide.fromClient(
    request,
    'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
  );
  serverSide.strip(request);
  const response: Record<string, unknown> = { 'content-type': 'application/json' };
  if (client !== undefined) Object.assign(response, serverSide.headers);
  const server = clientSide.fromServer(response, sans);
  clientSide.strip(response);
  if (server?.workload === 'reviews-v2') exchanged += 1;
}

let blackhole = 0;
function nothing(i: number): void {
  blackhole += i;
}

/** Median ns per op over ROUNDS rounds of OPS calls. */
function measure(label: string, fn: (i: number) => void): number {
  const perOp: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    globalThis.gc?.();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) fn(i);
    perOp.push(Number(process.hrtime.bigint() - t0) / OPS);
  }
  perOp.sort((a, b) => a - b);
  const median = perOp[Math.floor(perOp.length / 2)] ?? 0;
  console.log(`${label.padEnd(52)} ${(median / 1000).toFixed(2).padStart(8)} µs/request`);
  return median;
}

async function loopbackRequestNs(): Promise<number> {
  const server = createServer((_req, res) => {
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const n = 2000;
  const perOp: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await one();
    perOp.push(Number(process.hrtime.bigint() - t0) / n);
  }
  agent.destroy();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  perOp.sort((a, b) => a - b);
  const median = perOp[1] ?? 0;
  console.log(
    `${'reference: one loopback HTTP/1.1 request (node:http)'.padEnd(52)} ${(median / 1000).toFixed(2).padStart(8)} µs/request`,
  );
  return median;
}

// Warm-up (JIT, and admits the 200 label sets).
for (const fn of [recordMetrics, accessLog, pinoAccessLog, tracing, everything, nothing]) {
  for (let i = 0; i < OPS; i++) fn(i);
}
const base = measure('reference: nothing (loop only)', nothing);
const m = measure('palisade: requestLabels + recordRequest', recordMetrics);
const log = measure('palisade: formatAccessLog + stream.write', accessLog);
const pinoNs = measure('reference: pino.info(same fields) to same stream', pinoAccessLog);
const tr = measure('palisade: request id + parse + child + inject', tracing);
const all = measure('palisade: all of the above per request', everything);
const md = measure('palisade: peer metadata exchange (both sidecars)', metadataExchange);
const http = await loopbackRequestNs();

/** One span: built as telemetry-hooks does, queued, encoded and POSTed in batches of 512. */
async function spanExportNs(): Promise<number> {
  // A collector that only drains the body: its work is not the proxy's.
  const collector = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const exporter = createOtlpExporter({
    endpoint: `http://127.0.0.1:${String((collector.address() as AddressInfo).port)}`,
    serviceName: 'reviews-v2.default',
    flushIntervalMs: 3_600_000,
    maxQueue: OPS,
  });
  const exportOne = (i: number): void => {
    const end = unixNanoNow();
    exporter.export({
      context: newRootSpan(),
      name: 'reviews.default.svc.cluster.local:9080/*',
      kind: 'server',
      startTimeUnixNano: end - 4_000_000n,
      endTimeUnixNano: end,
      attributes: {
        'http.method': 'GET',
        'http.url': `/reviews/${String(i % 100)}`,
        'http.protocol': 'HTTP/1.1',
        'http.status_code': code(i),
        'peer.principal': 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
        'istio.mutual_tls': true,
        node_id: 'sidecar~127.10.3.1~reviews-v2-0.default~default.svc.cluster.local',
        component: 'proxy',
      },
      status: { code: 'unset' },
    });
  };
  const perOp: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    globalThis.gc?.();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) exportOne(i);
    await exporter.flush();
    perOp.push(Number(process.hrtime.bigint() - t0) / OPS);
  }
  const stats = exporter.stats();
  await exporter.close();
  await new Promise<void>((resolve) => {
    collector.close(() => {
      resolve();
    });
    collector.closeAllConnections();
  });
  perOp.sort((a, b) => a - b);
  const median = perOp[Math.floor(perOp.length / 2)] ?? 0;
  console.log(
    `${'palisade: export one span (OTLP/HTTP JSON, batched)'.padEnd(52)} ${(median / 1000).toFixed(2).padStart(8)} µs/request  (exported ${String(stats.exported)}, dropped ${String(stats.dropped)}, failed ${String(stats.failed)}; wall time; the collector only drains)`,
  );
  return median;
}
const spanNs = await spanExportNs();
const s0 = process.hrtime.bigint();
const scrape = await metrics.registry.metrics();
const scrapeMs = Number(process.hrtime.bigint() - s0) / 1e6;
console.log(
  `scrape of ${metrics.seriesCount} label sets: ${scrapeMs.toFixed(1)} ms, ${(scrape.length / 1e6).toFixed(1)} MB (${Math.round(scrape.length / metrics.seriesCount / 1000)} kB per label set)`,
);
console.log(
  `ratios: all telemetry / one loopback request ${(all / http).toFixed(2)}; ` +
    `peer metadata exchange ${(md / http).toFixed(3)}; span export ${(spanNs / http).toFixed(3)}; ` +
    `metrics ${(m / http).toFixed(3)}; tracing ${(tr / http).toFixed(3)}; ` +
    `access log palisade/pino ${(log / pinoNs).toFixed(2)}; loop floor ${(base / 1000).toFixed(3)} µs; sink ${sinkBytes} B (checksum ${blackhole % 1000}, exchanged ${exchanged})`,
);
