/**
 * Public surface of the shared xDS library the proxy imports: type URLs, the
 * wire codec, readers of decoded messages. It loads neither protobufjs nor
 * grpc-js: the control plane's protos and ADS service are in ./protos.js, the
 * grpc-js channel settings in ./grpc-channel.js.
 */
export { EXTENSION_TYPE_URLS, TYPE_URLS, type ResourceKind } from './type-urls.js';
export { decodeMessage, encodeMessage } from './wire/codec.js';
export { enumNumber } from './wire/schema.js';
export {
  GRPC_STATUS,
  grpcStatusOfHttp,
  openGrpcStream,
  type GrpcStatus,
  type GrpcStream,
} from './wire/grpc-stream.js';
export { objectToStruct, structToObject } from './struct.js';
export { list, num, rec, str } from './decoded.js';
export { formatNodeId, nodeWorkloadName, parseNodeId, type NodeId } from './node-id.js';
export { XDS_SERVER_NAME, xdsTlsOptions, type XdsTransport } from './transport.js';
export { asResource } from './envoy-cluster.js';
export type {
  CircuitBreakerThresholds,
  Cluster,
  ClusterLoadAssignment,
  Duration,
  HealthCheck,
  HealthStatus,
  LbEndpoint,
  LbPolicy,
  OutlierDetection,
  SocketAddress,
  TransportSocket,
  WrappedNumber,
} from './envoy-cluster.js';
export type {
  DirectResponseAction,
  FractionalPercent,
  HashPolicy,
  HeaderMatcher,
  HeaderOperations,
  HeaderValueOption,
  QueryParameterMatcher,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouteConfiguration,
  RouteMatch,
  StringMatcher,
  UpgradeConfig,
  VirtualHost,
} from './envoy-route.js';
export {
  asListener,
  hcmOf,
  tcpProxyOf,
  HCM_FILTER,
  NETWORK_RBAC_FILTER,
  TCP_PROXY_FILTER,
} from './envoy-listener.js';
export type {
  CidrRange,
  Filter,
  FilterChain,
  FilterChainMatch,
  HttpConnectionManager,
  Listener,
  TcpProxy,
} from './envoy-listener.js';
export { allFieldsOf, fieldsOf } from './fields.js';
