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
import { stringMatch } from './route-match.js';

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

function originAllowed(policy: Record<string, unknown>, origin: string): boolean {
  return list(policy['allow_origin_string_match']).some(
    (m) => m['exact'] === '*' || stringMatch(m, origin),
  );
}

/** A google.protobuf.BoolValue as decoded (`{value: true}`), or a bare boolean. */
function boolValue(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  const inner = rec(value)['value'];
  return typeof inner === 'boolean' ? inner : undefined;
}

/** The CORS outcome for a request under `policy` (a CorsPolicy; undefined = no CORS on the route). */
export function corsOutcome(
  policy: Record<string, unknown> | undefined,
  method: string | undefined,
  headers: IncomingHttpHeaders,
): CorsOutcome {
  if (policy === undefined) return NONE;
  const origin = header(headers, 'origin');
  if (origin === '') return NONE;
  const allowed = originAllowed(policy, origin);
  const credentials = boolValue(policy['allow_credentials']) === true;
  const preflight = method === 'OPTIONS' && header(headers, 'access-control-request-method') !== '';
  if (preflight) {
    if (!allowed)
      return boolValue(policy['forward_not_matching_preflights']) === false
        ? { kind: 'preflight', headers: {} }
        : NONE;
    const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
    if (credentials) out['access-control-allow-credentials'] = 'true';
    const methods = str(policy['allow_methods']);
    if (methods !== '') out['access-control-allow-methods'] = methods;
    const allowHeaders = str(policy['allow_headers']);
    if (allowHeaders !== '') out['access-control-allow-headers'] = allowHeaders;
    const maxAge = str(policy['max_age']);
    if (maxAge !== '') out['access-control-max-age'] = maxAge;
    return { kind: 'preflight', headers: out };
  }
  if (!allowed) return NONE;
  const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
  if (credentials) out['access-control-allow-credentials'] = 'true';
  const expose = str(policy['expose_headers']);
  if (expose !== '') out['access-control-expose-headers'] = expose;
  return { kind: 'response', headers: out };
}

/** The route's CorsPolicy when the HCM runs the CORS filter. */
export function corsPolicyOf(
  hcm: Record<string, unknown> | undefined,
  route: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const enabled = list(hcm?.['http_filters']).some((f) => f['name'] === 'envoy.filters.http.cors');
  if (!enabled) return undefined;
  const perFilter = rec(route['typed_per_filter_config']);
  return 'envoy.filters.http.cors' in perFilter
    ? rec(perFilter['envoy.filters.http.cors'])
    : undefined;
}
