/** Public surface of the Palisade proxy (data plane). */
export {
  createAdsClient,
  type AdsClient,
  type AdsClientOptions,
  type XdsNode,
  type XdsSnapshot,
} from './xds-client/ads-client.js';
export {
  validateResource,
  resourceName,
  type XdsResource,
} from './xds-client/resource-validation.js';
export { startProxy, type Proxy, type ProxyOptions } from './proxy.js';
export {
  createOutboundProxy,
  type OutboundProxy,
  type OutboundProxyOptions,
} from './outbound/outbound-proxy.js';
export {
  routeRequest,
  selectVirtualHost,
  type RouteDecision,
  type RouteRequest,
} from './outbound/route-table.js';
