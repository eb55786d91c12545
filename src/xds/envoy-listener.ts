/**
 * The Envoy Listener subset Palisade speaks (listener.v3 with its filter
 * chains, and the HttpConnectionManager and tcp_proxy network filters), as
 * one set of types for both ends of xDS: the control-plane compiler builds
 * these objects (src/control/compiler/listeners.ts, capture-listeners.ts,
 * dns-listener.ts, compile-proxy.ts) and the proxy compiles the decoded ones
 * (src/proxy/inbound/inbound-chains.ts, gateway/gateway-chains.ts,
 * capture/capture-config.ts, outbound/route-table.ts). Field names are the
 * protos' (snake_case); values as protobufjs writes and decodes them (see
 * envoy-cluster.ts). As in the protos, fields are optional: a decoded message
 * omits what is empty. Filter configs other than the HCM and tcp_proxy (RBAC,
 * jwt_authn, ext_authz, local rate limit, CORS, fault, DNS) stay decoded
 * records here: their own compilers (src/proxy/filters, local-rate-limit.ts)
 * read them.
 */
import type { Duration, SocketAddress, TransportSocket, WrappedNumber } from './envoy-cluster.js';
import type { RouteConfiguration, UpgradeConfig } from './envoy-route.js';

/** A network, HTTP or listener filter: its name and its typed config (a decoded Any). */
export type Filter = {
  name: string;
  typed_config?: Record<string, unknown>;
};

/** config.core.v3.CidrRange. */
export type CidrRange = { address_prefix: string; prefix_len?: WrappedNumber };

/** listener.v3.FilterChainMatch. */
export type FilterChainMatch = {
  destination_port?: WrappedNumber;
  prefix_ranges?: CidrRange[];
  server_names?: string[];
  transport_protocol?: string;
  application_protocols?: string[];
};

/** listener.v3.FilterChain. */
export type FilterChain = {
  name?: string;
  filter_chain_match?: FilterChainMatch;
  filters?: Filter[];
  transport_socket?: TransportSocket;
};

/** listener.v3.Listener. */
export type Listener = {
  '@type'?: string;
  name?: string;
  address?: { socket_address?: Partial<SocketAddress> & { protocol?: 'TCP' | 'UDP' } };
  traffic_direction?: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
  listener_filters?: Filter[];
  listener_filters_timeout?: Duration;
  continue_on_listener_filters_timeout?: boolean;
  use_original_dst?: { value: boolean };
  bind_to_port?: { value: boolean };
  filter_chains?: FilterChain[];
  default_filter_chain?: FilterChain;
  stat_prefix?: string;
};

/** http_connection_manager.v3.HttpConnectionManager. */
export type HttpConnectionManager = {
  '@type'?: string;
  stat_prefix?: string;
  codec_type?: 'AUTO' | 'HTTP1' | 'HTTP2';
  rds?: { route_config_name?: string; config_source?: Record<string, unknown> };
  /** An inline route configuration (inbound chains: one route to the app). */
  route_config?: RouteConfiguration;
  http_filters?: Filter[];
  normalize_path?: { value: boolean };
  merge_slashes?: boolean;
  path_with_escaped_slashes_action?:
    | 'IMPLEMENTATION_SPECIFIC_DEFAULT'
    | 'KEEP_UNCHANGED'
    | 'REJECT_REQUEST'
    | 'UNESCAPE_AND_REDIRECT'
    | 'UNESCAPE_AND_FORWARD';
  http_protocol_options?: { accept_http_10?: boolean };
  upgrade_configs?: UpgradeConfig[];
  /** Gateways: the client address is the peer's (or from X-Forwarded-For past trusted hops). */
  use_remote_address?: { value: boolean };
  xff_num_trusted_hops?: number;
};

/** tcp_proxy.v3.TcpProxy. */
export type TcpProxy = {
  '@type'?: string;
  stat_prefix?: string;
  cluster?: string;
  weighted_clusters?: { clusters?: { name?: string; weight?: number }[] };
};

export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';

/**
 * A decoded listener with the shared type: protobufjs decoded it from the Listener proto,
 * so its structure is the proto's, and the proxy's checks refused what it does not honour.
 */
export function asListener(resource: Record<string, unknown>): Listener {
  // Every field is optional, so the decoded record is one as it is (no assertion needed).
  return resource;
}

/** A filter's typed config as an HttpConnectionManager (the filter is named as one). */
export function hcmOf(filter: Filter | undefined): HttpConnectionManager {
  return filter?.typed_config ?? {};
}

/** A filter's typed config as a tcp_proxy (the filter is named as one). */
export function tcpProxyOf(filter: Filter | undefined): TcpProxy {
  return filter?.typed_config ?? {};
}
