/** Public surface of the RBAC authorizer. */
export {
  aggregateClusterRoles,
  authenticatedUser,
  createRbacAuthorizer,
  describeBinding,
  describeSubject,
  roleCovers,
  serviceAccountUsername,
  splitServiceAccountUsername,
  subjectAppliesTo,
  type CoverResult,
  type RbacAuthorizer,
  type RbacAuthorizerOptions,
  type SubjectGrant,
} from './rbac-authorizer.js';
export {
  breakdownRule,
  compactRuleString,
  ruleAllows,
  ruleCovers,
  uncoveredRules,
} from './rule-matching.js';
export type * from './types.js';
export { formatRuleTable, ruleRows, type RuleRow } from './rule-list.js';
