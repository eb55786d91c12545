/**
 * The Kubernetes RBAC authorizer over a fixed set of roles and bindings:
 * decisions with Kubernetes' reason strings, ClusterRole aggregation,
 * "who can" lookups and escalation checks. Pure: no I/O.
 *
 * Kubernetes: https://kubernetes.io/docs/reference/access-authn-authz/rbac/
 * and plugin/pkg/auth/authorizer/rbac/rbac.go — ClusterRoleBindings are
 * visited first, then the RoleBindings of the request's namespace; the first
 * rule that allows decides. RBAC never denies: an unmatched request has "no
 * opinion", which Palisade reports as not allowed.
 */
import { selectorMatches } from '../labels/label-selector.js';
import { compactRuleString, ruleAllows, uncoveredRules } from './rule-matching.js';
import type {
  Decision,
  PolicyRule,
  RbacBinding,
  RbacRole,
  RbacSubject,
  RequestAttributes,
  UserInfo,
} from './types.js';

const SA_PREFIX = 'system:serviceaccount:';

/** `system:serviceaccount:<ns>:<name>` (serviceaccount.MakeUsername). */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `${SA_PREFIX}${namespace}:${name}`;
}

/** Splits a service-account username; undefined for other users. */
export function splitServiceAccountUsername(
  username: string,
): { namespace: string; name: string } | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return { namespace: parts[0] ?? '', name: parts[1] ?? '' };
}

/**
 * The user as the API server sees it after authentication: a service account
 * is in `system:serviceaccounts` and `system:serviceaccounts:<ns>`; every
 * authenticated user is in `system:authenticated`; `system:anonymous` is in
 * `system:unauthenticated` instead.
 */
export function authenticatedUser(name: string, groups: readonly string[] = []): UserInfo {
  const all = [...groups];
  const sa = splitServiceAccountUsername(name);
  if (sa !== undefined)
    all.push('system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`);
  all.push(name === 'system:anonymous' ? 'system:unauthenticated' : 'system:authenticated');
  return { name, groups: [...new Set(all)] };
}

/** describeSubject: `User "alice"`, `ServiceAccount "sa/ns"`. */
export function describeSubject(s: RbacSubject, bindingNamespace: string): string {
  if (s.kind === 'ServiceAccount') {
    const ns = s.namespace !== undefined && s.namespace !== '' ? s.namespace : bindingNamespace;
    return `${s.kind} ${JSON.stringify(`${s.name}/${ns}`)}`;
  }
  return `${s.kind} ${JSON.stringify(s.name)}`;
}

/** `ClusterRoleBinding "x" of ClusterRole "y" to User "z"` / `RoleBinding "x/ns" of Role "y" to ...`. */
export function describeBinding(b: RbacBinding, s: RbacSubject): string {
  const ns = b.namespace ?? '';
  const name = b.kind === 'RoleBinding' ? `${b.name}/${ns}` : b.name;
  return `${b.kind} ${JSON.stringify(name)} of ${b.roleRef.kind} ${JSON.stringify(b.roleRef.name)} to ${describeSubject(s, ns)}`;
}

/** appliesToUser: does this subject of a binding in `namespace` name the user? */
export function subjectAppliesTo(user: UserInfo, s: RbacSubject, namespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return user.name === s.name;
    case 'Group':
      return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace !== undefined && s.namespace !== '' ? s.namespace : namespace;
      if (ns === '') return false;
      return user.name === serviceAccountUsername(ns, s.name);
    }
    default:
      return false;
  }
}

/** A subject that can do something, and the binding and role that let it. */
export interface SubjectGrant {
  readonly subject: RbacSubject;
  readonly binding: string;
  readonly role: string;
  /** Kubernetes' description of the grant (the reason string without `RBAC: allowed by`). */
  readonly via: string;
}

/** The result of an escalation check. */
export interface CoverResult {
  readonly covered: boolean;
  /** Single-valued rules of the servant that the owner does not hold. */
  readonly uncovered: readonly PolicyRule[];
}

export interface RbacAuthorizer {
  /** Decides one request. */
  authorize(request: RequestAttributes): Decision;
  /** Every binding subject that the request's verb/resource would be allowed for (user ignored). */
  whoCan(request: Omit<RequestAttributes, 'user'>): SubjectGrant[];
  /** The rules that apply to a user in a namespace ('' for cluster scope), like `kubectl auth can-i --list`. */
  rulesFor(user: UserInfo, namespace: string): PolicyRule[];
  /** The effective rules of a role after aggregation; undefined if it does not exist. */
  roleRules(
    kind: 'Role' | 'ClusterRole',
    name: string,
    namespace?: string,
  ): readonly PolicyRule[] | undefined;
  /** Does `user` hold every permission in `rules` (ConfirmNoEscalation)? */
  confirmNoEscalation(
    user: UserInfo,
    namespace: string,
    rules: readonly PolicyRule[],
  ): CoverResult & { message?: string };
}

