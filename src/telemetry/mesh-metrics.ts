/**
 * Istio standard metrics for the Palisade proxy, so dashboards and PromQL
 * written for Envoy sidecars work unchanged: the same metric names, label
 * names, label value conventions and histogram buckets as Istio's stats
 * extension ("Istio Standard Metrics", istio.io/latest/docs/reference/config/metrics).
 *
 * Observations accumulate in per-label-set records (one Map lookup per
 * request) and a prom-client Registry formats them at scrape time. A
 * cardinality guard caps the number of distinct label sets; label sets beyond
 * the cap are not recorded and are counted in `palisade_metrics_overflow_total`,
 * so a flood of distinct peers cannot grow the proxy's memory or the scrape
 * without bound.
 */
import { createRequire } from 'node:module';
import type { Metric, Registry } from 'prom-client';

/**
 * prom-client's Registry class alone. Its index also loads the push gateway,
 * the cluster aggregator, default metrics and the summary's t-digest
 * (node:cluster, node:zlib, perf_hooks…): about 9 MB more RSS in every proxy
 * for code a proxy never runs (issue 22: idle RSS). The package has no
 * `exports` map, so this is the same module file the index loads: a registry
 * made from either is the same class.
 */
const RegistryClass = createRequire(import.meta.url)(
  'prom-client/lib/registry.js',
) as new () => Registry;

/**
 * Envoy's default histogram bucket boundaries, which Istio uses for all three
 * of its distributions (duration in ms, request and response body sizes in
 * bytes) unless a pod sets `sidecar.istio.io/statsHistogramBuckets`.
 */
export const ISTIO_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
]);

/**
 * Default cap on distinct label sets across all Istio metrics of one
 * registry. The scrape is the binding limit, not memory: one HTTP label set
 * is ~59 kB of exposition text (67 lines of 25 labels) and prom-client
 * formats one in 1–2 ms, so 1,000 sets ≈ 60 MB and 1–2 s per scrape;
 * 10,000 would pass V8's maximum string length (bench/telemetry.bench.ts).
 */
export const DEFAULT_MAX_SERIES = 1_000;

/** The value Istio uses for a label it cannot determine. */
export const UNKNOWN = 'unknown';

/** Who reports the metric: `source` = client-side (outbound) proxy, `destination` = server-side (inbound). */
export type Reporter = 'source' | 'destination';

/** Istio's `request_protocol` values. */
export type RequestProtocol = 'http' | 'grpc' | 'tcp';

/** What the proxy knows about one end of a request. Absent or empty fields become `unknown`. */
export interface PeerInfo {
  /** Workload name (Deployment name on Kubernetes; the `Workload` name locally). */
  readonly workload?: string | undefined;
  /** Namespace of the workload. */
  readonly namespace?: string | undefined;
  /** Full SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/reviews` (only when authenticated by mTLS). */
  readonly principal?: string | undefined;
  /** The `app` label. */
  readonly app?: string | undefined;
  /** The `version` label. */
  readonly version?: string | undefined;
  /** Cluster id (Istio's default is `Kubernetes`). */
  readonly cluster?: string | undefined;
  /** Destination only: the service host, e.g. `reviews.default.svc.cluster.local`. */
  readonly service?: string | undefined;
  /** Destination only: overrides the short service name derived from `service`. */
  readonly serviceName?: string | undefined;
  /** Destination only: overrides the service namespace derived from `service`. */
  readonly serviceNamespace?: string | undefined;
  /** `service.istio.io/canonical-name`; defaults to `app`, then `workload`. */
  readonly canonicalService?: string | undefined;
  /** `service.istio.io/canonical-revision`; defaults to `version`, then `latest`. */
  readonly canonicalRevision?: string | undefined;
}

