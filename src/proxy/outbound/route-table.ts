/**
 * Route selection over an Envoy RouteConfiguration (route.v3): the virtual
 * host is chosen by the request's authority as Envoy documents ("exact domain,
 * then suffix wildcard `*.foo`, then prefix wildcard `foo*`, then `*`"; a
 * domain may carry `:port`), then the first route whose match (path, prefix or
 * safe_regex; headers; query parameters) fits the request wins.
 */
import {
  compileRewrite,
  compileSafeRegex,
  type SafeRegex,
  type SafeRewrite,
} from '../../regex/index.js';
import { compileHeaderOps, fraction, type HeaderOps } from '../envoy-values.js';
import { compileMatch, matches, type RouteMatcherConfig } from './route-match.js';
import { compileRetry, type RouteRetry } from './retry-policy.js';
import { compileFault, type FaultConfig } from './fault-config.js';
import { routeCors, type CorsConfig } from './cors.js';
import { compileHcm, type HcmConfig } from './hcm-config.js';
import { routeRateLimit, type RateLimitConfig } from '../local-rate-limit.js';
import { compileRouteUpgrades } from '../request-head.js';

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

/** How well a (lower-cased) domain fits: 4 exact, 3 suffix wildcard, 2 prefix wildcard, 1 `*`. */
function domainMatches(d: string, host: string, authority: string): number {
  if (d === authority || d === host) return 4;
  if (d.startsWith('*') && d.length > 1 && host.endsWith(d.slice(1))) return 3;
  if (d.endsWith('*') && d.length > 1 && host.startsWith(d.slice(0, -1))) return 2;
  if (d === '*') return 1;
  return 0;
}

/** What a matched route does, compiled: a direct response, a redirect, or a cluster. */
export type RouteActionConfig =
  | { readonly kind: 'direct'; readonly status: number; readonly body: string }
  | {
      readonly kind: 'redirect';
      readonly status: number;
      readonly host: string | undefined;
      readonly path: string | undefined;
      readonly scheme: 'http' | 'https';
    }
  | {
      readonly kind: 'cluster';
      /** The cluster, or '' when it is weighted (or absent). */
      readonly cluster: string;
      readonly weighted: readonly { readonly name: string; readonly weight: number }[];
      readonly totalWeight: number;
      readonly prefixRewrite: string | undefined;
      readonly matchedPrefix: string | undefined;
      readonly regexRewrite: { readonly regex: SafeRegex; readonly rewrite: SafeRewrite } | null;
      readonly hostRewrite: string | undefined;
    };

/** A route, compiled: everything per-request code reads of it. */
export interface RouteEntry {
  readonly match: RouteMatcherConfig;
  readonly action: RouteActionConfig;
  /** `timeout` and `retry_policy`, before the cluster's `max_retries` cap. */
  readonly retry: RouteRetry;
  /** `request_mirror_policies`: cluster and share of requests (1 without runtime_fraction). */
  readonly mirrors: readonly { readonly cluster: string; readonly share: number }[];
  /** `hash_policy` entries (hash-lb.ts reads them for RING_HASH/MAGLEV clusters). */
  readonly hashPolicy: readonly Record<string, unknown>[];
  /** The fault filter's per-route config (rolled only when the HCM runs the filter). */
  readonly fault: FaultConfig;
  /** The CORS filter's per-route policy (applied only when the HCM runs the filter). */
  readonly cors: CorsConfig | undefined;
  /** The local rate limit filter's per-route config (replaces the HCM's for this route). */
  readonly rateLimit: RateLimitConfig | undefined;
  /** `upgrade_configs`: each upgrade type's decision (the HCM's apply to the others). */
  readonly upgrades: ReadonlyMap<string, boolean>;
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
}

/** A virtual host, compiled. */
export interface VirtualHostConfig {
  readonly name: string;
  /** Its domains, lower-cased. */
  readonly domains: readonly string[];
  readonly routes: readonly RouteEntry[];
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
}

/** A RouteConfiguration as the router reads it per request (compiled before the ACK). */
export interface RouteConfig {
  /** The accepted resource it was compiled from (an RDS update that keeps it keeps this too). */
  readonly source: Record<string, unknown>;
  readonly virtualHosts: readonly VirtualHostConfig[];
}

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

/**
 * A `regex_rewrite` (RE2 pattern, RE2 substitution: `\1` is group 1, `\\` a backslash);
 * resource validation NACKs one that does not compile, so null (no rewrite) is only
 * unvalidated input.
 */
