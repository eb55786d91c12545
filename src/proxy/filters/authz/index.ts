/**
 * The shared authz filter (peer authentication → jwt_authn → RBAC →
 * ext_authz) that inbound chains and gateways compose (docs/proxy.md "Layers").
 */
export {
  classifyRbacFilters,
  denialBody,
  flatHeaders,
  MAX_RBAC_FILTERS,
  type PolicyEvaluator,
  type ProxyDecision,
} from './evaluator.js';
export { httpPolicyEvaluator } from './http-authz.js';
export { tcpPolicyEvaluator } from './network-authz.js';
export { httpAuthzRequest, type ConnectionFacts } from './request-facts.js';
