/** Public surface of the Kubernetes security kinds: schemas and validation. */
export * from './schemas.js';
export { K8S_SECURITY_KINDS, validateK8sObject } from './validate.js';