/** Input of {@link requestLabels}. */
export interface RequestLabelsInput {
  readonly reporter: Reporter;
  readonly source: PeerInfo;
  readonly destination: PeerInfo;
  /** `http` (HTTP/1.1 and HTTP/2) or `grpc`; default `http`. */
  readonly protocol?: 'http' | 'grpc' | undefined;
  /** HTTP status sent downstream; 0 when no response was sent (Envoy's convention). */
  readonly responseCode: number;
  /** gRPC status (the `grpc-status` trailer) for gRPC requests. */
  readonly grpcStatus?: number | string | undefined;
  /** Envoy response flags (`UH`, `UF,URX`, …); absent or empty → `-`. */
  readonly responseFlags?: string | undefined;
  /** Whether the hop was authenticated with mutual TLS (only reported by the destination). */
  readonly mutualTls?: boolean | undefined;
}

/** Input of {@link tcpLabels}: like {@link RequestLabelsInput} without HTTP fields. */
export interface TcpLabelsInput {
  readonly reporter: Reporter;
  readonly source: PeerInfo;
  readonly destination: PeerInfo;
  readonly responseFlags?: string | undefined;
  readonly mutualTls?: boolean | undefined;
}

/** Labels shared by Istio's HTTP and TCP metrics, in the order Envoy emits them. */
export const PEER_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
] as const;

