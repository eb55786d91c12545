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
import type { AuthorizationFilters } from '../../policy/authorization-translation.js';
import type { JwtAuthenticationConfig } from '../../policy/jwt-authn.js';
import { EnvoyPolicyEvaluator, type XffOptions } from '../../policy/workload-authorizer.js';

type RbacConfig = NonNullable<AuthorizationFilters['allow']>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Strips `@type` from a decoded typed_config. */
function config(filter: Record<string, unknown>): Record<string, unknown> {
  const typed = isRecord(filter['typed_config']) ? filter['typed_config'] : {};
  return Object.fromEntries(Object.entries(typed).filter(([key]) => key !== '@type'));
}

function actionOf(rbac: Record<string, unknown>): string | undefined {
  const rules = isRecord(rbac['rules'])
    ? rbac['rules']
    : isRecord(rbac['shadow_rules'])
      ? rbac['shadow_rules']
      : undefined;
  return typeof rules?.['action'] === 'string' ? rules['action'] : undefined;
}

/** Sorts RBAC filter configs into the roles the evaluator runs in order. */
function classify(rbacs: readonly Record<string, unknown>[]): AuthorizationFilters {
  const deny = rbacs.filter((r) => actionOf(r) === 'DENY') as RbacConfig[];
  const allow = rbacs.find((r) => actionOf(r) === 'ALLOW') as RbacConfig | undefined;
  const audit = rbacs.find((r) => actionOf(r) === 'LOG') as RbacConfig | undefined;
  const [first, second] = deny;
  return {
    ...(second !== undefined && first !== undefined
      ? { custom: first, deny: second }
      : first !== undefined
        ? { deny: first }
        : {}),
    ...(allow === undefined ? {} : { allow }),
    ...(audit === undefined ? {} : { audit }),
  };
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

/** The evaluator for an HTTP connection manager (its `http_filters` and X-Forwarded-For settings). */
export function httpPolicyEvaluator(hcm: Record<string, unknown>): EnvoyPolicyEvaluator {
  const httpFilters = Array.isArray(hcm['http_filters']) ? (hcm['http_filters'] as unknown[]) : [];
  let jwt: JwtAuthenticationConfig | undefined;
  const rbacs: Record<string, unknown>[] = [];
  for (const f of httpFilters) {
    if (!isRecord(f)) continue;
    if (f['name'] === 'envoy.filters.http.jwt_authn')
      jwt = config(f) as unknown as JwtAuthenticationConfig;
    else if (f['name'] === 'envoy.filters.http.rbac') rbacs.push(config(f));
  }
  return new EnvoyPolicyEvaluator({ jwt, http: classify(rbacs), tcp: {}, xff: xffOf(hcm) });
}

/** The evaluator for a TCP chain's network filters. */
export function tcpPolicyEvaluator(filters: readonly unknown[]): EnvoyPolicyEvaluator {
  const rbacs: Record<string, unknown>[] = [];
  for (const f of filters)
    if (isRecord(f) && f['name'] === 'envoy.filters.network.rbac') rbacs.push(config(f));
  return new EnvoyPolicyEvaluator({ jwt: undefined, http: {}, tcp: classify(rbacs) });
}

/** Envoy's body for a policy denial: RBAC's 403, jwt_authn's 401 reason, else 400. */
export function denialBody(status: number, reason: string): string {
  if (status === 403) return 'RBAC: access denied';
  if (status === 401) return reason.replace(/^invalid JWT: /, '');
  return 'Bad Request';
}
