/** Validation of xDS resources before the ADS client ACKs them (one module per resource type). */
export { resourceName, validateResource } from './validate.js';
export { compileTypedConfig, emptyTypedConfig } from './typed-config.js';
export type {
  ClusterConfig,
  TypedConfig,
  XdsResource,
  XdsSnapshot,
} from '../xds-client/xds-resource.js';
