/**
 * Istio standard metrics for the Palisade proxy, so dashboards and PromQL
 * written for Envoy sidecars work unchanged: the same metric names, label
 * names, label value conventions and histogram buckets as Istio's stats
 * extension ("Istio Standard Metrics", istio.io/latest/docs/reference/config/metrics).
 *
 * Recording goes through prom-client. A cardinality guard caps the number of
 * distinct label sets; label sets beyond the cap are not recorded and are
 * counted in `palisade_metrics_overflow_total`, so a flood of distinct peers
 * cannot grow the proxy's memory or the scrape without bound.
 */
import { Counter, Histogram, Registry } from 'prom-client';

/**
 * Envoy's default histogram bucket boundaries, which Istio uses for all three
 * of its distributions (duration in ms, request and response body sizes in
 * bytes) unless a pod sets `sidecar.istio.io/statsHistogramBuckets`.
 */
export const ISTIO_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
]);

/** Default cap on distinct label sets across all Istio metrics of one registry. */
export const DEFAULT_MAX_SERIES = 10_000;

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
): Record<(typeof PEER_LABEL_NAMES)[number], string> {
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
  return {
    ...peerLabels(input.reporter, input.source, input.destination, protocol),
    response_code: String(input.responseCode),
    grpc_response_status: grpc,
    response_flags:
      input.responseFlags === undefined || input.responseFlags === '' ? '-' : input.responseFlags,
    connection_security_policy: securityPolicy(input.reporter, input.mutualTls),
  };
}

/** Builds the label set of one TCP connection (`request_protocol="tcp"`). */
export function tcpLabels(input: TcpLabelsInput): IstioTcpLabels {
  return {
    ...peerLabels(input.reporter, input.source, input.destination, 'tcp'),
    response_flags:
      input.responseFlags === undefined || input.responseFlags === '' ? '-' : input.responseFlags,
    connection_security_policy: securityPolicy(input.reporter, input.mutualTls),
  };
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

/**
 * Creates the Istio standard metrics in `options.registry` (or a fresh
 * registry): four HTTP metrics, four TCP metrics and the overflow counter.
 */
export function createMeshMetrics(options: MeshMetricsOptions = {}): MeshMetrics {
  const registry = options.registry ?? new Registry();
  const maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  const registers = [registry];
  const requestNames = [...REQUEST_LABEL_NAMES];
  const tcpNames = [...TCP_LABEL_NAMES];
  const buckets = [...ISTIO_DEFAULT_BUCKETS];

  const requests = new Counter({
    name: 'istio_requests_total',
    help: 'Requests handled by the proxy (Istio standard metric).',
    labelNames: requestNames,
    registers,
  });
  const duration = new Histogram({
    name: 'istio_request_duration_milliseconds',
    help: 'Request duration in milliseconds (Istio standard metric).',
    labelNames: requestNames,
    buckets,
    registers,
  });
  const requestBytes = new Histogram({
    name: 'istio_request_bytes',
    help: 'HTTP request body sizes in bytes (Istio standard metric).',
    labelNames: requestNames,
    buckets,
    registers,
  });
  const responseBytes = new Histogram({
    name: 'istio_response_bytes',
    help: 'HTTP response body sizes in bytes (Istio standard metric).',
    labelNames: requestNames,
    buckets,
    registers,
  });
  const tcpSent = new Counter({
    name: 'istio_tcp_sent_bytes_total',
    help: 'Bytes sent during response on TCP connections (Istio standard metric).',
    labelNames: tcpNames,
    registers,
  });
  const tcpReceived = new Counter({
    name: 'istio_tcp_received_bytes_total',
    help: 'Bytes received during request on TCP connections (Istio standard metric).',
    labelNames: tcpNames,
    registers,
  });
  const tcpOpened = new Counter({
    name: 'istio_tcp_connections_opened_total',
    help: 'TCP connections opened (Istio standard metric).',
    labelNames: tcpNames,
    registers,
  });
  const tcpClosed = new Counter({
    name: 'istio_tcp_connections_closed_total',
    help: 'TCP connections closed (Istio standard metric).',
    labelNames: tcpNames,
    registers,
  });
  const overflow = new Counter({
    name: 'palisade_metrics_overflow_total',
    help: 'Observations dropped because the Istio metrics reached their cap on distinct label sets.',
    registers,
  });

  // Label sets admitted so far, keyed by their values joined with a separator
  // that cannot appear in a header-derived value.
  const admitted = new Set<string>();
  const admit = (prefix: string, labels: Readonly<Record<string, string>>): boolean => {
    let key = prefix;
    for (const k in labels) key += '\u0000' + (labels[k] ?? '');
    if (admitted.has(key)) return true;
    if (admitted.size >= maxSeries) {
      overflow.inc();
      return false;
    }
    admitted.add(key);
    return true;
  };
  const nonNegative = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);

  return {
    registry,
    get seriesCount() {
      return admitted.size;
    },
    recordRequest(labels, m) {
      if (!admit('h', labels)) return;
      requests.inc(labels);
      duration.observe(labels, nonNegative(m.durationMs));
      requestBytes.observe(labels, nonNegative(m.requestBytes));
      responseBytes.observe(labels, nonNegative(m.responseBytes));
    },
    recordTcpOpen(labels) {
      if (!admit('t', labels)) return;
      tcpOpened.inc(labels);
    },
    recordTcpClose(labels) {
      if (!admit('t', labels)) return;
      tcpClosed.inc(labels);
    },
    recordTcpBytes(labels, bytes) {
      if (!admit('t', labels)) return;
      tcpSent.inc(labels, nonNegative(bytes.sent));
      tcpReceived.inc(labels, nonNegative(bytes.received));
    },
  };
}
