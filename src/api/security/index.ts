/** Public surface of Istio's security kinds: schemas, types and validation. */
export * from './schemas.js';
export {
  isSecurityObject,
  SECURITY_KINDS,
  validateSecurityResource,
  type SecurityKind,
} from './validate.js';
