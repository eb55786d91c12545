/** Public surface of the shared xDS library: protos, type URLs, service definitions. */
export {
  adsClientConstructor,
  adsServiceDefinition,
  enumNumber,
  EXTENSION_TYPE_URLS,
  PROTO_DIR,
  TYPE_URLS,
  xdsRoot,
  type ResourceKind,
} from './protos.js';
export { objectToStruct, structToObject } from './struct.js';
export { list, num, rec, str } from './decoded.js';
export { formatNodeId, nodeWorkloadName, parseNodeId, type NodeId } from './node-id.js';
export { XDS_CHANNEL_OPTIONS, xdsChannelCredentials, type XdsTransport } from './transport.js';
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
