/**
 * The evaluation side of policy: what a proxy runs per request (Envoy RBAC and
 * JWT filter configs evaluated, paths normalized, ext_authz names), apart from
 * the YAML loaders and their validators in index.ts. A proxy importing this
 * surface loads neither YAML nor Ajv (test/proxy/proxy-imports.test.ts).
 */
export {
  normalizePath,
  PATH_NORMALIZATIONS,
  type NormalizedPath,
  type PathNormalization,
} from './path-normalization.js';
export {
  EXT_AUTHZ_MATCH_PREFIX,
  EXT_AUTHZ_STAT_PREFIX,
  type AuthorizationFilters,
} from './authorization-translation.js';
export type { JwtAuthenticationConfig } from './jwt-authn.js';
export { headerRecord } from './rbac-evaluator.js';
export {
  EnvoyPolicyEvaluator,
  type AuthenticatedRequest,
  type Decision,
  type XffOptions,
} from './workload-authorizer.js';
