/**
 * The RBAC objects the authorizer works on (rbac.authorization.k8s.io/v1),
 * reduced to the fields authorization reads, and the request attributes it
 * decides on (k8s.io/apiserver authorizer.Attributes).
 */
import type { LabelSelector, Labels } from '../labels/label-selector.js';

/** rbacv1.PolicyRule. */
export interface PolicyRule {
  readonly verbs: readonly string[];
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** A Role (namespaced) or ClusterRole. */
export interface RbacRole {
  readonly kind: 'Role' | 'ClusterRole';
  readonly name: string;
  /** Set for Roles. */
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly rules: readonly PolicyRule[];
  /** ClusterRoles only: aggregate the rules of ClusterRoles matching any selector. */
  readonly aggregationRule?: { readonly clusterRoleSelectors?: readonly LabelSelector[] };
}

/** rbacv1.Subject. */
export interface RbacSubject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly apiGroup?: string;
}

/** A RoleBinding (namespaced) or ClusterRoleBinding. */
export interface RbacBinding {
  readonly kind: 'RoleBinding' | 'ClusterRoleBinding';
  readonly name: string;
  /** Set for RoleBindings. */
  readonly namespace?: string;
  readonly roleRef: { readonly kind: string; readonly name: string; readonly apiGroup?: string };
  readonly subjects: readonly RbacSubject[];
}

/** Who is asking (user.Info). */
export interface UserInfo {
  readonly name: string;
  readonly groups: readonly string[];
}

/**
 * What is asked (authorizer.Attributes). A request with a non-empty
 * `nonResourceURL` is a non-resource request (`/healthz`, `/api`);
 * otherwise it is a resource request.
 */
export interface RequestAttributes {
  readonly user: UserInfo;
  readonly verb: string;
  readonly apiGroup?: string;
  readonly resource?: string;
  readonly subresource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly nonResourceURL?: string;
}

/** The decision and Kubernetes' reason string. */
export interface Decision {
  readonly allowed: boolean;
  /** `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "alice"`, or why not. */
  readonly reason: string;
}
