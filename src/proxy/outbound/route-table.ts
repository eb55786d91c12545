/**
 * Route selection over an Envoy RouteConfiguration (route.v3): the virtual
 * host is chosen by the request's authority as Envoy documents ("exact domain,
 * then suffix wildcard `*.foo`, then prefix wildcard `foo*`, then `*`"; a
 * domain may carry `:port`), then the first route whose match (path, prefix or
 * safe_regex; headers; query parameters) fits the request wins.
 */
import { compileSafeRegex, type SafeRegex } from '../../regex/index.js';
import type { XdsResource } from '../xds-client/xds-resource.js';

/** What the outbound path does with a request. */
export type RouteDecision =
  | { kind: 'cluster'; cluster: string; prefixRewrite?: string; matchedPrefix?: string }
  | { kind: 'direct'; status: number; body: string }
  | { kind: 'redirect'; status: number; location: string };

/** The parts of a request route matching looks at. */
export interface RouteRequest {
  authority: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function domainMatches(domain: string, host: string, authority: string): number {
  const d = domain.toLowerCase();
  if (d === authority || d === host) return 4;
  if (d.startsWith('*') && d.length > 1 && host.endsWith(d.slice(1))) return 3;
  if (d.endsWith('*') && d.length > 1 && host.startsWith(d.slice(0, -1))) return 2;
  if (d === '*') return 1;
  return 0;
}

/** The virtual host for `authority` (case-insensitive), or undefined. */
export function selectVirtualHost(
  routeConfig: XdsResource,
  authority: string,
): Record<string, unknown> | undefined {
  const lower = authority.toLowerCase();
  const host = lower.replace(/:\d+$/, '');
  let best: Record<string, unknown> | undefined;
  let bestScore = 0;
  for (const vhost of records(routeConfig['virtual_hosts'])) {
    for (const domain of Array.isArray(vhost['domains']) ? vhost['domains'] : []) {
      if (typeof domain !== 'string') continue;
      const score = domainMatches(domain, host, lower);
      if (score > bestScore) {
        best = vhost;
        bestScore = score;
      }
    }
  }
  return best;
}

const compiled = new WeakMap<object, SafeRegex | null>();

/**
 * The RE2 regex of a `safe_regex` matcher (full match, linear time), compiled
 * once per accepted config object; resource validation NACKs any pattern that
 * does not compile, so null (never matches) is only reached by unvalidated input.
 */
function regexOf(holder: Record<string, unknown>): SafeRegex | null {
  const hit = compiled.get(holder);
  if (hit !== undefined) return hit;
  const source = holder['regex'];
  let re: SafeRegex | null = null;
  if (typeof source === 'string') {
    try {
      re = compileSafeRegex(source);
    } catch {
      re = null;
    }
  }
  compiled.set(holder, re);
  return re;
}

/** Envoy StringMatcher (exact, prefix, suffix, contains, safe_regex; ignore_case). */
export function stringMatch(matcher: Record<string, unknown>, value: string): boolean {
  const ignoreCase = matcher['ignore_case'] === true;
  const v = ignoreCase ? value.toLowerCase() : value;
  const norm = (s: unknown): string =>
    typeof s === 'string' ? (ignoreCase ? s.toLowerCase() : s) : '';
  if ('exact' in matcher) return v === norm(matcher['exact']);
  if ('prefix' in matcher) return v.startsWith(norm(matcher['prefix']));
  if ('suffix' in matcher) return v.endsWith(norm(matcher['suffix']));
  if ('contains' in matcher) return v.includes(norm(matcher['contains']));
  const regex = matcher['safe_regex'];
  if (isRecord(regex)) return regexOf(regex)?.fullMatch(value) === true;
  return false;
}

/** A request header's value (repeated headers joined with `,`), by case-insensitive name. */
export function headerValue(headers: RouteRequest['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}

function matches(match: Record<string, unknown>, request: RouteRequest): boolean {
  const queryAt = request.path.indexOf('?');
  const path = queryAt === -1 ? request.path : request.path.slice(0, queryAt);
  const cs = match['case_sensitive'];
  const caseSensitive = !(cs === false || (isRecord(cs) && cs['value'] === false));
  const p = caseSensitive ? path : path.toLowerCase();
  const fold = (s: unknown): string =>
    typeof s === 'string' ? (caseSensitive ? s : s.toLowerCase()) : '';
  if (typeof match['path'] === 'string' && p !== fold(match['path'])) return false;
  if (typeof match['prefix'] === 'string' && !p.startsWith(fold(match['prefix']))) return false;
  const regex = match['safe_regex'];
  if (isRecord(regex) && regexOf(regex)?.fullMatch(path) !== true) return false;
  for (const header of records(match['headers'])) {
    const name = typeof header['name'] === 'string' ? header['name'] : '';
    const value = headerValue(request.headers, name);
    let ok: boolean;
    if (header['present_match'] === true) ok = value !== undefined;
    else if (isRecord(header['string_match']))
      ok = value !== undefined && stringMatch(header['string_match'], value);
    else ok = value !== undefined;
    if (header['invert_match'] === true) ok = !ok;
    if (!ok) return false;
  }
  const params = new URLSearchParams(queryAt === -1 ? '' : request.path.slice(queryAt + 1));
  for (const query of records(match['query_parameters'])) {
    const value = params.get(typeof query['name'] === 'string' ? query['name'] : '');
    if (value === null) return false;
    if (isRecord(query['string_match']) && !stringMatch(query['string_match'], value)) return false;
  }
  return true;
}

/** Picks a weighted cluster with a uniform draw in [0, total). */
function pickWeighted(weighted: Record<string, unknown>, draw: (total: number) => number): string {
  const clusters = records(weighted['clusters']);
  const weights = clusters.map(
    (c) => Number(isRecord(c['weight']) ? c['weight']['value'] : c['weight']) || 0,
  );
  const total = weights.reduce((a, b) => a + b, 0);
  let point = total > 0 ? draw(total) : 0;
  for (const [index, cluster] of clusters.entries()) {
    point -= weights[index] ?? 0;
    if (point < 0) return typeof cluster['name'] === 'string' ? cluster['name'] : '';
  }
  const first = clusters[0];
  return first !== undefined && typeof first['name'] === 'string' ? first['name'] : '';
}

/**
 * The decision for `request` under `routeConfig`, or undefined when no virtual
 * host or route matches (Envoy answers 404 with response flag NR).
 */
export function routeRequest(
  routeConfig: XdsResource,
  request: RouteRequest,
  draw: (total: number) => number,
): RouteDecision | undefined {
  const found = matchRoute(routeConfig, request);
  if (found === undefined) return undefined;
  return decide(found.route, request, draw);
}

/** The virtual host and first matching route for `request`, or undefined. */
export function matchRoute(
  routeConfig: XdsResource,
  request: RouteRequest,
): { vhost: Record<string, unknown>; route: Record<string, unknown> } | undefined {
  const vhost = selectVirtualHost(routeConfig, request.authority);
  if (vhost === undefined) return undefined;
  for (const route of records(vhost['routes'])) {
    const match = isRecord(route['match']) ? route['match'] : {};
    if (matches(match, request)) return { vhost, route };
  }
  return undefined;
}

/** What a matched route does with the request. */
export function decide(
  route: Record<string, unknown>,
  request: RouteRequest,
  draw: (total: number) => number,
): RouteDecision {
  {
    const match = isRecord(route['match']) ? route['match'] : {};
    const direct = route['direct_response'];
    if (isRecord(direct)) {
      const body =
        isRecord(direct['body']) && typeof direct['body']['inline_string'] === 'string'
          ? direct['body']['inline_string']
          : '';
      return { kind: 'direct', status: Number(direct['status']) || 200, body };
    }
    const redirect = route['redirect'];
    if (isRecord(redirect)) {
      const host =
        typeof redirect['host_redirect'] === 'string'
          ? redirect['host_redirect']
          : request.authority;
      const path =
        typeof redirect['path_redirect'] === 'string' ? redirect['path_redirect'] : request.path;
      const scheme = redirect['https_redirect'] === true ? 'https' : 'http';
      const codes: Record<string, number> = {
        MOVED_PERMANENTLY: 301,
        FOUND: 302,
        SEE_OTHER: 303,
        TEMPORARY_REDIRECT: 307,
        PERMANENT_REDIRECT: 308,
      };
      const code =
        typeof redirect['response_code'] === 'string'
          ? codes[redirect['response_code']]
          : undefined;
      return { kind: 'redirect', status: code ?? 301, location: `${scheme}://${host}${path}` };
    }
    const action = isRecord(route['route']) ? route['route'] : {};
    const cluster =
      typeof action['cluster'] === 'string'
        ? action['cluster']
        : isRecord(action['weighted_clusters'])
          ? pickWeighted(action['weighted_clusters'], draw)
          : '';
    const decision: RouteDecision = { kind: 'cluster', cluster };
    if (typeof action['prefix_rewrite'] === 'string' && typeof match['prefix'] === 'string') {
      decision.prefixRewrite = action['prefix_rewrite'];
      decision.matchedPrefix = match['prefix'];
    }
    return decision;
  }
}
