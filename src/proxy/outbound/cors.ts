/**
 * Envoy's CORS filter (envoy.filters.http.cors) over a route's per-filter
 * CorsPolicy, as Istio's `corsPolicy` compiles to it:
 * - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
 *   from an allowed origin is answered here, 200 with the allowed methods,
 *   headers, max age and credentials, and never reaches the app; one from an
 *   origin that is not allowed is forwarded (`forward_not_matching_preflights`,
 *   the default) or answered 200 without CORS headers (Istio's IGNORE);
 * - any other request from an allowed origin gets
 *   `Access-Control-Allow-Origin: <origin>` (plus credentials and exposed
 *   headers) on its response, whoever produced it;
 * - requests without `Origin`, or from origins not allowed, are untouched.
 * An exact `*` matcher allows every origin; the origin is echoed, not `*`.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { list, rec, str } from '../../xds/index.js';
import { compileStringMatcher, stringMatches, type StringMatcherConfig } from './route-match.js';

/** What the CORS filter does with one request. */
export type CorsOutcome =
  | { readonly kind: 'none' }
  /** Answer now with 200 and these headers (empty: an ignored unmatched preflight). */
  | { readonly kind: 'preflight'; readonly headers: OutgoingHttpHeaders }
  /** Forward, and set these headers on the response. */
  | { readonly kind: 'response'; readonly headers: OutgoingHttpHeaders };

const NONE: CorsOutcome = { kind: 'none' };

function header(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** A route's CorsPolicy, compiled with the route before the ACK. */
export interface CorsConfig {
  /** An exact `*` matcher: every origin is allowed (and echoed). */
  readonly anyOrigin: boolean;
  readonly origins: readonly StringMatcherConfig[];
  readonly credentials: boolean;
  /** `forward_not_matching_preflights` (default true). */
  readonly forwardNotMatching: boolean;
  readonly methods: string;
  readonly headers: string;
  readonly maxAge: string;
  readonly expose: string;
}

/** A google.protobuf.BoolValue as decoded (`{value: true}`), or a bare boolean. */
function boolValue(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  const inner = rec(value)['value'];
  return typeof inner === 'boolean' ? inner : undefined;
}

/** Compiles a route's CorsPolicy (its `typed_per_filter_config` entry). */
export function compileCors(policy: Record<string, unknown>): CorsConfig {
  const matchers = list(policy['allow_origin_string_match']);
  return {
    anyOrigin: matchers.some((m) => m['exact'] === '*'),
    origins: matchers.map(compileStringMatcher),
    credentials: boolValue(policy['allow_credentials']) === true,
    forwardNotMatching: boolValue(policy['forward_not_matching_preflights']) !== false,
    methods: str(policy['allow_methods']),
    headers: str(policy['allow_headers']),
    maxAge: str(policy['max_age']),
    expose: str(policy['expose_headers']),
  };
}

/** The CorsPolicy of an accepted route, if it has one. */
export function routeCors(route: Record<string, unknown>): CorsConfig | undefined {
  const perFilter = rec(route['typed_per_filter_config']);
  return 'envoy.filters.http.cors' in perFilter
    ? compileCors(rec(perFilter['envoy.filters.http.cors']))
    : undefined;
}

/** The CORS outcome for a request under `policy` (undefined = no CORS on the route). */
export function corsOutcome(
  policy: CorsConfig | undefined,
  method: string | undefined,
  headers: IncomingHttpHeaders,
): CorsOutcome {
  if (policy === undefined) return NONE;
  const origin = header(headers, 'origin');
  if (origin === '') return NONE;
  const allowed = policy.anyOrigin || policy.origins.some((m) => stringMatches(m, origin));
  const preflight = method === 'OPTIONS' && header(headers, 'access-control-request-method') !== '';
  if (preflight) {
    if (!allowed) return policy.forwardNotMatching ? NONE : { kind: 'preflight', headers: {} };
    const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
    if (policy.credentials) out['access-control-allow-credentials'] = 'true';
    if (policy.methods !== '') out['access-control-allow-methods'] = policy.methods;
    if (policy.headers !== '') out['access-control-allow-headers'] = policy.headers;
    if (policy.maxAge !== '') out['access-control-max-age'] = policy.maxAge;
    return { kind: 'preflight', headers: out };
  }
  if (!allowed) return NONE;
  const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
  if (policy.credentials) out['access-control-allow-credentials'] = 'true';
  if (policy.expose !== '') out['access-control-expose-headers'] = policy.expose;
  return { kind: 'response', headers: out };
}