function compileRegexRewrite(holder: unknown): { regex: SafeRegex; rewrite: SafeRewrite } | null {
  if (!isRecord(holder)) return null;
  const pattern = isRecord(holder['pattern']) ? holder['pattern']['regex'] : undefined;
  try {
    const regex = compileSafeRegex(typeof pattern === 'string' ? pattern : '');
    const substitution = holder['substitution'];
    return {
      regex,
      rewrite: compileRewrite(typeof substitution === 'string' ? substitution : '', regex),
    };
  } catch {
    return null;
  }
}

function compileAction(
  route: Record<string, unknown>,
  match: Record<string, unknown>,
): RouteActionConfig {
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
    const code = redirect['response_code'];
    return {
      kind: 'redirect',
      status: (typeof code === 'string' ? REDIRECT_CODES[code] : undefined) ?? 301,
      host: typeof redirect['host_redirect'] === 'string' ? redirect['host_redirect'] : undefined,
      path: typeof redirect['path_redirect'] === 'string' ? redirect['path_redirect'] : undefined,
      scheme: redirect['https_redirect'] === true ? 'https' : 'http',
    };
  }
  const action = isRecord(route['route']) ? route['route'] : {};
  const weighted = isRecord(action['weighted_clusters'])
    ? records(action['weighted_clusters']['clusters']).map((c) => ({
        name: typeof c['name'] === 'string' ? c['name'] : '',
        weight: Number(isRecord(c['weight']) ? c['weight']['value'] : c['weight']) || 0,
      }))
    : [];
  const rewrite =
    typeof action['prefix_rewrite'] === 'string' && typeof match['prefix'] === 'string';
  return {
    kind: 'cluster',
    cluster: typeof action['cluster'] === 'string' ? action['cluster'] : '',
    weighted,
    totalWeight: weighted.reduce((a, c) => a + c.weight, 0),
    prefixRewrite: rewrite ? (action['prefix_rewrite'] as string) : undefined,
    matchedPrefix: rewrite ? (match['prefix'] as string) : undefined,
    regexRewrite: compileRegexRewrite(action['regex_rewrite']),
    hostRewrite:
      typeof action['host_rewrite_literal'] === 'string'
        ? action['host_rewrite_literal']
        : undefined,
  };
}

/** The route action's retry, mirror and hash settings (defaults without a `route` action). */
function actionSettingsOf(
  action: Record<string, unknown>,
): Pick<RouteEntry, 'retry' | 'mirrors' | 'hashPolicy'> {
  return {
    retry: compileRetry(action),
    mirrors: records(action['request_mirror_policies']).map((m) => ({
      cluster: typeof m['cluster'] === 'string' ? m['cluster'] : '',
      share: isRecord(m['runtime_fraction']) ? fraction(m['runtime_fraction']['default_value']) : 1,
    })),
    hashPolicy: records(action['hash_policy']),
  };
}

function headerOpsOf(holder: Record<string, unknown>): {
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
} {
  return {
    requestHeaders: compileHeaderOps(
      holder['request_headers_to_add'],
      holder['request_headers_to_remove'],
    ),
    responseHeaders: compileHeaderOps(
      holder['response_headers_to_add'],
      holder['response_headers_to_remove'],
    ),
  };
}

/** Compiles an accepted RouteConfiguration (route-config.ts has already checked its fields). */
export function compileRouteConfig(routeConfig: Record<string, unknown>): RouteConfig {
  return {
    source: routeConfig,
    virtualHosts: records(routeConfig['virtual_hosts']).map((vhost) => ({
      name: typeof vhost['name'] === 'string' ? vhost['name'] : '',
      domains: (Array.isArray(vhost['domains']) ? vhost['domains'] : [])
        .filter((d): d is string => typeof d === 'string')
        .map((d) => d.toLowerCase()),
      routes: records(vhost['routes']).map((route) => {
        const match = isRecord(route['match']) ? route['match'] : {};
        return {
          match: compileMatch(match),
          action: compileAction(route, match),
          ...actionSettingsOf(isRecord(route['route']) ? route['route'] : {}),
          fault: compileFault(route),
          cors: routeCors(route),
          rateLimit: routeRateLimit(route),
          upgrades: compileRouteUpgrades(route['upgrade_configs']),
          ...headerOpsOf(route),
        };
      }),
      ...headerOpsOf(vhost),
    })),
  };
}

