/** Public surface of the Kubernetes core kinds the mesh reads (Namespace, Service, ServiceAccount). */
export * from './schemas.js';
export { CORE_KINDS, isCoreObject, validateCoreResource, type CoreKind } from './validate.js';
