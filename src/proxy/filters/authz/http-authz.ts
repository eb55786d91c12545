/**
 * The HTTP authz filter of one HTTP connection manager, built from the filters
 * the control plane sent: `envoy.filters.http.jwt_authn`, the
 * `envoy.filters.http.rbac` filters in order (the translation emits
 * CUSTOM-as-deny, DENY, ALLOW, AUDIT) and `envoy.filters.http.ext_authz`. The
 * evaluator is the policy module's, so the proxy decides exactly as
 * `palisade check authz`. Used alike by inbound chains and gateways.
 */
// Policy's evaluation surface, not its barrel: the barrel also carries the YAML loaders and
// their validators, which a proxy never runs.
import {
  EnvoyPolicyEvaluator,
  EXT_AUTHZ_STAT_PREFIX,
  type JwtAuthenticationConfig,
  type XffOptions,
} from '../../../policy/evaluation.js';
import { compileRequestHeadPolicy } from '../../request-head.js';
import { checkGrpc, parseExtAuthzGrpc, type ExtAuthzGrpcConfig } from './ext-authz-grpc.js';
import { checkHttp, parseExtAuthzHttp, type ExtAuthzHttpConfig } from './ext-authz-http.js';
import {
  checkEnabledMetadata,
  classifyRbacFilters,
  filterConfig,
  isRecord,
  type PolicyEvaluator,
  type ProxyDecision,
  type RbacConfig,
} from './evaluator.js';

type ExtAuthzService =
  | { readonly kind: 'http'; readonly config: ExtAuthzHttpConfig }
  | { readonly kind: 'grpc'; readonly config: ExtAuthzGrpcConfig };

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
      jwt = filterConfig(f) as unknown as JwtAuthenticationConfig;
    else if (f['name'] === 'envoy.filters.http.ext_authz') {
      // Istio's shape: the ext_authz filter runs when the RBAC filter right before it
      // (shadow rules under `istio_ext_authz_`) matched a CUSTOM rule. Anything else
      // (no trigger, two ext_authz filters, a gRPC service) is rejected, never skipped.
      if (trigger === undefined || extAuthz !== undefined)
        throw new Error(
          'http_filters: an ext_authz filter must follow its istio_ext_authz_ RBAC filter, once',
        );
      const cfg = filterConfig(f);
      extAuthz =
        cfg['grpc_service'] !== undefined && cfg['http_service'] === undefined
          ? { kind: 'grpc', config: parseExtAuthzGrpc(cfg) }
          : { kind: 'http', config: parseExtAuthzHttp(cfg) };
      checkEnabledMetadata(filterConfig(f));
    } else if (f['name'] === 'envoy.filters.http.rbac') {
      const rbac = filterConfig(f);
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
  const pathNormalization = compileRequestHeadPolicy(hcm).normalization;
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
