/**
 * Builds the policy evaluator of one inbound filter chain from the filters
 * the control plane sent: `envoy.filters.http.jwt_authn` and the
 * `envoy.filters.http.rbac` / `envoy.filters.network.rbac` filters, in order
 * (the translation emits CUSTOM-as-deny, DENY, ALLOW, AUDIT). The evaluator is
 * the policy module's, so the proxy decides exactly as `palisade check authz`.
 */
import type { IncomingHttpHeaders } from 'node:http';
// The policy modules themselves, not the policy barrel: the barrel also carries the YAML
// loaders and their validators, which a proxy never runs.
import {
  EXT_AUTHZ_MATCH_PREFIX,
  EXT_AUTHZ_STAT_PREFIX,
  type AuthorizationFilters,
} from '../../policy/authorization-translation.js';
import type { JwtAuthenticationConfig } from '../../policy/jwt-authn.js';
import {
  EnvoyPolicyEvaluator,
  type AuthenticatedRequest,
  type Decision,
  type XffOptions,
} from '../../policy/workload-authorizer.js';
import { requestHeadPolicy } from '../request-head.js';
import {
  checkGrpc,
  checkGrpcConnection,
  parseExtAuthzGrpc,
  type ExtAuthzGrpcConfig,
} from './ext-authz-grpc.js';
import { checkHttp, parseExtAuthzHttp, type ExtAuthzHttpConfig } from './ext-authz-http.js';

type ExtAuthzService =
  | { readonly kind: 'http'; readonly config: ExtAuthzHttpConfig }
  | { readonly kind: 'grpc'; readonly config: ExtAuthzGrpcConfig };

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
}

