/**
 * The network authz filter of a filter chain: `envoy.filters.network.rbac`
 * (every group runs; the first denial wins) and, for CUSTOM policies with a
 * gRPC provider, `envoy.filters.network.ext_authz`. Inbound TCP chains, and
 * the NetworkPolicy gate ahead of an inbound HTTP connection manager.
 */
import { EnvoyPolicyEvaluator, EXT_AUTHZ_STAT_PREFIX } from '../../../policy/evaluation.js';
import {
  checkGrpcConnection,
  parseExtAuthzGrpc,
  type ExtAuthzGrpcConfig,
} from './ext-authz-grpc.js';
import {
  checkEnabledMetadata,
  classifyRbacFilters,
  filterConfig,
  isRecord,
  type PolicyEvaluator,
  type ProxyDecision,
  type RbacConfig,
} from './evaluator.js';

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
      const rbac = filterConfig(f);
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
      const cfg = filterConfig(f);
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