/** Label names of the HTTP/gRPC metrics (`istio_requests_total` and the three histograms). */
export const REQUEST_LABEL_NAMES = [
  ...PEER_LABEL_NAMES,
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** Label names of the TCP metrics (Istio leaves out `response_code` and `grpc_response_status`). */
export const TCP_LABEL_NAMES = [
  ...PEER_LABEL_NAMES,
  'response_flags',
  'connection_security_policy',
] as const;

/** A complete label set for the HTTP/gRPC metrics. */
export type IstioRequestLabels = Readonly<Record<(typeof REQUEST_LABEL_NAMES)[number], string>>;
/** A complete label set for the TCP metrics. */
export type IstioTcpLabels = Readonly<Record<(typeof TCP_LABEL_NAMES)[number], string>>;

function v(value: string | undefined): string {
  return value === undefined || value === '' ? UNKNOWN : value;
}

/**
 * `destination_service_name`/`_namespace` from a Kubernetes service host
 * (`name.namespace.svc.<domain>`); other hosts (ServiceEntry, external) keep
 * the host as the name and an unknown namespace, as Istio reports them.
 */
function serviceParts(peer: PeerInfo): [name: string, namespace: string] {
  const host = peer.service;
  let name: string | undefined;
  let ns: string | undefined;
  if (host !== undefined && host !== '') {
    const parts = host.split('.');
    if (parts.length >= 3 && parts[2] === 'svc') {
      name = parts[0];
      ns = parts[1];
    } else {
      name = host;
    }
  }
  return [v(peer.serviceName ?? name), v(peer.serviceNamespace ?? ns)];
}

function peerLabels(
  reporter: Reporter,
  source: PeerInfo,
  destination: PeerInfo,
  protocol: RequestProtocol,
): Record<string, string> {
  const [serviceName, serviceNamespace] = serviceParts(destination);
  return {
    reporter,
    source_workload: v(source.workload),
    source_canonical_service: v(source.canonicalService ?? source.app ?? source.workload),
    source_canonical_revision: source.canonicalRevision ?? source.version ?? 'latest',
    source_workload_namespace: v(source.namespace),
    source_principal: v(source.principal),
    source_app: v(source.app),
    source_version: v(source.version),
    source_cluster: v(source.cluster),
    destination_workload: v(destination.workload),
    destination_workload_namespace: v(destination.namespace),
    destination_principal: v(destination.principal),
    destination_app: v(destination.app),
    destination_version: v(destination.version),
    destination_service: v(destination.service),
    destination_canonical_service: v(
      destination.canonicalService ?? destination.app ?? destination.workload,
    ),
    destination_canonical_revision:
      destination.canonicalRevision ?? destination.version ?? 'latest',
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_cluster: v(destination.cluster),
    request_protocol: protocol,
  };
}

/**
 * Istio: `connection_security_policy` is `mutual_tls` or `none` as seen by
 * the destination; the source cannot know the server's policy and reports
 * `unknown`.
 */
function securityPolicy(reporter: Reporter, mutualTls: boolean | undefined): string {
  if (reporter === 'source') return UNKNOWN;
  return mutualTls === true ? 'mutual_tls' : 'none';
}

/**
 * Builds the label set of one HTTP or gRPC request with Istio's value
 * conventions: `unknown` for what is not known, `-` for no response flags,
 * `grpc_response_status` empty for plain HTTP, canonical service/revision
 * defaulting to app/version (then workload / `latest`).
 */
export function requestLabels(input: RequestLabelsInput): IstioRequestLabels {
  const protocol = input.protocol ?? 'http';
  const grpc =
    protocol === 'grpc'
      ? input.grpcStatus === undefined || input.grpcStatus === ''
        ? UNKNOWN
        : String(input.grpcStatus)
      : '';
  // Extends one object in place: spreading 21 labels into a new literal costs more.
  const labels = peerLabels(input.reporter, input.source, input.destination, protocol);
  labels.response_code = String(input.responseCode);
  labels.grpc_response_status = grpc;
  labels.response_flags =
    input.responseFlags === undefined || input.responseFlags === '' ? '-' : input.responseFlags;
  labels.connection_security_policy = securityPolicy(input.reporter, input.mutualTls);
  return labels as IstioRequestLabels;
}

/** Builds the label set of one TCP connection (`request_protocol="tcp"`). */
export function tcpLabels(input: TcpLabelsInput): IstioTcpLabels {
  const labels = peerLabels(input.reporter, input.source, input.destination, 'tcp');
  labels.response_flags =
    input.responseFlags === undefined || input.responseFlags === '' ? '-' : input.responseFlags;
  labels.connection_security_policy = securityPolicy(input.reporter, input.mutualTls);
  return labels as IstioTcpLabels;
}

/** Sizes and duration of one finished HTTP/gRPC request. */
export interface RequestMeasurements {
  /** From the first byte received downstream to the last byte sent, in milliseconds. */
  readonly durationMs: number;
  /** Request body bytes. */
  readonly requestBytes: number;
  /** Response body bytes. */
  readonly responseBytes: number;
}

/** Bytes moved on a TCP connection since the last report. */
export interface TcpBytes {
  /** Bytes sent towards the downstream (the response direction). */
  readonly sent: number;
  /** Bytes received from the downstream (the request direction). */
  readonly received: number;
}

/** Options of {@link createMeshMetrics}. */
export interface MeshMetricsOptions {
  /** Registry to register into; a new one by default. */
  readonly registry?: Registry | undefined;
  /** Cap on distinct label sets (HTTP and TCP together); default {@link DEFAULT_MAX_SERIES}. */
  readonly maxSeries?: number | undefined;
}

/** A relayed TCP connection's life, for the `istio_tcp_*` metrics. */
export type TcpEvent =
  | { readonly event: 'open' }
  | { readonly event: 'close'; readonly sentBytes: number; readonly receivedBytes: number };

/** The proxy's Istio metrics. Recording never throws. */
export interface MeshMetrics {
  /** Serve `await registry.metrics()` with `registry.contentType` on `/stats/prometheus`. */
  readonly registry: Registry;
  /** One finished HTTP/gRPC request: `istio_requests_total` and the three histograms. */
  recordRequest(labels: IstioRequestLabels, m: RequestMeasurements): void;
  /** A TCP connection was accepted/opened. */
  recordTcpOpen(labels: IstioTcpLabels): void;
  /** A TCP connection closed. */
  recordTcpClose(labels: IstioTcpLabels): void;
  /** Bytes moved on a TCP connection (call as data flows or once at close). */
  recordTcpBytes(labels: IstioTcpLabels, bytes: TcpBytes): void;
  /** Number of distinct label sets currently admitted. */
  readonly seriesCount: number;
}

/** One HTTP label set's accumulated observations. */
interface RequestSeries {
  readonly labels: IstioRequestLabels;
  count: number;
  durationSum: number;
  requestSum: number;
  responseSum: number;
  /** Per-bucket (not cumulative) counts; the last slot is `+Inf`. */
  readonly duration: Float64Array;
  readonly request: Float64Array;
  readonly response: Float64Array;
}

/** One TCP label set's counters. */
interface TcpSeries {
  readonly labels: IstioTcpLabels;
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

/** A sample in prom-client's `get()` shape. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}

/**
 * One metric family served by a prom-client Registry: the registry calls
 * `get()` at scrape time and formats (and escapes) the samples itself, as
 * for its own metric classes.
 */
function family(
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  samples: () => Sample[],
  reset: () => void,
): Metric {
  const get = (): Promise<unknown> =>
    Promise.resolve({ name, help, type, aggregator: 'sum', values: samples() });
  // prom-client types registerMetric() with its own classes; its Registry
  // needs only name, get() (and reset() for resetMetrics()).
  return { name, help, type, aggregator: 'sum', get, reset } as unknown as Metric;
}

function bucketIndex(value: number): number {
  let i = 0;
  while (i < ISTIO_DEFAULT_BUCKETS.length && value > (ISTIO_DEFAULT_BUCKETS[i] ?? Infinity)) i++;
  return i;
}

/** Counts `value` in its (non-cumulative) bucket. */
function bump(buckets: Float64Array, value: number): void {
  const i = bucketIndex(value);
  buckets[i] = (buckets[i] ?? 0) + 1;
}

function histogramSamples(
  name: string,
  series: Iterable<RequestSeries>,
  pick: (s: RequestSeries) => [Float64Array, number],
): Sample[] {
  const out: Sample[] = [];
  for (const s of series) {
    const [buckets, sum] = pick(s);
    let cumulative = 0;
    for (let i = 0; i < buckets.length; i++) {
      cumulative += buckets[i] ?? 0;
      out.push({
        labels: { ...s.labels, le: ISTIO_DEFAULT_BUCKETS[i] ?? '+Inf' },
        value: cumulative,
        metricName: `${name}_bucket`,
      });
    }
    out.push({ labels: s.labels, value: sum, metricName: `${name}_sum` });
    out.push({ labels: s.labels, value: s.count, metricName: `${name}_count` });
  }
  return out;
}

/**
 * Creates the Istio standard metrics in `options.registry` (or a fresh
 * registry): four HTTP metrics, four TCP metrics and the overflow counter.
 *
 * Recording is one Map lookup and a few additions per request: observations
 * accumulate in per-label-set records and the registry reads them at scrape
 * time. (prom-client's own Counter/Histogram re-hash and re-validate all 25
 * labels on every call, about 15 µs per request for the four metrics; see
 * bench/telemetry.bench.ts.)
 */
export function createMeshMetrics(options: MeshMetricsOptions = {}): MeshMetrics {
  const registry = options.registry ?? new RegistryClass();
  const maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  const nb = ISTIO_DEFAULT_BUCKETS.length + 1;

  const http = new Map<string, RequestSeries>();
  const tcp = new Map<string, TcpSeries>();
  let overflow = 0;

  const key = (labels: Readonly<Record<string, string>>): string => {
    let k = '';
    for (const name in labels) k += (labels[name] ?? '') + '\u0000';
    return k;
  };
  const full = (): boolean => {
    if (http.size + tcp.size < maxSeries) return false;
    overflow += 1;
    return true;
  };
  // A caller that reuses its label objects (telemetry-hooks.ts caches them) skips the 25-label
  // key: the record is found by the object's identity. Cleared with the series on reset.
  let byObject = new WeakMap<IstioRequestLabels, RequestSeries>();
  const httpSeries = (labels: IstioRequestLabels): RequestSeries | undefined => {
    const known = byObject.get(labels);
    if (known !== undefined) return known;
    const k = key(labels);
    let s = http.get(k);
    if (s === undefined) {
      if (full()) return undefined;
      s = {
        labels,
        count: 0,
        durationSum: 0,
        requestSum: 0,
        responseSum: 0,
        duration: new Float64Array(nb),
        request: new Float64Array(nb),
        response: new Float64Array(nb),
      };
      http.set(k, s);
    }
    byObject.set(labels, s);
    return s;
  };
  const tcpSeries = (labels: IstioTcpLabels): TcpSeries | undefined => {
    const k = key(labels);
    let s = tcp.get(k);
    if (s === undefined) {
      if (full()) return undefined;
      s = { labels, opened: 0, closed: 0, sent: 0, received: 0 };
      tcp.set(k, s);
    }
    return s;
  };
  const nonNegative = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);

  const resetHttp = (): void => {
    http.clear();
    byObject = new WeakMap();
  };
  const resetTcp = (): void => {
    tcp.clear();
  };
  const counterSamples =
    <S extends { labels: Readonly<Record<string, string>> }>(
      map: Map<string, S>,
      pick: (s: S) => number,
    ) =>
    (): Sample[] =>
      Array.from(map.values(), (s) => ({ labels: s.labels, value: pick(s) }));

  for (const metric of [
    family(
      'palisade_metrics_overflow_total',
      'Observations dropped because the Istio metrics reached their cap on distinct label sets.',
      'counter',
      () => [{ labels: {}, value: overflow }],
      () => {
        overflow = 0;
      },
    ),
    family(
      'istio_requests_total',
      'Requests handled by the proxy (Istio standard metric).',
      'counter',
      counterSamples(http, (s) => s.count),
      resetHttp,
    ),
    family(
      'istio_request_duration_milliseconds',
      'Request duration in milliseconds (Istio standard metric).',
      'histogram',
      () =>
        histogramSamples('istio_request_duration_milliseconds', http.values(), (s) => [
          s.duration,
          s.durationSum,
        ]),
      resetHttp,
    ),
    family(
      'istio_request_bytes',
      'HTTP request body sizes in bytes (Istio standard metric).',
      'histogram',
      () =>
        histogramSamples('istio_request_bytes', http.values(), (s) => [s.request, s.requestSum]),
      resetHttp,
    ),
    family(
      'istio_response_bytes',
      'HTTP response body sizes in bytes (Istio standard metric).',
      'histogram',
      () =>
        histogramSamples('istio_response_bytes', http.values(), (s) => [s.response, s.responseSum]),
      resetHttp,
    ),
    family(
      'istio_tcp_sent_bytes_total',
      'Bytes sent during response on TCP connections (Istio standard metric).',
      'counter',
      counterSamples(tcp, (s) => s.sent),
      resetTcp,
    ),
    family(
      'istio_tcp_received_bytes_total',
      'Bytes received during request on TCP connections (Istio standard metric).',
      'counter',
      counterSamples(tcp, (s) => s.received),
      resetTcp,
    ),
    family(
      'istio_tcp_connections_opened_total',
      'TCP connections opened (Istio standard metric).',
      'counter',
      counterSamples(tcp, (s) => s.opened),
      resetTcp,
    ),
    family(
      'istio_tcp_connections_closed_total',
      'TCP connections closed (Istio standard metric).',
      'counter',
      counterSamples(tcp, (s) => s.closed),
      resetTcp,
    ),
  ]) {
    registry.registerMetric(metric);
  }

  return {
    registry,
    get seriesCount() {
      return http.size + tcp.size;
    },
    recordRequest(labels, m) {
      const s = httpSeries(labels);
      if (s === undefined) return;
      const d = nonNegative(m.durationMs);
      const q = nonNegative(m.requestBytes);
      const r = nonNegative(m.responseBytes);
      s.count += 1;
      s.durationSum += d;
      s.requestSum += q;
      s.responseSum += r;
      bump(s.duration, d);
      bump(s.request, q);
      bump(s.response, r);
    },
    recordTcpOpen(labels) {
      const s = tcpSeries(labels);
      if (s !== undefined) s.opened += 1;
    },
    recordTcpClose(labels) {
      const s = tcpSeries(labels);
      if (s !== undefined) s.closed += 1;
    },
    recordTcpBytes(labels, bytes) {
      const s = tcpSeries(labels);
      if (s === undefined) return;
      s.sent += nonNegative(bytes.sent);
      s.received += nonNegative(bytes.received);
    },
  };
}
