/**
 * Public surface of Palisade's Kubernetes security engines: RBAC,
 * NetworkPolicy, Pod Security Standards, and the manifest audit.
 */
export * from './rbac/index.js';
export * from './netpol/index.js';
export * from './podsecurity/index.js';
export * from './labels/label-selector.js';
export {
  clusterObjectsFrom,
  type ClusterObjects,
  type ClusterObjectsOptions,
  type PodSource,
} from './cluster-objects.js';
export * from './audit/index.js';
export { resolveResource } from './resources.js';
