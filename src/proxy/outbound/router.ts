/**
 * The router layer: from a request head to a route decision and the head
 * that goes upstream. The outbound listener's filter chain is chosen by the
 * target's port (`filter_chain_match.destination_port`), its
 * HttpConnectionManager names the RDS route configuration, route-table.ts
 * picks the virtual host and route (a gateway passes its own HCM instead).
 * What goes upstream — for requests, upgrades and mirrors alike — is built by
 * {@link upstreamHead}: forwarded headers with the host rewrite, request id,
 * trace context (this hop as a child span), the virtual host's and route's
 * header operations, and the path after prefix and regex rewrites.
 *
 * Speaks only http/types.ts: no node:http request or response here.
 */
import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';
import {
  childSpan,
  injectTraceContext,
  parseTraceContext,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  type SpanContext,
} from '../../telemetry/index.js';
import { applyCompiledHeaderOps, chance } from '../envoy-values.js';
import { forwardedRequestHeaders } from '../forwarded-headers.js';
import type { RequestHeaders, RequestTarget, RouteRequest } from '../http/types.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { HcmConfig } from './hcm-config.js';
import { StringMemo } from '../string-memo.js';
import { hcmForPort, matchRoute, type RouteDecision, type RouteMatch } from './route-table.js';

export type { RouteMatch };
/** A decision that sends the request to a cluster. */
export type ClusterDecision = Extract<RouteDecision, { kind: 'cluster' }>;

/** Absolute-form URLs parsed before, by URL (bounded: cleared when full; long URLs never kept). */
const absoluteTargets = new StringMemo(parseAbsolute, 1024, 512);

function parseAbsolute(url: string): RequestTarget | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return Object.freeze({
    authority: parsed.host,
    host: parsed.hostname,
    port: parsed.port === '' ? 80 : Number(parsed.port),
    path: `${parsed.pathname}${parsed.search}`,
  });
}

/** The last Host an origin-form target was read from, and what it gave. */
let lastHost: string | undefined;
let lastDefaultPort = 0;
let lastHostPart = '';
let lastPort = 0;

/**
 * The request's target from its request-target and Host: absolute-form
 * `http://…` (an explicit proxy request) or origin-form with Host;
 * `defaultPort` applies when the authority names none (80, or a CONNECT
 * tunnel's port). Undefined for anything else.
 *
 * A function of its arguments only, so answers are reused: an absolute-form
 * URL seen before skips WHATWG URL parsing (~2 % of an outbound proxy's CPU
 * when clients use it as their HTTP proxy), and a Host equal to the last one
 * skips its port regexes.
 */
export function targetOf(
  url: string,
  host: string | undefined,
  defaultPort = 80,
): RequestTarget | undefined {
  if (url.startsWith('http://')) {
    return absoluteTargets.get(url);
  }
  if (host === undefined || !url.startsWith('/')) return undefined;
  if (host !== lastHost || defaultPort !== lastDefaultPort) {
    const portMatch = /:(\d+)$/.exec(host);
    lastHostPart = host.replace(/:\d+$/, '');
    lastPort = portMatch?.[1] === undefined ? defaultPort : Number(portMatch[1]);
    lastHost = host;
    lastDefaultPort = defaultPort;
  }
  return { authority: host, host: lastHostPart, port: lastPort, path: url };
}

/** A CONNECT request's authority-form target, or undefined without a port. */
export function connectTargetOf(authority: string): RequestTarget | undefined {
  const portMatch = /:(\d+)$/.exec(authority);
  if (portMatch?.[1] === undefined) return undefined;
  return {
    authority,
    host: authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''),
    port: Number(portMatch[1]),
    path: '/',
  };
}

/** The HCM for `port` on listener `listenerName`, or the gateway's own (`hcmOverride`). */
export function hcmFor(
  snapshot: XdsSnapshot,
  listenerName: string,
  port: number,
  hcmOverride: HcmConfig | undefined,
): HcmConfig | undefined {
  if (hcmOverride !== undefined) return hcmOverride;
  const listener = snapshot.typed.listeners.get(listenerName);
  return listener === undefined ? undefined : hcmForPort(listener, port);
}

/** The route `request` matches in the HCM's RDS route configuration, if any. */
export function routeIn(
  snapshot: XdsSnapshot,
  hcm: HcmConfig | undefined,
  request: RouteRequest,
): RouteMatch | undefined {
  const routeName = hcm?.routeConfigName;
  const routeConfig = routeName === undefined ? undefined : snapshot.typed.routes.get(routeName);
  return routeConfig === undefined ? undefined : matchRoute(routeConfig, request);
}

/** The path after the route's prefix and regex rewrites (the query is kept as is). */
export function rewrittenPath(path: string, match: RouteMatch, decision: ClusterDecision): string {
  let out = path;
  if (decision.prefixRewrite !== undefined && decision.matchedPrefix !== undefined)
    out = decision.prefixRewrite + out.slice(decision.matchedPrefix.length);
  const action = match.entry.action;
  const regexRewrite = action.kind === 'cluster' ? action.regexRewrite : null;
  if (regexRewrite !== null) {
    const q = out.indexOf('?');
    const bare = q === -1 ? out : out.slice(0, q);
    out =
      regexRewrite.regex.replaceAll(bare, regexRewrite.rewrite) + (q === -1 ? '' : out.slice(q));
  }
  return out;
}

/** The upstream head of a routed request, upgrade or mirror, and the span this hop started. */
export interface UpstreamHead {
  readonly headers: http.OutgoingHttpHeaders;
  readonly path: string;
  readonly span: SpanContext;
}

/** Request fields an app's own request never carries past its sidecar. */
const APP_MAY_NOT_SEND: ReadonlySet<string> = new Set([
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
]);

/** See the module comment; `traceSampling` is the share of new root traces sampled. */
export function upstreamHead(
  headersIn: RequestHeaders,
  target: RequestTarget,
  match: RouteMatch,
  decision: ClusterDecision,
  traceSampling: number,
): UpstreamHead {
  const action = match.entry.action;
  // Only this proxy speaks for its workload: an app's own peer headers never leave.
  const headers = forwardedRequestHeaders(headersIn, APP_MAY_NOT_SEND);
  headers['host'] =
    (action.kind === 'cluster' ? action.hostRewrite : undefined) ?? target.authority;
  headers['x-request-id'] ??= randomUUID();
  headers['x-forwarded-proto'] ??= 'http';
  // Trace propagation as Envoy's tracer does: this hop is a child span of the caller's context
  // (W3C traceparent, else B3), or a new root; written in W3C and B3 forms.
  const parent = parseTraceContext(headersIn);
  const span = childSpan(parent, parent === undefined ? { sampled: chance(traceSampling) } : {});
  injectTraceContext(headers, span);
  applyCompiledHeaderOps(headers, match.host.requestHeaders);
  applyCompiledHeaderOps(headers, match.entry.requestHeaders);
  return { headers, path: rewrittenPath(target.path, match, decision), span };
}

/** The route's response header operations, then the virtual host's (Envoy's order). */
export function applyResponseHeaderOps(headers: http.OutgoingHttpHeaders, match: RouteMatch): void {
  applyCompiledHeaderOps(headers, match.entry.responseHeaders);
  applyCompiledHeaderOps(headers, match.host.responseHeaders);
}
