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
