/**
 * Rule matching and rule coverage exactly as Kubernetes does them:
 * `RuleAllows` (plugin/pkg/auth/authorizer/rbac/rbac.go with
 * pkg/apis/rbac/v1/evaluation_helpers.go) and `Covers`
 * (pkg/registry/rbac/validation/policy_comparator.go), which the API server
 * uses to refuse privilege escalation when roles are created or bound.
 */
import type { PolicyRule, RequestAttributes } from './types.js';

const ALL = '*';

export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return rule.verbs.some((v) => v === ALL || v === verb);
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return (rule.apiGroups ?? []).some((g) => g === ALL || g === group);
}

/**
 * `resource/subresource` must match exactly, `*` matches everything and
 * `*\/subresource` matches that subresource of any resource.
 */
export function resourceMatches(
  rule: PolicyRule,
  combinedResource: string,
  subresource: string,
): boolean {
  for (const r of rule.resources ?? []) {
    if (r === ALL || r === combinedResource) return true;
    if (subresource === '') continue;
    if (r.length === subresource.length + 2 && r.startsWith('*/') && r.endsWith(subresource)) {
      return true;
    }
  }
  return false;
}

/** No resourceNames allows any name; otherwise the request's name must be listed (an empty name never is). */
export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  const names = rule.resourceNames ?? [];
  if (names.length === 0) return true;
  return names.includes(name);
}

/** Exact URL, `*`, or a trailing `*` as a prefix match. */
export function nonResourceURLMatches(rule: PolicyRule, url: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === ALL || u === url) return true;
    if (u.endsWith('*') && url.startsWith(u.replace(/\*+$/, ''))) return true;
  }
  return false;
}

/** True when the request is a resource request (not a non-resource URL). */
export function isResourceRequest(a: RequestAttributes): boolean {
  return a.nonResourceURL === undefined || a.nonResourceURL === '';
}

/** RuleAllows. */
export function ruleAllows(a: RequestAttributes, rule: PolicyRule): boolean {
  if (isResourceRequest(a)) {
    const resource = a.resource ?? '';
    const sub = a.subresource ?? '';
    const combined = sub === '' ? resource : `${resource}/${sub}`;
    return (
      verbMatches(rule, a.verb) &&
      apiGroupMatches(rule, a.apiGroup ?? '') &&
      resourceMatches(rule, combined, sub) &&
      resourceNameMatches(rule, a.name ?? '')
    );
  }
  return verbMatches(rule, a.verb) && nonResourceURLMatches(rule, a.nonResourceURL ?? '');
}

// --- coverage (escalation checks) -------------------------------------------

function has(set: readonly string[], v: string): boolean {
  return set.includes(v);
}

function hasAll(set: readonly string[], contains: readonly string[]): boolean {
  return contains.every((c) => set.includes(c));
}

function resourceCoversAll(set: readonly string[], covers: readonly string[]): boolean {
  if (has(set, ALL) || hasAll(set, covers)) return true;
  for (const path of covers) {
    if (has(set, path)) continue;
    const slash = path.indexOf('/');
    if (slash < 0) return false;
    if (!has(set, `*/${path.slice(slash + 1)}`)) return false;
  }
  return true;
}

function nonResourceURLCovers(owner: string, sub: string): boolean {
  if (owner === sub) return true;
  if (!owner.endsWith('*')) return false;
  return sub.startsWith(owner.replace(/\*+$/, ''));
}

function nonResourceURLsCoversAll(set: readonly string[], covers: readonly string[]): boolean {
  return covers.every((c) => set.some((o) => nonResourceURLCovers(o, c)));
}

/** ruleCovers: does `owner` allow everything the single-valued `sub` rule allows? */
export function ruleCovers(owner: PolicyRule, sub: PolicyRule): boolean {
  const verbs = has(owner.verbs, ALL) || hasAll(owner.verbs, sub.verbs);
  const groups =
    has(owner.apiGroups ?? [], ALL) || hasAll(owner.apiGroups ?? [], sub.apiGroups ?? []);
  const resources = resourceCoversAll(owner.resources ?? [], sub.resources ?? []);
  const urls = nonResourceURLsCoversAll(owner.nonResourceURLs ?? [], sub.nonResourceURLs ?? []);
  const ownerNames = owner.resourceNames ?? [];
  const subNames = sub.resourceNames ?? [];
  const names =
    subNames.length === 0
      ? ownerNames.length === 0
      : ownerNames.length === 0 || hasAll(ownerNames, subNames);
  return verbs && groups && resources && names && urls;
}

/** BreakdownRule: one rule per group × resource × verb (× name), or per URL × verb. */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const group of rule.apiGroups ?? []) {
    for (const resource of rule.resources ?? []) {
      for (const verb of rule.verbs) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0)
          out.push({ apiGroups: [group], resources: [resource], verbs: [verb] });
        for (const n of names) {
          out.push({
            apiGroups: [group],
            resources: [resource],
            verbs: [verb],
            resourceNames: [n],
          });
        }
      }
    }
  }
  for (const url of rule.nonResourceURLs ?? []) {
    for (const verb of rule.verbs) out.push({ nonResourceURLs: [url], verbs: [verb] });
  }
  return out;
}

/** Covers: the servant rules no owner rule covers (empty when covered). */
export function uncoveredRules(
  owner: readonly PolicyRule[],
  servant: readonly PolicyRule[],
): PolicyRule[] {
  const missing: PolicyRule[] = [];
  for (const rule of servant) {
    for (const simple of breakdownRule(rule)) {
      if (!owner.some((o) => ruleCovers(o, simple))) missing.push(simple);
    }
  }
  return missing;
}

/** `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}` as Kubernetes prints a rule. */
export function compactRuleString(rule: PolicyRule): string {
  const q = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;
  const parts: string[] = [];
  if ((rule.apiGroups ?? []).length > 0) parts.push(`APIGroups:${q(rule.apiGroups ?? [])}`);
  if ((rule.resources ?? []).length > 0) parts.push(`Resources:${q(rule.resources ?? [])}`);
  if ((rule.nonResourceURLs ?? []).length > 0)
    parts.push(`NonResourceURLs:${q(rule.nonResourceURLs ?? [])}`);
  if ((rule.resourceNames ?? []).length > 0)
    parts.push(`ResourceNames:${q(rule.resourceNames ?? [])}`);
  parts.push(`Verbs:${q(rule.verbs)}`);
  return `{${parts.join(', ')}}`;
}
