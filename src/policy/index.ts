/**
 * Public surface of the mesh policy engines: Istio's PeerAuthentication,
 * RequestAuthentication and AuthorizationPolicy — selection, translation to
 * Envoy filter configs, and evaluation of those configs per request.
 */
export {
  normalizePath,
  PATH_NORMALIZATIONS,
  removeDotSegments,
  type NormalizedPath,
  type PathNormalization,
} from './path-normalization.js';
export {
  applicablePolicies,
  DEFAULT_ROOT_NAMESPACE,
  resolvePeerAuthentication,
  selectorMatches,
  type PeerAuthenticationDecision,
  type Workload,
} from './policy-selection.js';
export {
  DRY_RUN_ANNOTATION,
  expandTrustDomainAliases,
  parseRbacPolicyName,
  serviceAccountRegex,
  rbacPolicyName,
  stringMatcher,
  EXT_AUTHZ_MATCH_PREFIX,
  EXT_AUTHZ_STAT_PREFIX,
  translateAuthorizationPolicies,
  type AuthorizationFilters,
  type AuthorizationTranslationOptions,
  type Protocol,
} from './authorization-translation.js';
export {
  compilePermission,
  compilePrincipal,
  compileRbacFilter,
  type CompiledRbac,
  type RequestFacts,
} from './rbac-evaluator.js';
export {
  createJwtAuthenticator,
  translateRequestAuthentications,
  type JwtAuthenticationConfig,
  type JwtAuthenticator,
  type JwtOutcome,
} from './jwt-authn.js';
export {
  createWorkloadAuthorizer,
  EnvoyPolicyEvaluator,
  trustedClientAddress,
  type XffOptions,
  WorkloadAuthorizer,
  type AuthenticatedRequest,
  type EnvoyPolicyConfig,
  type AuthorizerOptions,
  type Decision,
  type InboundRequest,
  type SecurityPolicies,
} from './workload-authorizer.js';
export type * from './envoy-rbac.js';
export { loadSecurityPolicies } from './load-policies.js';
export {
  DEFAULT_TRUST_DOMAIN,
  parsePolicyMeshConfig,
  readPolicyMeshConfig,
  type ExtAuthzGrpcProvider,
  type ExtAuthzHttpProvider,
  type ExtensionProvider,
  type PolicyMeshConfig,
} from './mesh-config.js';
