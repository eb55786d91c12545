/**
 * The shared authz filter's types and pieces (docs/proxy.md "Layers"): what a
 * listener asks of its policy filters, how RBAC filters are classified, and the
 * answers every direction sends on a denial. Inbound chains and gateways run the
 * same filter: peer authentication (the connection's principal) → jwt_authn →
 * RBAC → ext_authz, compiled from the HTTP connection manager's filters
 * (http-authz.ts) or a chain's network filters (network-authz.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
// Policy's evaluation surface, not its barrel: the barrel also carries the YAML loaders and
// their validators, which a proxy never runs.
import {
  EXT_AUTHZ_MATCH_PREFIX,
  EXT_AUTHZ_STAT_PREFIX,
  headerRecord,
  type AuthenticatedRequest,
  type AuthorizationFilters,
  type Decision,
} from '../../../policy/evaluation.js';

/** A decision, with the external authorizer's own reply when it denied. */
export type ProxyDecision = Decision & {
  readonly localReply?: {
    readonly status: number;
    readonly body: string;
    readonly headers: Readonly<Record<string, string>>;
  };
};

/** What the listeners ask of a chain's policy filters. */
export interface PolicyEvaluator {
  decide(req: AuthenticatedRequest): Promise<ProxyDecision>;
  /**
   * The same decision as {@link decide} when it is ready without waiting, else undefined
   * (an evaluator that may wait, e.g. for an external authorizer, leaves this out).
   */
  decideNow?(req: AuthenticatedRequest): ProxyDecision | undefined;
}

export type RbacConfig = NonNullable<AuthorizationFilters['allow']>;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Strips `@type` from a decoded typed_config. */
export function filterConfig(filter: Record<string, unknown>): Record<string, unknown> {
  const typed = isRecord(filter['typed_config']) ? filter['typed_config'] : {};
  return Object.fromEntries(Object.entries(typed).filter(([key]) => key !== '@type'));
}

/** The most RBAC filters one chain may carry: the translation emits at most CUSTOM, DENY, ALLOW, AUDIT. */
export const MAX_RBAC_FILTERS = 4;

type Role = Exclude<keyof AuthorizationFilters, 'extAuthz'>;

/**
 * The role of one RBAC filter, from its action (Envoy `RBAC.Action`: ALLOW, DENY, LOG),
 * never from its position. A DENY filter is the CUSTOM one when its stat prefixes say so
 * (`istio_dry_run_custom_`, as the translation names them); either way it denies. Anything
 * else (an unknown action, enforced and shadow rules disagreeing) is rejected: a filter the
 * proxy cannot classify must not be skipped.
 */
function roleOf(rbac: Record<string, unknown>, at: string): Role {
  const actions = new Set<unknown>();
  for (const key of ['rules', 'shadow_rules'] as const) {
    const rules = rbac[key];
    if (rules === undefined) continue;
    if (!isRecord(rules)) throw new Error(`${at}.${key}: must be an object`);
    // proto3: an absent action is its zero value, ALLOW.
    actions.add(rules['action'] ?? 'ALLOW');
  }
  if (actions.size === 0) throw new Error(`${at}: neither rules nor shadow_rules`);
  if (actions.size > 1) throw new Error(`${at}: rules and shadow_rules have different actions`);
  const [action] = actions;
  switch (action) {
    case 'ALLOW':
      return 'allow';
    case 'LOG':
      return 'audit';
    case 'DENY': {
      const prefix = rbac['shadow_rules_stat_prefix'] ?? rbac['rules_stat_prefix'];
      return typeof prefix === 'string' && prefix.includes('custom') ? 'custom' : 'deny';
    }
    default:
      throw new Error(`${at}: unsupported RBAC action ${JSON.stringify(action)}`);
  }
}

/**
 * Sorts the RBAC filters of one chain into groups the evaluator runs (CUSTOM → DENY → ALLOW;
 * AUDIT marks). Envoy runs every filter in order and each can deny; denial is a conjunction,
 * so a group may take the filters in any order, but each slot holds one filter: a filter
 * whose slot is taken (two ALLOW filters, e.g. NetworkPolicy and an AuthorizationPolicy on a
 * TCP port; a third DENY) starts the next group. `maxGroups` bounds what a caller enforces:
 * more is an error, never a filter dropped.
 */
export function classifyRbacFilters(
  rbacs: readonly Record<string, unknown>[],
  maxGroups: number,
  where = 'rbac',
): AuthorizationFilters[] {
  if (rbacs.length > MAX_RBAC_FILTERS * maxGroups)
    throw new Error(
      `${where}: ${String(rbacs.length)} RBAC filters, more than the ${String(MAX_RBAC_FILTERS * maxGroups)} this proxy enforces`,
    );
  const groups: Partial<Record<Role, RbacConfig>>[] = [];
  const roles = rbacs.map((rbac, i) => roleOf(rbac, `${where}[${String(i)}]`));
  let denies = roles.filter((r) => r === 'deny').length;
  rbacs.forEach((rbac, i) => {
    const role = roles[i] ?? 'deny';
    // Two DENY filters fill both deny slots (CUSTOM and DENY deny alike); the translation
    // emits CUSTOM's first, so of a pair of unmarked ones the first is reported as CUSTOM.
    const pairFirst = role === 'deny' && denies-- % 2 === 0 && denies > 0;
    const slots: readonly Role[] =
      role === 'custom' || pairFirst
        ? ['custom', 'deny']
        : role === 'deny'
          ? ['deny', 'custom']
          : [role];
    let placed = false;
    for (const group of groups) {
      const slot = slots.find((s) => group[s] === undefined);
      if (slot !== undefined) {
        group[slot] = rbac;
        placed = true;
        break;
      }
    }
    if (!placed) {
      if (groups.length >= maxGroups)
        throw new Error(
          `${where}[${String(i)}]: more ${role.toUpperCase()} RBAC filters than this proxy enforces`,
        );
      groups.push({ [role]: rbac as RbacConfig });
    }
  });
  return groups.map((g) => ({ ...g }));
}

/** Request headers as the policy evaluator takes them: one string each, repeated values joined. */
export function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out = headerRecord();
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) out[k] = typeof v === 'string' ? v : v.join(',');
  }
  return out;
}

/** The ext_authz filter must be enabled by the trigger's shadow effective policy (Istio's matcher). */
export function checkEnabledMetadata(
  cfg: Record<string, unknown>,
  filter = 'envoy.filters.http.rbac',
): void {
  const m = cfg['filter_enabled_metadata'];
  const path = isRecord(m) && Array.isArray(m['path']) ? (m['path'] as unknown[]) : [];
  const key = isRecord(path[0]) ? path[0]['key'] : undefined;
  const value = isRecord(m) && isRecord(m['value']) ? m['value']['string_match'] : undefined;
  if (
    !isRecord(m) ||
    m['filter'] !== filter ||
    path.length !== 1 ||
    key !== `${EXT_AUTHZ_STAT_PREFIX}shadow_effective_policy_id` ||
    !isRecord(value) ||
    value['prefix'] !== EXT_AUTHZ_MATCH_PREFIX
  )
    throw new Error(
      'ext_authz: filter_enabled_metadata must match the istio_ext_authz_ shadow effective policy',
    );
}

/** Envoy's body for a policy denial: RBAC's 403, jwt_authn's 401 reason, else 400. */
export function denialBody(status: number, reason: string): string {
  if (status === 403) return 'RBAC: access denied';
  if (status === 401) return reason.replace(/^invalid JWT: /, '');
  return 'Bad Request';
}
