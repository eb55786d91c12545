/** Public surface of the Palisade proxy (data plane). */
export {
  createAdsClient,
  type AdsClient,
  type AdsClientOptions,
  type XdsNode,
  type XdsSnapshot,
} from './xds-client/ads-client.js';
export { validateResource, resourceName, type XdsResource } from './config/index.js';
export { startProxy, type Proxy, type ProxyIdentityOptions, type ProxyOptions } from './proxy.js';
export {
  createInboundListeners,
  type InboundListeners,
  type InboundRecord,
} from './inbound/inbound-listeners.js';
export { createSecretStore, type MutableSecretStore, type SecretStore } from './tls/secrets.js';
export {
  createOutboundProxy,
  type OutboundProxy,
  type OutboundProxyOptions,
} from './outbound/outbound-proxy.js';
export {
  compileRouteConfig,
  routeRequest,
  selectVirtualHost,
  type RouteDecision,
  type RouteRequest,
} from './outbound/route-table.js';