export interface RbacAuthorizerOptions {
  readonly roles: readonly RbacRole[];
  readonly bindings: readonly RbacBinding[];
}

interface CompiledBinding {
  readonly binding: RbacBinding;
  /** Position in visiting order: cluster bindings first, each kind sorted by name. */
  readonly order: number;
  readonly rules: readonly PolicyRule[] | undefined;
  readonly missing: string | undefined;
}

function byName<T extends { name: string; namespace?: string }>(a: T, b: T): number {
  const ka = `${a.namespace ?? ''}/${a.name}`;
  const kb = `${b.namespace ?? ''}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function ruleKey(r: PolicyRule): string {
  return JSON.stringify([
    r.verbs,
    r.apiGroups ?? [],
    r.resources ?? [],
    r.resourceNames ?? [],
    r.nonResourceURLs ?? [],
  ]);
}

/**
 * Aggregated ClusterRoles: the clusterrole-aggregation controller replaces
 * the rules of a ClusterRole that has an `aggregationRule` with the union of
 * the rules of every ClusterRole its selectors match (sorted by name, deduped,
 * never itself). Aggregated roles can feed each other, so this repeats until
 * nothing changes (bounded by the number of roles).
 */
export function aggregateClusterRoles(
  roles: readonly RbacRole[],
): Map<string, readonly PolicyRule[]> {
  const cluster = roles.filter((r) => r.kind === 'ClusterRole').sort(byName);
  const rules = new Map<string, readonly PolicyRule[]>(cluster.map((r) => [r.name, r.rules]));
  const aggregated = cluster.filter((r) => r.aggregationRule !== undefined);
  for (let round = 0; round <= cluster.length; round++) {
    let changed = false;
    for (const target of aggregated) {
      const next: PolicyRule[] = [];
      const seen = new Set<string>();
      for (const sel of target.aggregationRule?.clusterRoleSelectors ?? []) {
        for (const source of cluster) {
          if (source.name === target.name) continue;
          if (!selectorMatches(sel, source.labels ?? {})) continue;
          for (const r of rules.get(source.name) ?? []) {
            const k = ruleKey(r);
            if (seen.has(k)) continue;
            seen.add(k);
            next.push(r);
          }
        }
      }
      const before = rules.get(target.name) ?? [];
      if (
        before.length !== next.length ||
        before.some((r, i) => ruleKey(r) !== ruleKey(next[i] ?? { verbs: [] }))
      ) {
        rules.set(target.name, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return rules;
}

/** Builds an authorizer; bindings are indexed by subject so a decision visits only relevant ones. */
export function createRbacAuthorizer(options: RbacAuthorizerOptions): RbacAuthorizer {
  const clusterRoleRules = aggregateClusterRoles(options.roles);
  const roleRules = new Map<string, readonly PolicyRule[]>();
  for (const r of options.roles) {
    if (r.kind === 'Role') roleRules.set(`${r.namespace ?? ''}/${r.name}`, r.rules);
  }
  const resolve = (b: RbacBinding): { rules?: readonly PolicyRule[]; missing?: string } => {
    const ref = b.roleRef;
    if (ref.kind === 'ClusterRole') {
      const rules = clusterRoleRules.get(ref.name);
      return rules === undefined
        ? { missing: `clusterrole.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found` }
        : { rules };
    }
    if (ref.kind === 'Role' && b.kind === 'RoleBinding') {
      const rules = roleRules.get(`${b.namespace ?? ''}/${ref.name}`);
      return rules === undefined
        ? { missing: `role.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found` }
        : { rules };
    }
    return { missing: `unsupported role reference kind: ${JSON.stringify(ref.kind)}` };
  };
  const ordered = [
    ...options.bindings.filter((b) => b.kind === 'ClusterRoleBinding').sort(byName),
    ...options.bindings.filter((b) => b.kind === 'RoleBinding').sort(byName),
  ];
  const compiled: CompiledBinding[] = ordered.map((binding, order) => {
    const r = resolve(binding);
    return { binding, order, rules: r.rules, missing: r.missing };
  });

  // Index: subject key → bindings naming it. Keys: `u:<user>`, `g:<group>`.
  const index = new Map<string, CompiledBinding[]>();
  const add = (key: string, c: CompiledBinding): void => {
    const list = index.get(key);
    if (list === undefined) index.set(key, [c]);
    else if (list[list.length - 1] !== c) list.push(c);
  };
  for (const c of compiled) {
    const ns = c.binding.namespace ?? '';
    for (const s of c.binding.subjects) {
      if (s.kind === 'User') add(`u:${s.name}`, c);
      else if (s.kind === 'Group') add(`g:${s.name}`, c);
      else if (s.kind === 'ServiceAccount') {
        const sns = s.namespace !== undefined && s.namespace !== '' ? s.namespace : ns;
        if (sns !== '') add(`u:${serviceAccountUsername(sns, s.name)}`, c);
      }
    }
  }

  const candidates = (user: UserInfo, namespace: string): CompiledBinding[] => {
    const set = new Set<CompiledBinding>();
    for (const c of index.get(`u:${user.name}`) ?? []) set.add(c);
    for (const g of user.groups) for (const c of index.get(`g:${g}`) ?? []) set.add(c);
    return [...set]
      .filter(
        (c) =>
          c.binding.kind === 'ClusterRoleBinding' ||
          (namespace !== '' && c.binding.namespace === namespace),
      )
      .sort((a, b) => a.order - b.order);
  };

  const authorize = (req: RequestAttributes): Decision => {
    const namespace = req.namespace ?? '';
    const errors: string[] = [];
    for (const c of candidates(req.user, namespace)) {
      const ns = c.binding.namespace ?? '';
      const subject = c.binding.subjects.find((s) => subjectAppliesTo(req.user, s, ns));
      if (subject === undefined) continue;
      if (c.rules === undefined) {
        errors.push(c.missing ?? 'role not found');
        continue;
      }
      if (c.rules.some((r) => ruleAllows(req, r))) {
        return { allowed: true, reason: `RBAC: allowed by ${describeBinding(c.binding, subject)}` };
      }
    }
    if (errors.length === 0) return { allowed: false, reason: '' };
    return {
      allowed: false,
      reason: `RBAC: ${errors.length === 1 ? (errors[0] ?? '') : `[${errors.join(', ')}]`}`,
    };
  };

  const rulesFor = (user: UserInfo, namespace: string): PolicyRule[] => {
    const out: PolicyRule[] = [];
    for (const c of candidates(user, namespace)) {
      const ns = c.binding.namespace ?? '';
      if (!c.binding.subjects.some((s) => subjectAppliesTo(user, s, ns))) continue;
      out.push(...(c.rules ?? []));
    }
    return out;
  };

  return {
    authorize,
    rulesFor,
    whoCan(req) {
      const namespace = req.namespace ?? '';
      const out: SubjectGrant[] = [];
      for (const c of compiled) {
        if (c.binding.kind === 'RoleBinding' && c.binding.namespace !== namespace) continue;
        if (c.rules === undefined) continue;
        const probe: RequestAttributes = { ...req, user: { name: '', groups: [] } };
        if (!c.rules.some((r) => ruleAllows(probe, r))) continue;
        const ns = c.binding.namespace ?? '';
        for (const s of c.binding.subjects) {
          if (s.kind === 'ServiceAccount' && (s.namespace ?? ns) === '') continue;
          const subject: RbacSubject =
            s.kind === 'ServiceAccount' && (s.namespace === undefined || s.namespace === '')
              ? { ...s, namespace: ns }
              : s;
          out.push({
            subject,
            binding: c.binding.kind === 'RoleBinding' ? `${ns}/${c.binding.name}` : c.binding.name,
            role: `${c.binding.roleRef.kind}/${c.binding.roleRef.name}`,
            via: describeBinding(c.binding, s),
          });
        }
      }
      return out;
    },
    roleRules(kind, name, namespace) {
      return kind === 'ClusterRole'
        ? clusterRoleRules.get(name)
        : roleRules.get(`${namespace ?? ''}/${name}`);
    },
    confirmNoEscalation(user, namespace, rules) {
      const owner = rulesFor(user, namespace);
      const uncovered = uncoveredRules(owner, rules);
      if (uncovered.length === 0) return { covered: true, uncovered };
      return {
        covered: false,
        uncovered,
        message: `user ${JSON.stringify(user.name)} (groups=${JSON.stringify(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${uncovered.map(compactRuleString).join('\n')}`,
      };
    },
  };
}

/** Does role A's rule set cover role B's (`Covers`)? */
export function roleCovers(
  owner: readonly PolicyRule[],
  servant: readonly PolicyRule[],
): CoverResult {
  const uncovered = uncoveredRules(owner, servant);
  return { covered: uncovered.length === 0, uncovered };
}
