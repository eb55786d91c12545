/**
 * Telemetry for the proxy, matching what Istio's Envoy sidecars emit:
 * Istio standard Prometheus metrics, JSON access logs in Istio's field names,
 * W3C/B3 trace propagation and OTLP/HTTP JSON span export.
 * See docs/telemetry.md for what the proxy calls per request.
 */
export {
  createMeshMetrics,
  requestLabels,
  tcpLabels,
  ISTIO_DEFAULT_BUCKETS,
  DEFAULT_MAX_SERIES,
  UNKNOWN,
  REQUEST_LABEL_NAMES,
  TCP_LABEL_NAMES,
  type IstioRequestLabels,
  type IstioTcpLabels,
  type MeshMetrics,
  type MeshMetricsOptions,
  type PeerInfo,
  type Reporter,
  type RequestLabelsInput,
  type RequestMeasurements,
  type RequestProtocol,
  type TcpBytes,
  type TcpEvent,
  type TcpLabelsInput,
} from './mesh-metrics.js';
export {
  formatAccessLog,
  createAccessLogger,
  ACCESS_LOG_FIELDS,
  type AccessLogEntry,
  type AccessLogger,
  type AccessLoggerOptions,
} from './access-log.js';
export {
  parseTraceContext,
  parseTraceparent,
  parseTraceState,
  parseB3Single,
  parseB3Multi,
  newRootSpan,
  childSpan,
  injectTraceContext,
  ensureRequestId,
  TRACE_HEADERS,
  type IncomingHeaders,
  type OutgoingHeaders,
  type InjectOptions,
  type RootSpanOptions,
  type SpanContext,
  type TraceFormat,
} from './trace-context.js';
export {
  createOtlpExporter,
  encodeOtlpTraces,
  unixNanoNow,
  type AttributeValue,
  type FinishedSpan,
  type OtlpExporter,
  type OtlpExporterOptions,
  type OtlpExporterStats,
  type OtlpResourceOptions,
  type SpanKind,
  type SpanStatusCode,
} from './otlp-exporter.js';
export {
  createPeerMetadataExchange,
  encodePeerMetadata,
  decodePeerMetadata,
  claimMatches,
  peerInfoOf,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  PEER_METADATA_FIELDS,
  MAX_PEER_METADATA_BYTES,
  stripPeerHeaders,
  type IdentityMatcher,
  type NodeMetadata,
  type PeerMetadataExchange,
} from './peer-metadata.js';
export {
  createTraceStore,
  startTraceReceiver,
  decodeOtlpProtobuf,
  encodeOtlpProtobuf,
  type StoredSpan,
  type TraceQuery,
  type TraceReceiver,
  type TraceStore,
  type TraceSummary,
} from './trace-store.js';
export { prometheusConfig, type PrometheusTarget } from './prometheus-config.js';
