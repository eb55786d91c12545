/**
 * The Envoy Cluster and ClusterLoadAssignment subset Palisade speaks, as one
 * set of types for both ends of xDS: the control-plane compiler builds these
 * objects (src/control/compiler/clusters.ts) and the proxy compiles the
 * decoded ones (src/proxy/config/cluster-config.ts), so a field is named in
 * one place. Field names are the protos' (snake_case). Values are as
 * protobufjs writes and decodes them with this repository's options: 64-bit
 * integers may be strings, enums are names, wrappers are `{ value }`.
 */

/** A google.protobuf wrapper (UInt32Value, UInt64Value, ...). */
export interface WrappedNumber {
  value: number | string;
}

/** A google.protobuf.Duration. */
export interface Duration {
  seconds?: number | string;
  nanos?: number;
}

/** config.core.v3.SocketAddress (TCP). */
export interface SocketAddress {
  address: string;
  port_value: number;
}

export type HealthStatus =
  'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

/** endpoint.v3.LbEndpoint. */
export interface LbEndpoint {
  endpoint?: { address?: { socket_address?: SocketAddress } };
  health_status?: HealthStatus;
  metadata?: { filter_metadata?: Record<string, unknown> };
}

/** endpoint.v3.ClusterLoadAssignment (EDS, or a STATIC cluster's `load_assignment`). */
export interface ClusterLoadAssignment {
  '@type'?: string;
  cluster_name?: string;
  endpoints?: {
    locality?: Record<string, unknown>;
    load_balancing_weight?: WrappedNumber;
    lb_endpoints?: LbEndpoint[];
  }[];
  /** Accepted and ignored (overprovisioning and drop overloads are not implemented). */
  policy?: Record<string, unknown>;
}

/** cluster.v3.Cluster.LbPolicy values this build implements. */
export type LbPolicy =
  'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'CLUSTER_PROVIDED' | 'RING_HASH' | 'MAGLEV';

/** cluster.v3.CircuitBreakers.Thresholds. */
export interface CircuitBreakerThresholds {
  priority?: 'DEFAULT' | 'HIGH';
  max_connections?: WrappedNumber;
  max_pending_requests?: WrappedNumber;
  max_requests?: WrappedNumber;
  max_retries?: WrappedNumber;
}

/** cluster.v3.OutlierDetection. */
export interface OutlierDetection {
  consecutive_5xx?: WrappedNumber;
  enforcing_consecutive_5xx?: WrappedNumber;
  consecutive_gateway_failure?: WrappedNumber;
  enforcing_consecutive_gateway_failure?: WrappedNumber;
  interval?: Duration;
  base_ejection_time?: Duration;
  max_ejection_percent?: WrappedNumber;
}

/** config.core.v3.TransportSocket (its TLS context is read by upstream-tls.ts). */
export interface TransportSocket {
  name: string;
  typed_config: Record<string, unknown>;
}

/** config.core.v3.HealthCheck: HTTP or TCP (connect-only) checks. */
export type HealthCheck = {
  timeout?: Duration;
  interval?: Duration;
  unhealthy_threshold?: WrappedNumber;
  healthy_threshold?: WrappedNumber;
  http_health_check?: {
    path?: string;
    host?: string;
    /** Half-open status ranges [start, end). */
    expected_statuses?: { start?: number | string; end?: number | string }[];
    request_headers_to_add?: { header?: { key?: string; value?: string } }[];
  };
  tcp_health_check?: Record<string, unknown>;
};

/** cluster.v3.Cluster: the fields Palisade writes and the proxy honours (others are NACKed). */
export interface Cluster {
  '@type'?: string;
  name: string;
  type?: 'EDS' | 'STATIC' | 'ORIGINAL_DST';
  eds_cluster_config?: { eds_config?: Record<string, unknown>; service_name?: string };
  connect_timeout?: Duration;
  lb_policy?: LbPolicy;
  ring_hash_lb_config?: { minimum_ring_size?: WrappedNumber; maximum_ring_size?: WrappedNumber };
  maglev_lb_config?: { table_size?: WrappedNumber };
  circuit_breakers?: { thresholds?: CircuitBreakerThresholds[] };
  outlier_detection?: OutlierDetection;
  max_requests_per_connection?: WrappedNumber;
  transport_socket?: TransportSocket;
  /** By extension name: upstream HttpProtocolOptions. */
  typed_extension_protocol_options?: Record<string, Record<string, unknown>>;
  load_assignment?: ClusterLoadAssignment;
  health_checks?: HealthCheck[];
  /** Filter metadata (Istio's `istio` block): carried, not read by the proxy. */
  metadata?: { filter_metadata?: Record<string, unknown> };
}

/** A typed resource as the ADS server and client hold it: an opaque decoded message. */
export function asResource(typed: Cluster | ClusterLoadAssignment): Record<string, unknown> {
  return typed as Record<string, unknown>;
}