/** The virtual host for `authority` (case-insensitive), or undefined. */
export function selectVirtualHost(
  routeConfig: RouteConfig,
  authority: string,
): VirtualHostConfig | undefined {
  const lower = authority.toLowerCase();
  const host = lower.replace(/:\d+$/, '');
  let best: VirtualHostConfig | undefined;
  let bestScore = 0;
  for (const vhost of routeConfig.virtualHosts)
    for (const domain of vhost.domains) {
      const score = domainMatches(domain, host, lower);
      if (score > bestScore) {
        best = vhost;
        bestScore = score;
      }
    }
  return best;
}

/** A matched virtual host and route. */
export interface RouteMatch {
  readonly host: VirtualHostConfig;
  readonly entry: RouteEntry;
}

/** The virtual host and first matching route for `request`, or undefined. */
export function matchRoute(
  routeConfig: RouteConfig,
  request: RouteRequest,
): RouteMatch | undefined {
  const vhost = selectVirtualHost(routeConfig, request.authority);
  if (vhost === undefined) return undefined;
  for (const entry of vhost.routes)
    if (matches(entry.match, request)) return { host: vhost, entry };
  return undefined;
}

/**
 * The decision for `request` under `routeConfig`, or undefined when no virtual
 * host or route matches (Envoy answers 404 with response flag NR).
 */
export function routeRequest(
  routeConfig: RouteConfig,
  request: RouteRequest,
  draw: (total: number) => number,
): RouteDecision | undefined {
  const found = matchRoute(routeConfig, request);
  if (found === undefined) return undefined;
  return decide(found.entry, request, draw);
}

/** What a matched route does with the request (a weighted cluster drawn in [0, total)). */
export function decide(
  entry: RouteEntry,
  request: RouteRequest,
  draw: (total: number) => number,
): RouteDecision {
  const action = entry.action;
  switch (action.kind) {
    case 'direct':
      return { kind: 'direct', status: action.status, body: action.body };
    case 'redirect':
      return {
        kind: 'redirect',
        status: action.status,
        location: `${action.scheme}://${action.host ?? request.authority}${action.path ?? request.path}`,
      };
    case 'cluster': {
      let cluster = action.cluster;
      if (cluster === '' && action.weighted.length > 0) {
        let point = action.totalWeight > 0 ? draw(action.totalWeight) : 0;
        cluster = action.weighted[0]?.name ?? '';
        for (const c of action.weighted) {
          point -= c.weight;
          if (point < 0) {
            cluster = c.name;
            break;
          }
        }
      }
      const decision: RouteDecision = { kind: 'cluster', cluster };
      if (action.prefixRewrite !== undefined && action.matchedPrefix !== undefined) {
        decision.prefixRewrite = action.prefixRewrite;
        decision.matchedPrefix = action.matchedPrefix;
      }
      return decision;
    }
  }
}

const recordOf = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});

/** A listener's RDS HttpConnectionManagers by destination port (compiled before the ACK). */
export interface ListenerHcms {
  /** The first chain's HCM per `destination_port`, with that chain's position. */
  readonly byPort: ReadonlyMap<number, { readonly index: number; readonly hcm: HcmConfig }>;
  /** The first chain without a `destination_port`, if any. */
  readonly anyPort: { readonly index: number; readonly hcm: HcmConfig } | undefined;
}

/** Indexes a listener's chains that carry an RDS HttpConnectionManager, in chain order. */
export function compileListenerHcms(listener: Record<string, unknown>): ListenerHcms {
  const byPort = new Map<number, { index: number; hcm: HcmConfig }>();
  let anyPort: { index: number; hcm: HcmConfig } | undefined;
  for (const [index, chain] of records(listener['filter_chains']).entries()) {
    const match = recordOf(chain['filter_chain_match']);
    const wanted = isRecord(match['destination_port'])
      ? match['destination_port']['value']
      : undefined;
    const raw = records(chain['filters'])
      .map((filter) => recordOf(filter['typed_config']))
      .find((config) => isRecord(config['rds']));
    if (raw === undefined) continue;
    const port = Number(wanted);
    if (wanted === undefined) anyPort ??= { index, hcm: compileHcm(raw) };
    else if (!byPort.has(port)) byPort.set(port, { index, hcm: compileHcm(raw) });
  }
  return { byPort, anyPort };
}

/** The HCM of the listener's chain for `port` (first chain whose destination_port fits). */
export function hcmForPort(listener: ListenerHcms, port: number): HcmConfig | undefined {
  const specific = listener.byPort.get(port);
  const any = listener.anyPort;
  if (specific !== undefined && (any === undefined || specific.index < any.index))
    return specific.hcm;
  return any?.hcm;
}
