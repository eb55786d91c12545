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
import {
  asListener,
  hcmOf,
  type Route,
  type RouteAction,
  type RouteConfiguration,
} from '../../xds/index.js';
import { StringMemo } from '../string-memo.js';

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
function compileRegexRewrite(
  holder: RouteAction['regex_rewrite'],
): { regex: SafeRegex; rewrite: SafeRewrite } | null {
  if (holder === undefined) return null;
  try {
    const regex = compileSafeRegex(holder.pattern?.regex ?? '');
    return { regex, rewrite: compileRewrite(holder.substitution ?? '', regex) };
  } catch {
    return null;
  }
}

function compileAction(route: Route): RouteActionConfig {
  const direct = route.direct_response;
  if (direct !== undefined)
    return {
      kind: 'direct',
      status: direct.status || 200,
      body: direct.body?.inline_string ?? '',
    };
  const redirect = route.redirect;
  if (redirect !== undefined)
    return {
      kind: 'redirect',
      status:
        (redirect.response_code === undefined
          ? undefined
          : REDIRECT_CODES[redirect.response_code]) ?? 301,
      host: redirect.host_redirect,
      path: redirect.path_redirect,
      scheme: redirect.https_redirect === true ? 'https' : 'http',
    };
  const action = route.route ?? {};
  const weighted = (action.weighted_clusters?.clusters ?? []).map((c) => ({
    name: c.name ?? '',
    weight: Number(c.weight?.value) || 0,
  }));
  const prefix = route.match?.prefix;
  const rewrite = action.prefix_rewrite !== undefined && prefix !== undefined;
  return {
    kind: 'cluster',
    cluster: action.cluster ?? '',
    weighted,
    totalWeight: weighted.reduce((a, c) => a + c.weight, 0),
    prefixRewrite: rewrite ? action.prefix_rewrite : undefined,
    matchedPrefix: rewrite ? prefix : undefined,
    regexRewrite: compileRegexRewrite(action.regex_rewrite),
    hostRewrite: action.host_rewrite_literal,
  };
}

/** The route action's retry, mirror and hash settings (defaults without a `route` action). */
function actionSettingsOf(
  action: RouteAction,
): Pick<RouteEntry, 'retry' | 'mirrors' | 'hashPolicy'> {
  return {
    retry: compileRetry(action),
    mirrors: (action.request_mirror_policies ?? []).map((m) => ({
      cluster: m.cluster ?? '',
      share: m.runtime_fraction === undefined ? 1 : fraction(m.runtime_fraction.default_value),
    })),
    hashPolicy: action.hash_policy ?? [],
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

/**
 * Compiles an accepted RouteConfiguration: route-config.ts has already checked its fields,
 * and protobufjs decoded it from the RouteConfiguration proto, so its structure is the shared
 * type's (src/xds/envoy-route.ts, which the control plane builds).
 */
export function compileRouteConfig(resource: Record<string, unknown>): RouteConfig {
  const routeConfig = resource as unknown as RouteConfiguration;
  return {
    source: resource,
    virtualHosts: (routeConfig.virtual_hosts ?? []).map((vhost) => ({
      name: vhost.name ?? '',
      domains: (vhost.domains ?? []).map((d) => d.toLowerCase()),
      routes: (vhost.routes ?? []).map((route) => ({
        match: compileMatch(route.match ?? {}),
        action: compileAction(route),
        ...actionSettingsOf(route.route ?? {}),
        fault: compileFault(route),
        cors: routeCors(route),
        rateLimit: routeRateLimit(route),
        upgrades: compileRouteUpgrades(route.route?.upgrade_configs),
        ...headerOpsOf(route),
      })),
      ...headerOpsOf(vhost),
    })),
  };
}

/** The virtual host per authority, per route config (a new config starts empty). */
const chosenHosts = new WeakMap<RouteConfig, StringMemo<VirtualHostConfig | undefined>>();
/** At most this many authorities per config: more (a client inventing Host values) clear it. */
export const CHOSEN_HOSTS_LIMIT = 1024;
/** Longer authorities are searched, not kept (a DNS name is at most 253 characters). */
const CHOSEN_HOST_CHARS = 300;

/**
 * The virtual host for `authority` (case-insensitive), or undefined. The answer is a function
 * of the config and the authority, kept per config: a request does not lower-case its Host
 * and walk every domain of every virtual host (Istio's route configs list one host per
 * service of the mesh, several domains each).
 */
export function selectVirtualHost(
  routeConfig: RouteConfig,
  authority: string,
): VirtualHostConfig | undefined {
  let chosen = chosenHosts.get(routeConfig);
  if (chosen === undefined) {
    chosen = new StringMemo(
      (a) => searchVirtualHosts(routeConfig, a),
      CHOSEN_HOSTS_LIMIT,
      CHOSEN_HOST_CHARS,
    );
    chosenHosts.set(routeConfig, chosen);
  }
  return chosen.get(authority);
}

/** {@link selectVirtualHost} without the memo: exact, then longest wildcard, then `*`. */
export function searchVirtualHosts(
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

/** A listener's RDS HttpConnectionManagers by destination port (compiled before the ACK). */
export interface ListenerHcms {
  /** The first chain's HCM per `destination_port`, with that chain's position. */
  readonly byPort: ReadonlyMap<number, { readonly index: number; readonly hcm: HcmConfig }>;
  /** The first chain without a `destination_port`, if any. */
  readonly anyPort: { readonly index: number; readonly hcm: HcmConfig } | undefined;
}

/** Indexes a listener's chains that carry an RDS HttpConnectionManager, in chain order. */
export function compileListenerHcms(resource: Record<string, unknown>): ListenerHcms {
  const byPort = new Map<number, { index: number; hcm: HcmConfig }>();
  let anyPort: { index: number; hcm: HcmConfig } | undefined;
  for (const [index, chain] of (asListener(resource).filter_chains ?? []).entries()) {
    const wanted = chain.filter_chain_match?.destination_port?.value;
    const hcm = (chain.filters ?? []).map(hcmOf).find((config) => config.rds !== undefined);
    if (hcm === undefined) continue;
    const port = Number(wanted);
    if (wanted === undefined) anyPort ??= { index, hcm: compileHcm(hcm) };
    else if (!byPort.has(port)) byPort.set(port, { index, hcm: compileHcm(hcm) });
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