type RbacConfig = NonNullable<AuthorizationFilters['allow']>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Strips `@type` from a decoded typed_config. */
function config(filter: Record<string, unknown>): Record<string, unknown> {
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
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

/** The HTTP connection manager's X-Forwarded-For settings (`use_remote_address` is a BoolValue). */
function xffOf(hcm: Record<string, unknown>): XffOptions {
  const hops = hcm['xff_num_trusted_hops'];
  const remote = hcm['use_remote_address'];
  return {
    ...(typeof hops === 'number' ? { numTrustedHops: hops } : {}),
    useRemoteAddress: remote === true || (isRecord(remote) && remote['value'] === true),
  };
}

/**
 * The evaluator for an HTTP connection manager (its `http_filters` and X-Forwarded-For
 * settings). Throws (so the update is NACKed) on an RBAC filter it cannot classify or
 * compile, or more than one group of them: the JWT filter's results feed one group only.
 */
export function httpPolicyEvaluator(hcm: Record<string, unknown>): PolicyEvaluator {
  const httpFilters = Array.isArray(hcm['http_filters']) ? (hcm['http_filters'] as unknown[]) : [];
  let jwt: JwtAuthenticationConfig | undefined;
  const rbacs: Record<string, unknown>[] = [];
  let trigger: Record<string, unknown> | undefined;
  let extAuthz: ExtAuthzService | undefined;
  for (const f of httpFilters) {
    if (!isRecord(f)) continue;
    if (f['name'] === 'envoy.filters.http.jwt_authn')
      jwt = config(f) as unknown as JwtAuthenticationConfig;
    else if (f['name'] === 'envoy.filters.http.ext_authz') {
      // Istio's shape: the ext_authz filter runs when the RBAC filter right before it
      // (shadow rules under `istio_ext_authz_`) matched a CUSTOM rule. Anything else
      // (no trigger, two ext_authz filters, a gRPC service) is rejected, never skipped.
      if (trigger === undefined || extAuthz !== undefined)
        throw new Error(
          'http_filters: an ext_authz filter must follow its istio_ext_authz_ RBAC filter, once',
        );
      const cfg = config(f);
      extAuthz =
        cfg['grpc_service'] !== undefined && cfg['http_service'] === undefined
          ? { kind: 'grpc', config: parseExtAuthzGrpc(cfg) }
          : { kind: 'http', config: parseExtAuthzHttp(cfg) };
      checkEnabledMetadata(config(f));
    } else if (f['name'] === 'envoy.filters.http.rbac') {
      const rbac = config(f);
      if (rbac['shadow_rules_stat_prefix'] === EXT_AUTHZ_STAT_PREFIX) {
        if (trigger !== undefined || rbac['rules'] !== undefined)
          throw new Error('http_filters: one istio_ext_authz_ RBAC filter, shadow rules only');
        trigger = rbac;
      } else rbacs.push(rbac);
    }
  }
  if (trigger !== undefined && extAuthz === undefined)
    throw new Error('http_filters: an istio_ext_authz_ RBAC filter without its ext_authz filter');
  const [http = {}] = classifyRbacFilters(rbacs, 1, 'http_filters');
  // Policy matches the path as the HCM normalised it for routing and the app (NONE: as received).
  const pathNormalization = requestHeadPolicy(hcm).normalization;
  const base = new EnvoyPolicyEvaluator({ jwt, http, tcp: {}, xff: xffOf(hcm), pathNormalization });
  if (trigger === undefined || extAuthz === undefined) return base;
  // The trigger's shadow rules as enforced DENY rules: a "denial" means a CUSTOM rule matched.
  const matcher = new EnvoyPolicyEvaluator({
    jwt,
    http: { deny: { rules: trigger['shadow_rules'] as RbacConfig['rules'] } },
    tcp: {},
    xff: xffOf(hcm),
    pathNormalization,
  });
  const provider = extAuthz;
  return {
    async decide(req): Promise<ProxyDecision> {
      const matched = await matcher.decide(req);
      // jwt_authn runs before ext_authz: its 401 (and a bad path's 400) come first.
      if (matched.status !== 200 && matched.status !== 403) return matched;
      let upstream: Readonly<Record<string, string>> = {};
      if (matched.status === 403) {
        const where = `CUSTOM policy ${matched.policy ?? ''} rule ${String(matched.rule ?? 0)}`;
        const headers = { ...(req.headers ?? {}) };
        const method = (req.method ?? 'GET').toUpperCase();
        const path = req.path ?? '/';
        const result =
          provider.kind === 'http'
            ? await checkHttp(provider.config, {
                method,
                path,
                headers: { ...headers, ...(req.host === undefined ? {} : { host: req.host }) },
              })
            : await checkGrpc(provider.config, {
                method,
                path,
                host: req.host ?? headers['host'] ?? '',
                headers,
                ...(req.sourceIp === undefined ? {} : { sourceIp: req.sourceIp }),
                ...(req.destinationIp === undefined ? {} : { destinationIp: req.destinationIp }),
                destinationPort: req.destinationPort,
                principal: req.principal,
              });
        if (result.kind === 'deny')
          return {
            decision: 'DENY',
            status: 403,
            policy: matched.policy,
            rule: matched.rule,
            reason: `denied by the external authorizer of ${where} (status ${String(result.status)})`,
            localReply: result,
          };
        if (result.kind === 'error' && !provider.config.failOpen)
          return {
            decision: 'DENY',
            status: 403,
            policy: matched.policy,
            rule: matched.rule,
            reason: `external authorizer of ${where} failed (${result.reason}): statusOnError`,
            localReply: { status: provider.config.statusOnError, body: '', headers: {} },
          };
        if (result.kind === 'allow') upstream = result.headers;
      }
      // Headers the authorizer added are on the request for the filters after it.
      const decision = await base.decide({ ...req, headers: { ...req.headers, ...upstream } });
      if (decision.status !== 200 || Object.keys(upstream).length === 0) return decision;
      return { ...decision, headersToSet: { ...upstream, ...decision.headersToSet } };
    },
  };
}

/** The ext_authz filter must be enabled by the trigger's shadow effective policy (Istio's matcher). */
function checkEnabledMetadata(
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

/** Runs evaluators in order; the first denial wins (a NetworkPolicy ALLOW and an AuthorizationPolicy ALLOW both apply). */
function allOf(evaluators: readonly PolicyEvaluator[]): PolicyEvaluator {
  return {
    async decide(req) {
      let last: ProxyDecision | undefined;
      for (const evaluator of evaluators) {
        last = await evaluator.decide(req);
        if (last.status !== 200) return last;
      }
      return last ?? (await NO_TCP_POLICY.decide(req));
    },
  };
}

const NO_TCP_POLICY = new EnvoyPolicyEvaluator({ jwt: undefined, http: {}, tcp: {} });

function rbacGroups(rbacs: readonly Record<string, unknown>[], where: string): PolicyEvaluator[] {
  if (rbacs.length === 0) return [];
  return classifyRbacFilters(rbacs, 2, where).map(
    (tcp) => new EnvoyPolicyEvaluator({ jwt: undefined, http: {}, tcp }),
  );
}

/**
 * The evaluator for a chain's network filters, in Envoy's order: RBAC filters (every group
 * runs; the first denial wins) and, for CUSTOM policies with a gRPC provider, the
 * `istio_ext_authz_` trigger RBAC (shadow rules only) followed by `envoy.filters.network.ext_authz`:
 * when a CUSTOM rule matches the connection, the provider's Check decides — a denial (or a
 * failed call without `failure_mode_allow`) closes the connection, as Envoy's network filter does.
 */
export function tcpPolicyEvaluator(filters: readonly unknown[]): PolicyEvaluator {
  const before: Record<string, unknown>[] = [];
  const after: Record<string, unknown>[] = [];
  let trigger: Record<string, unknown> | undefined;
  let extAuthz: ExtAuthzGrpcConfig | undefined;
  for (const f of filters) {
    if (!isRecord(f)) continue;
    if (f['name'] === 'envoy.filters.network.rbac') {
      const rbac = config(f);
      if (rbac['shadow_rules_stat_prefix'] === EXT_AUTHZ_STAT_PREFIX) {
        if (trigger !== undefined || rbac['rules'] !== undefined)
          throw new Error('filters: one istio_ext_authz_ network RBAC filter, shadow rules only');
        trigger = rbac;
      } else (trigger === undefined ? before : after).push(rbac);
    } else if (f['name'] === 'envoy.filters.network.ext_authz') {
      if (trigger === undefined || extAuthz !== undefined || after.length > 0)
        throw new Error(
          'filters: a network ext_authz filter must follow its istio_ext_authz_ RBAC filter, once',
        );
      const cfg = config(f);
      checkEnabledMetadata(cfg, 'envoy.filters.network.rbac');
      extAuthz = parseExtAuthzGrpc(cfg);
    }
  }
  if (trigger !== undefined && extAuthz === undefined)
    throw new Error(
      'filters: an istio_ext_authz_ network RBAC filter without its ext_authz filter',
    );
  const stages = [...rbacGroups(before, 'filters')];
  if (trigger !== undefined && extAuthz !== undefined)
    stages.push(networkExtAuthz(trigger, extAuthz));
  stages.push(...rbacGroups(after, 'filters'));
  const [only] = stages;
  if (stages.length <= 1) return only ?? NO_TCP_POLICY;
  return allOf(stages);
}

/** The trigger's shadow rules decide whether the provider is asked; its answer decides the connection. */
function networkExtAuthz(
  trigger: Record<string, unknown>,
  provider: ExtAuthzGrpcConfig,
): PolicyEvaluator {
  const matcher = new EnvoyPolicyEvaluator({
    jwt: undefined,
    http: {},
    tcp: { deny: { rules: trigger['shadow_rules'] as RbacConfig['rules'] } },
  });
  return {
    async decide(req): Promise<ProxyDecision> {
      const matched = await matcher.decide(req);
      if (matched.status !== 403) return matched;
      const where = `CUSTOM policy ${matched.policy ?? ''} rule ${String(matched.rule ?? 0)}`;
      const result = await checkGrpcConnection(provider, {
        principal: req.principal,
        destinationPort: req.destinationPort,
        ...(req.sourceIp === undefined ? {} : { sourceIp: req.sourceIp }),
        ...(req.destinationIp === undefined ? {} : { destinationIp: req.destinationIp }),
      });
      if (result.kind === 'allow' || (result.kind === 'error' && provider.failOpen))
        return {
          ...matched,
          decision: 'ALLOW',
          status: 200,
          reason: `allowed by the external authorizer of ${where}`,
        };
      return {
        decision: 'DENY',
        status: 403,
        policy: matched.policy,
        rule: matched.rule,
        reason:
          result.kind === 'deny'
            ? `denied by the external authorizer of ${where}`
            : `external authorizer of ${where} failed (${result.reason}): connection closed`,
      };
    },
  };
}

/** Envoy's body for a policy denial: RBAC's 403, jwt_authn's 401 reason, else 400. */
export function denialBody(status: number, reason: string): string {
  if (status === 403) return 'RBAC: access denied';
  if (status === 401) return reason.replace(/^invalid JWT: /, '');
  return 'Bad Request';
}
