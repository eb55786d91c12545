/**
 * The sidecar's outbound listener (docs/xds-contract.md "Outbound"): an
 * explicit HTTP proxy on `<instance-ip>:15001` taking absolute-form requests
 * and CONNECT. The filter chain is chosen by the target's port
 * (`filter_chain_match.destination_port`), its HttpConnectionManager names the
 * RDS route configuration, the route names the cluster, and the cluster's EDS
 * endpoints are picked by its load-balancing policy. Every lookup reads the
 * current snapshot, so an accepted xDS update takes effect on the next request
 * and the proxy keeps serving its last good config when the control plane is
 * gone.
 *
 * Route actions implemented as Envoy documents them (route.v3.RouteAction):
 * timeout (default 15 s; 0 disables) → 504 UT; retry_policy (retry_on
 * 5xx, gateway-error, connect-failure, refused-stream, reset,
 * retriable-4xx, retriable-status-codes; num_retries; per_try_timeout;
 * exponential back-off 25 ms base, 250 ms cap, full jitter); fault filter
 * (delay, abort) from `typed_per_filter_config`; prefix/regex/host rewrites;
 * request/response header operations; request mirroring. Clusters:
 * ROUND_ROBIN, LEAST_REQUEST, RANDOM; circuit breakers → 503 UO; outlier
 * detection (consecutive 5xx / gateway failures → ejection for
 * base_ejection_time × n, bounded by max_ejection_percent); upstream TLS with
 * secure naming (upstream-tls.ts).
 */
import * as http from 'node:http';
import { str } from '../../xds/index.js';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { randomInt, randomUUID } from 'node:crypto';
import { Pool } from '../upstream-pool.js';
import { forwardedRequestHeaders, forwardedResponseHeaders } from '../forwarded-headers.js';
import {
  createH2Downstream,
  isH2,
  isH2Preface,
  localReply,
  noteGrpcStatus,
  protocolOf,
  sentGrpcStatus,
  isGrpc,
  replayableBody,
  requestHasBody,
  takeTrailersOnlyStatus,
  writeChunk,
  type AnyRequest,
  type AnyResponse,
} from '../h2-downstream.js';
import {
  createH2Origin,
  upstreamHttp2,
  type UpstreamController,
  type UpstreamDispatcher,
  type UpstreamHandler,
} from '../h2-upstream.js';
import type { Logger } from '../../logging/index.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsSnapshot } from '../xds-client/ads-client.js';
import type { XdsResource } from '../xds-client/resource-validation.js';
import {
  compileRewrite,
  compileSafeRegex,
  type SafeRegex,
  type SafeRewrite,
} from '../../regex/index.js';
import { corsOutcome, corsPolicyOf } from './cors.js';
import { applyHeaderOps, chance, durationMs, fraction } from '../envoy-values.js';
import {
  createLocalRateLimiter,
  downstreamConnection,
  hcmRateLimit,
  routeRateLimit,
} from '../local-rate-limit.js';
import { hashPick, requestHash } from './hash-lb.js';
import { createHealthChecker } from './health-checker.js';
import { rejectUpgrade, relayUpgrade } from '../http-upgrade.js';
import { containRequest, containSocket } from '../containment.js';
import {
  answerParseError,
  checkRequestHead,
  enforceHeadersTimeout,
  CONNECTION_CHECK_INTERVAL_MS,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
  requestHeadPolicy,
  rejectOnSocket,
  upgradeAllowed,
  type HeadRejection,
} from '../request-head.js';
import {
  childSpan,
  injectTraceContext,
  parseTraceContext,
  type SpanContext,
} from '../../telemetry/index.js';
import { decide, matchRoute, type RouteDecision } from './route-table.js';
import {
  createUpstreamTlsAgents,
  parseUpstreamTls,
  type UpstreamTlsConfig,
} from './upstream-tls.js';

/** One finished outbound request, for access logs and metrics. */
export interface OutboundRecord {
  readonly authority: string;
  readonly method: string;
  readonly path: string;
  readonly cluster: string;
  readonly upstream: string;
  readonly status: number;
  readonly flags: string;
  readonly attempts: number;
  readonly durationMs: number;
  readonly mtls: boolean;
  /** `HTTP/1.1` or `HTTP/2` (downstream). */
  readonly protocol: string;
  /** Set for gRPC requests: the status the client got, when one was sent. */
  readonly grpc?: { readonly status: number | undefined };
  /** The span this hop started (propagated upstream), for span export. */
  readonly span?: SpanContext;
}

export interface OutboundProxyOptions {
  /** Current accepted xDS snapshot. */
  snapshot: () => XdsSnapshot;
  /** Listener name to serve (default `outbound`). */
  listenerName?: string;
  /** SDS secrets (workload certificate, trust bundle) for TLS clusters. */
  secrets?: SecretStore;
  /** Called once per finished request. */
  onRecord?: (record: OutboundRecord) => void;
  /** Source address for connections to loopback endpoints (the instance IP), so peers can tell pods apart. */
  localAddress?: string;
  /** Share of new traces (no sampled parent context) that are sampled, 0–1 (default 1). */
  traceSampling?: number;
  /** Where connection-level events (tcp_proxy refusals) are logged. */
  logger?: Logger;
  /** Called when a server fails secure naming (presents an identity not allowed for the service). */
  onSecureNamingFailure?: (cluster: string, presented: readonly string[]) => void;
}

/** A running outbound proxy. */
export interface OutboundProxy {
  readonly server: http.Server;
  /** Routes a request with the given HttpConnectionManager (gateway listeners). */
  handle(req: AnyRequest, res: AnyResponse, hcm: Record<string, unknown>): void;
  /** Routes an HTTP/1.1 Upgrade with the given HttpConnectionManager (gateway listeners). */
  handleUpgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    hcm: Record<string, unknown>,
  ): void;
  /** Applies an accepted snapshot's side effects (active health checks start/stop). */
  sync(snapshot: XdsSnapshot): void;
  /**
   * Relays a connection through a tcp_proxy config (gateway TLS passthrough, TCP servers);
   * `to`: that endpoint of the cluster instead of a load-balanced one (a captured connection
   * to a pod IP, src/proxy/capture), closed when it is not a healthy endpoint of the cluster.
   */
  handleTcp(
    socket: Duplex,
    tcpProxy: Record<string, unknown>,
    first: Buffer,
    to?: { host: string; port: number },
  ): void;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

type R = Record<string, unknown>;
function isRecord(value: unknown): value is R {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function records(value: unknown): R[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}
const rec = (v: unknown): R => (isRecord(v) ? v : {});

/** The HCM of the listener's chain for `port` (first chain whose destination_port fits). */
function hcmForPort(listener: XdsResource, port: number): R | undefined {
  for (const chain of records(listener['filter_chains'])) {
    const match = rec(chain['filter_chain_match']);
    const wanted = isRecord(match['destination_port'])
      ? match['destination_port']['value']
      : undefined;
    if (wanted !== undefined && Number(wanted) !== port) continue;
    for (const filter of records(chain['filters'])) {
      const config = rec(filter['typed_config']);
      if (isRecord(config['rds'])) return config;
    }
  }
  return undefined;
}

interface Endpoint {
  host: string;
  port: number;
}

/** Healthy endpoints of a ClusterLoadAssignment (UNHEALTHY/DRAINING/TIMEOUT excluded). */
function endpointsOf(assignment: XdsResource | undefined): Endpoint[] {
  const out: Endpoint[] = [];
  if (assignment === undefined) return out;
  for (const locality of records(assignment['endpoints'])) {
    for (const lb of records(locality['lb_endpoints'])) {
      const status = lb['health_status'];
      if (status === 'UNHEALTHY' || status === 'DRAINING' || status === 'TIMEOUT') continue;
      const socket = rec(rec(rec(lb['endpoint'])['address'])['socket_address']);
      if (typeof socket['address'] === 'string')
        out.push({ host: socket['address'], port: Number(socket['port_value']) });
    }
  }
  return out;
}

interface Target {
  authority: string;
  host: string;
  port: number;
  path: string;
}

/** The request's target; `defaultPort` applies when the authority names none (80, or a CONNECT tunnel's port). */
function targetOf(req: AnyRequest, defaultPort = 80): Target | undefined {
  const raw = req.url ?? '';
  if (raw.startsWith('http://')) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    return {
      authority: url.host,
      host: url.hostname,
      port: url.port === '' ? 80 : Number(url.port),
      path: `${url.pathname}${url.search}`,
    };
  }
  const authority = req.headers.host;
  if (authority === undefined || !raw.startsWith('/')) return undefined;
  const portMatch = /:(\d+)$/.exec(authority);
  return {
    authority,
    host: authority.replace(/:\d+$/, ''),
    port: portMatch?.[1] === undefined ? defaultPort : Number(portMatch[1]),
    path: raw,
  };
}

/** Per-cluster runtime state: LB cursor, active requests, outlier detection. */
interface ClusterState {
  cursor: number;
  active: number;
  pending: number;
  readonly activeByEndpoint: Map<string, number>;
  readonly failures: Map<string, number>;
  readonly ejectedUntil: Map<string, number>;
  readonly ejections: Map<string, number>;
}

/** Request bodies up to this size are kept for retries (Envoy's default per-request buffer limit is 64 KiB). */
const RETRY_BUFFER_LIMIT = 65_536;

/** gRPC statuses Envoy's `retry_on` can name (x-envoy-retry-grpc-on). */
const GRPC_RETRY_ON: ReadonlyMap<number, string> = new Map([
  [1, 'cancelled'],
  [4, 'deadline-exceeded'],
  [8, 'resource-exhausted'],
  [13, 'internal'],
  [14, 'unavailable'],
]);

/** Envoy's default retriable status for `retriable-status-codes` is none; Istio adds 503. */
function retriable(
  retryOn: string,
  status: number | undefined,
  reset: boolean,
  codes: readonly number[],
  grpcStatus?: number,
): boolean {
  const on = new Set(retryOn.split(',').map((s) => s.trim()));
  // gRPC (x-envoy-retry-grpc-on): a trailers-only answer's grpc-status.
  const grpcName = grpcStatus === undefined ? undefined : GRPC_RETRY_ON.get(grpcStatus);
  if (grpcName !== undefined && on.has(grpcName)) return true;
  if (status === undefined)
    return (
      reset &&
      (on.has('5xx') ||
        on.has('gateway-error') ||
        on.has('connect-failure') ||
        on.has('reset') ||
        on.has('refused-stream'))
    );
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  if (on.has('retriable-status-codes') && codes.includes(status)) return true;
  return false;
}

const rewrites = new WeakMap<object, { regex: SafeRegex; rewrite: SafeRewrite } | null>();
/**
 * A `regex_rewrite` (RE2 pattern, RE2 substitution: `\1` is group 1, `\\` a
 * backslash), compiled once per accepted route object; resource validation
 * NACKs one that does not compile, so null (no rewrite) is only unvalidated input.
 */
function regexRewriteOf(
  holder: Record<string, unknown>,
): { regex: SafeRegex; rewrite: SafeRewrite } | null {
  let hit = rewrites.get(holder);
  if (hit === undefined) {
    const pattern = rec(holder['pattern'])['regex'];
    try {
      const regex = compileSafeRegex(typeof pattern === 'string' ? pattern : '');
      hit = { regex, rewrite: compileRewrite(str(holder['substitution']), regex) };
    } catch {
      hit = null;
    }
    rewrites.set(holder, hit);
  }
  return hit;
}

/** Starts nothing; `listen()` binds the outbound listener. */
export function createOutboundProxy(options: OutboundProxyOptions): OutboundProxy {
  const listenerName = options.listenerName ?? 'outbound';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const tlsAgents = createUpstreamTlsAgents(options.secrets, options.onSecureNamingFailure);
  const rateLimiter = createLocalRateLimiter();
  const health = createHealthChecker({
    logger: options.logger,
    localAddress: options.localAddress,
    tlsFor: (name, cluster) => {
      const config = tlsOf(cluster);
      return config === undefined ? undefined : tlsAgents.agentFor(name, config);
    },
  });
  const clusterStates = new Map<string, ClusterState>();
  const tlsConfigs = new WeakMap<object, UpstreamTlsConfig | null>();
  /** A cluster's upstream TLS config, parsed once per accepted cluster resource. */
  const tlsOf = (cluster: XdsResource): UpstreamTlsConfig | undefined => {
    let tls = tlsConfigs.get(cluster);
    if (tls === undefined) {
      tls = parseUpstreamTls(cluster) ?? null;
      tlsConfigs.set(cluster, tls);
    }
    return tls ?? undefined;
  };
  // Keep-alive pools per endpoint (and per TLS agent, i.e. per cluster and secret generation):
  // undici's dispatch() costs less per request than node:http(s) Agent + ClientRequest +
  // IncomingMessage (bench/proxy-chain). TLS pools connect with the agent's options (SVID,
  // trust bundle, secure-naming check); a replaced agent's pool closes its idle sockets itself.
  const plainPools = new Map<string, UpstreamDispatcher>();
  const tlsPools = new Map<
    string,
    { agent: https.Agent; pools: Map<string, UpstreamDispatcher> }
  >();
  const poolFor = (
    clusterName: string,
    endpoint: Endpoint,
    tlsAgent: https.Agent | undefined,
    authority: string,
    h2: boolean,
  ): UpstreamDispatcher => {
    const local =
      options.localAddress !== undefined && endpoint.host.startsWith('127.')
        ? options.localAddress
        : undefined;
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    const agentOptions =
      tlsAgent === undefined ? undefined : (tlsAgent.options as Record<string, unknown>);
    // As node:https does: SNI from the Host header when the cluster names none (never an IP).
    const sniHost = authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const servername =
      agentOptions === undefined || agentOptions['servername'] !== undefined || net.isIP(sniHost)
        ? undefined
        : sniHost;
    const key = `${host}:${String(endpoint.port)}|${local ?? ''}|${servername ?? ''}|${h2 ? 'h2' : ''}`;
    let pools = plainPools;
    if (tlsAgent !== undefined) {
      let entry = tlsPools.get(clusterName);
      if (entry?.agent !== tlsAgent) {
        // A new agent (rotated SVID or bundle): the old pools finish their requests, then close.
        for (const old of entry?.pools.values() ?? []) void old.close();
        entry = { agent: tlsAgent, pools: new Map() };
        tlsPools.set(clusterName, entry);
      }
      pools = entry.pools;
    }
    let pool = pools.get(key);
    if (pool === undefined && h2) {
      // HTTP/2 upstream: one multiplexed session (h2c, or ALPN h2 with the cluster's TLS options).
      pool = createH2Origin({
        host: endpoint.host,
        port: endpoint.port,
        tls:
          agentOptions === undefined
            ? undefined
            : { ...agentOptions, ...(servername === undefined ? {} : { servername }) },
        localAddress: local,
      });
      pools.set(key, pool);
    }
    if (pool === undefined) {
      pool = new Pool(
        `${tlsAgent === undefined ? 'http' : 'https'}://${host}:${String(endpoint.port)}`,
        {
          connections: 256,
          pipelining: 1,
          ...(local === undefined ? {} : { localAddress: local }),
          connect: {
            ...agentOptions,
            ...(servername === undefined ? {} : { servername }),
          },
        },
      );
      pools.set(key, pool);
    }
    return pool;
  };

  const stateOf = (cluster: string): ClusterState => {
    let s = clusterStates.get(cluster);
    if (s === undefined) {
      s = {
        cursor: 0,
        active: 0,
        pending: 0,
        activeByEndpoint: new Map(),
        failures: new Map(),
        ejectedUntil: new Map(),
        ejections: new Map(),
      };
      clusterStates.set(cluster, s);
    }
    return s;
  };

  /** A local reply (gRPC requests get their status in trailers); a started response is reset instead. */
  const reply = (
    req: AnyRequest,
    res: AnyResponse,
    status: number,
    body: string,
    flag: string,
    grpcStatus?: number,
  ): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    localReply(req, res, status, body, { 'x-palisade-response-flags': flag }, grpcStatus);
  };

  /** Picks an endpoint by the cluster's LB policy, skipping ejected ones (and `avoid`, for retries). */
  const pick = (
    cluster: XdsResource,
    name: string,
    endpoints: readonly Endpoint[],
    avoid: string | undefined,
    hash?: number,
  ): Endpoint | undefined => {
    const state = stateOf(name);
    const now = Date.now();
    const maxEjectPercent = Number(
      rec(rec(cluster['outlier_detection'])['max_ejection_percent'])['value'] ?? 10,
    );
    // Active health checks: skip unhealthy hosts unless fewer than half are healthy (Envoy's
    // default panic threshold), then use them all.
    let candidates = endpoints;
    if (health.checked(name)) {
      const healthy = endpoints.filter((e) => health.healthy(name, `${e.host}:${String(e.port)}`));
      if (healthy.length * 2 >= endpoints.length) candidates = healthy;
    }
    let usable = candidates.filter(
      (e) => (state.ejectedUntil.get(`${e.host}:${String(e.port)}`) ?? 0) <= now,
    );
    // Never eject more than max_ejection_percent of the hosts, but always at least one (Envoy);
    // fall back to all when everything is ejected.
    const mayEject = Math.max(1, Math.floor((candidates.length * maxEjectPercent) / 100 + 1e-9));
    if (usable.length === 0 || candidates.length - usable.length > mayEject)
      usable = [...candidates];
    if (avoid !== undefined && usable.length > 1)
      usable = usable.filter((e) => `${e.host}:${String(e.port)}` !== avoid);
    if (usable.length === 0) return undefined;
    switch (cluster['lb_policy']) {
      case 'RING_HASH':
      case 'MAGLEV':
        return usable[
          hashPick(
            cluster,
            usable.map((e) => `${e.host}:${String(e.port)}`),
            hash,
          )
        ];
      case 'RANDOM':
        return usable[randomInt(usable.length)];
      case 'LEAST_REQUEST': {
        // Envoy's default: power of two random choices.
        const a = usable[randomInt(usable.length)];
        const b = usable[randomInt(usable.length)];
        if (a === undefined || b === undefined) return a ?? b;
        const load = (e: Endpoint): number =>
          state.activeByEndpoint.get(`${e.host}:${String(e.port)}`) ?? 0;
        return load(b) < load(a) ? b : a;
      }
      default: {
        state.cursor += 1;
        return usable[state.cursor % usable.length];
      }
    }
  };

  /** Outlier detection: count consecutive failures per endpoint and eject at the threshold. */
  const observe = (
    cluster: XdsResource,
    name: string,
    endpoint: string,
    status: number | undefined,
  ): void => {
    const od = cluster['outlier_detection'];
    if (!isRecord(od)) return;
    const state = stateOf(name);
    const gatewayFailure =
      status === undefined || status === 502 || status === 503 || status === 504;
    const failure = status === undefined || status >= 500;
    if (!failure) {
      state.failures.set(endpoint, 0);
      return;
    }
    const count = (state.failures.get(endpoint) ?? 0) + 1;
    state.failures.set(endpoint, count);
    const c5xx = isRecord(od['consecutive_5xx']) ? Number(od['consecutive_5xx']['value']) : 5;
    const cgw = isRecord(od['consecutive_gateway_failure'])
      ? Number(od['consecutive_gateway_failure']['value'])
      : undefined;
    if (count >= c5xx || (cgw !== undefined && gatewayFailure && count >= cgw)) {
      const times = (state.ejections.get(endpoint) ?? 0) + 1;
      state.ejections.set(endpoint, times);
      const base = durationMs(od['base_ejection_time']) ?? 30_000;
      state.ejectedUntil.set(endpoint, Date.now() + base * times);
      state.failures.set(endpoint, 0);
    }
  };

  const limits = (
    cluster: XdsResource,
  ): { maxRequests: number; maxPending: number; maxRetries: number } => {
    const t = records(rec(cluster['circuit_breakers'])['thresholds'])[0] ?? {};
    const v = (k: string, d: number): number => (isRecord(t[k]) ? Number(t[k]['value']) : d);
    return {
      maxRequests: Math.min(v('max_requests', 1024), v('max_connections', 1024) * 1024),
      maxPending: v('max_pending_requests', 1024),
      maxRetries: v('max_retries', 3),
    };
  };

  /** Records one outbound exchange (metrics, access log) with its duration since `started`. */
  const spans = new WeakMap<AnyRequest, SpanContext>();
  const recorder =
    (req: AnyRequest, target: Target | undefined, started: number) =>
    (
      cluster: string,
      upstream: string,
      status: number,
      flags: string,
      attempts: number,
      mtls: boolean,
    ): void => {
      options.onRecord?.({
        authority: target?.authority ?? '',
        method: req.method ?? 'GET',
        path: target?.path ?? req.url ?? '',
        cluster,
        upstream,
        status,
        flags,
        attempts,
        durationMs: performance.now() - started,
        mtls,
        protocol: protocolOf(req),
        ...(isGrpc(req.headers) ? { grpc: { status: sentGrpcStatus(req) } } : {}),
        ...(spans.has(req) ? { span: spans.get(req) } : {}),
      });
    };

  /** The HCM for the target port (or the gateway's own). */
  const hcmFor = (
    snapshot: XdsSnapshot,
    port: number,
    hcmOverride: Record<string, unknown> | undefined,
  ): R | undefined => {
    if (hcmOverride !== undefined) return hcmOverride;
    const listener = snapshot.listener.get(listenerName);
    return listener === undefined ? undefined : hcmForPort(listener, port);
  };

  /** The HCM for the target port (or the gateway's own) and the route the request matches in its RDS. */
  const routeOf = (
    snapshot: XdsSnapshot,
    port: number,
    request: { authority: string; path: string; headers: http.IncomingHttpHeaders },
    hcmOverride?: Record<string, unknown>,
  ): { hcm: R | undefined; found: ReturnType<typeof matchRoute> } => {
    const hcm = hcmFor(snapshot, port, hcmOverride);
    const routeName = rec(hcm?.['rds'])['route_config_name'];
    const routeConfig = typeof routeName === 'string' ? snapshot.route.get(routeName) : undefined;
    return { hcm, found: routeConfig === undefined ? undefined : matchRoute(routeConfig, request) };
  };

  /**
   * The request's target after the request-head checks of its HCM (request-head.ts): the
   * path is normalised in `req.url`, so routing, policy and the upstream all see it.
   */
  const checkedTarget = (
    req: AnyRequest,
    snapshot: XdsSnapshot,
    hcmOverride: Record<string, unknown> | undefined,
    defaultPort = 80,
  ): { target: Target } | { rejection: HeadRejection } => {
    const first = targetOf(req, defaultPort);
    if (first === undefined)
      return { rejection: { status: 400, body: 'Bad Request', details: 'http.invalid_target' } };
    const rejection = checkRequestHead(
      req,
      requestHeadPolicy(hcmFor(snapshot, first.port, hcmOverride)),
    );
    if (rejection !== undefined) return { rejection };
    const target = targetOf(req, defaultPort);
    return target === undefined
      ? { rejection: { status: 400, body: 'Bad Request', details: 'http.invalid_target' } }
      : { target };
  };

  /**
   * What goes upstream for a routed request or upgrade (one code path for both, so every
   * route feature applies to each): forwarded headers with the host rewrite, request id,
   * trace context (this hop as a child span, W3C and B3), the virtual host's and route's
   * header operations, and the path after prefix and regex rewrites.
   */
  const upstreamRequest = (
    req: AnyRequest,
    target: Target,
    found: NonNullable<ReturnType<typeof matchRoute>>,
    decision: Extract<RouteDecision, { kind: 'cluster' }>,
  ): { headers: http.OutgoingHttpHeaders; path: string } => {
    const route = found.route;
    const action = rec(route['route']);
    const headers = forwardedRequestHeaders(req.headers);
    headers['host'] =
      typeof action['host_rewrite_literal'] === 'string'
        ? action['host_rewrite_literal']
        : target.authority;
    headers['x-request-id'] ??= randomUUID();
    headers['x-forwarded-proto'] ??= 'http';
    // Trace propagation as Envoy's tracer does: this hop is a child span of the caller's context
    // (W3C traceparent, else B3), or a new root; written in W3C and B3 forms.
    const parent = parseTraceContext(req.headers);
    const span = childSpan(
      parent,
      parent === undefined ? { sampled: chance(options.traceSampling ?? 1) } : {},
    );
    spans.set(req, span);
    injectTraceContext(headers, span);
    applyHeaderOps(
      headers,
      found.vhost['request_headers_to_add'],
      found.vhost['request_headers_to_remove'],
    );
    applyHeaderOps(headers, route['request_headers_to_add'], route['request_headers_to_remove']);

    let path = target.path;
    if (decision.prefixRewrite !== undefined && decision.matchedPrefix !== undefined)
      path = decision.prefixRewrite + path.slice(decision.matchedPrefix.length);
    const regexRewrite = isRecord(action['regex_rewrite'])
      ? regexRewriteOf(action['regex_rewrite'])
      : null;
    if (regexRewrite !== null) {
      const q = path.indexOf('?');
      const bare = q === -1 ? path : path.slice(0, q);
      path =
        regexRewrite.regex.replaceAll(bare, regexRewrite.rewrite) + (q === -1 ? '' : path.slice(q));
    }
    return { headers, path };
  };

  /** Serves one request: routed by the outbound listener's chain for the target port, or by `hcmOverride` (gateways). */
  const serve = (
    req: AnyRequest,
    res: AnyResponse,
    hcmOverride?: Record<string, unknown>,
  ): void => {
    {
      const snapshot = options.snapshot();
      const checked = checkedTarget(req, snapshot, hcmOverride, tunnelPortOf(req));
      if ('rejection' in checked) {
        const { status, body } = checked.rejection;
        if (!isH2(req)) (res as http.ServerResponse).shouldKeepAlive = false;
        reply(req, res, status, body, 'DPE');
        recorder(req, targetOf(req), performance.now())('', '', status, 'DPE', 0, false);
        return;
      }
      const target = checked.target;
      const record = recorder(req, target, performance.now());
      const request = { authority: target.authority, path: target.path, headers: req.headers };
      const { hcm, found } = routeOf(snapshot, target.port, request, hcmOverride);
      if (found === undefined) {
        reply(req, res, 404, '', 'NR');
        record('', '', 404, 'NR', 0, false);
        return;
      }
      // CORS (Envoy's filter order: before fault and router): preflights from allowed origins are
      // answered here; other allowed-origin responses, local replies included, carry the headers.
      const cors = corsOutcome(corsPolicyOf(hcm, found.route), req.method, req.headers);
      if (cors.kind === 'preflight') {
        res.writeHead(200, { ...cors.headers, 'content-length': 0 });
        res.end();
        record('', '', 200, '-', 0, false);
        return;
      }
      const corsHeaders = cors.kind === 'response' ? cors.headers : undefined;
      if (corsHeaders !== undefined)
        for (const [name, value] of Object.entries(corsHeaders))
          if (value !== undefined) res.setHeader(name, value);
      // Local rate limit (Envoy's filter order here: after CORS, before fault and router).
      const limit = rateLimiter.check(
        hcmRateLimit(hcm),
        routeRateLimit(found.route),
        downstreamConnection(req),
      );
      if (limit?.kind === 'limited') {
        for (const [name, value] of Object.entries(limit.headers)) res.setHeader(name, value);
        reply(req, res, limit.status, 'local_rate_limited', 'RL', limit.grpcStatus);
        record('', '', limit.status, 'RL', 0, false);
        return;
      }
      if (limit !== undefined) {
        Object.assign(req.headers, limit.requestHeaders);
        for (const [name, value] of Object.entries(limit.responseHeaders))
          res.setHeader(name, value);
      }
      const decision: RouteDecision = decide(found.route, request, (total) => randomInt(total));
      if (decision.kind === 'direct') {
        reply(req, res, decision.status, decision.body, '-');
        record('', '', decision.status, '-', 0, false);
        return;
      }
      if (decision.kind === 'redirect') {
        res.writeHead(decision.status, { location: decision.location, 'content-length': 0 });
        res.end();
        record('', '', decision.status, '-', 0, false);
        return;
      }
      const route = found.route;
      const action = rec(route['route']);
      const clusterName = decision.cluster;
      if (clusterName === 'BlackHoleCluster') {
        reply(req, res, 502, '', 'NR');
        record(clusterName, '', 502, 'NR', 0, false);
        return;
      }
      const passthrough = clusterName === 'PassthroughCluster';
      const cluster = snapshot.cluster.get(clusterName);
      if (cluster === undefined) {
        reply(req, res, 503, 'no healthy upstream', 'NC');
        record(clusterName, '', 503, 'NC', 0, false);
        return;
      }
      const endpoints = passthrough
        ? [{ host: target.host, port: target.port }]
        : endpointsOf(snapshot.endpoint.get(clusterName));
      if (endpoints.length === 0) {
        reply(req, res, 503, 'no healthy upstream', 'UH');
        record(clusterName, '', 503, 'UH', 0, false);
        return;
      }
      const tlsConfig = tlsOf(cluster) ?? null;
      const mtls = tlsConfig !== null && tlsConfig.certificateSecret !== undefined;

      const { headers, path } = upstreamRequest(req, target, found, decision);
      // A client's `expect: 100-continue` was answered by this server already.
      delete headers['expect'];

      // Fault injection (envoy.filters.http.fault, per-route config), only when the HCM runs the fault filter.
      const faultEnabled = records(hcm?.['http_filters']).some(
        (f) => f['name'] === 'envoy.filters.http.fault',
      );
      const fault = faultEnabled
        ? rec(rec(route['typed_per_filter_config'])['envoy.filters.http.fault'])
        : {};
      const abort = rec(fault['abort']);
      const delay = rec(fault['delay']);
      const delayMs = durationMs(delay['fixed_delay']);
      const injectDelay = delayMs !== undefined && chance(fraction(delay['percentage']));
      const injectAbort =
        (abort['http_status'] !== undefined || abort['grpc_status'] !== undefined) &&
        chance(fraction(abort['percentage']));

      const timeoutMs = durationMs(action['timeout']) ?? 15_000;
      const retry = rec(action['retry_policy']);
      const retryOn = typeof retry['retry_on'] === 'string' ? retry['retry_on'] : '';
      const { maxRequests, maxRetries } = limits(cluster);
      const numRetries = Math.min(
        isRecord(retry['num_retries'])
          ? Number(retry['num_retries']['value'])
          : retryOn === ''
            ? 0
            : 1,
        maxRetries,
      );
      const perTryMs = durationMs(retry['per_try_timeout']);
      const codes = Array.isArray(retry['retriable_status_codes'])
        ? (retry['retriable_status_codes'] as unknown[]).map(Number)
        : [];
      // A request with a body is retried only when it was small enough to buffer (Envoy buffers
      // up to its limit): the body streams to the first attempt and is kept for the retries.
      const hasBody = requestHasBody(req);
      const replay =
        hasBody && numRetries > 0 ? replayableBody(req, RETRY_BUFFER_LIMIT) : undefined;
      const canRetry = (): boolean =>
        numRetries > 0 && (replay === undefined ? !hasBody : replay.replayable());

      for (const mirror of records(action['request_mirror_policies'])) {
        const name = str(mirror['cluster']);
        // Without runtime_fraction Envoy mirrors every request.
        const share = isRecord(mirror['runtime_fraction'])
          ? fraction(mirror['runtime_fraction']['default_value'])
          : 1;
        if (!chance(share)) continue;
        const mirrorEndpoints = endpointsOf(snapshot.endpoint.get(name));
        const mirrorCluster = snapshot.cluster.get(name);
        const endpoint =
          mirrorCluster === undefined
            ? undefined
            : pick(mirrorCluster, name, mirrorEndpoints, undefined);
        if (endpoint === undefined || hasBody) continue;
        const mirrorTls = mirrorCluster === undefined ? undefined : tlsOf(mirrorCluster);
        const mAgent = mirrorTls === undefined ? agent : tlsAgents.agentFor(name, mirrorTls);
        if (mAgent instanceof Error) continue;
        // Envoy appends "-shadow" to the host of mirrored requests; their responses are discarded.
        const shadow = { ...headers, host: `${str(headers['host'])}-shadow` };
        const m = (mirrorTls === undefined ? http : https).request({
          host: endpoint.host,
          port: endpoint.port,
          method: req.method,
          path,
          headers: shadow,
          agent: mAgent,
          timeout: timeoutMs || 15_000,
        });
        m.on('response', (r) => r.resume());
        m.on('error', () => undefined);
        m.on('timeout', () => m.destroy());
        m.end();
      }

      const state = stateOf(clusterName);
      if (state.active >= maxRequests) {
        reply(
          req,
          res,
          503,
          'upstream connect error or disconnect/reset before headers. reset reason: overflow',
          'UO',
        );
        record(clusterName, '', 503, 'UO', 0, mtls);
        return;
      }
      state.active += 1;
      let finished = false;
      const finish = (status: number, flags: string, upstream: string, attempts: number): void => {
        if (finished) return;
        finished = true;
        state.active -= 1;
        record(clusterName, upstream, status, flags, attempts, mtls);
      };
      let current: { abort(reason: Error): void } | undefined;
      res.on('close', () => {
        if (!finished) {
          // Finish first: the aborted attempt's error handler must not answer or record it again.
          finish(res.statusCode, 'DC', '', 0);
          current?.abort(new Error('downstream closed'));
        }
      });

      let overallTimer: NodeJS.Timeout | undefined;
      // Started when the router gets the request, i.e. after a fault delay (Envoy's filter order).
      const startTimer = (): void => {
        if (timeoutMs > 0)
          overallTimer = setTimeout(() => {
            // Answer first: the aborted attempt's error handler then sees `finished` (else 503 UF).
            reply(req, res, 504, 'upstream request timeout', 'UT');
            finish(504, 'UT', '', 0);
            current?.abort(new Error('request timeout'));
          }, timeoutMs);
      };
      const clear = (): void => {
        if (overallTimer !== undefined) clearTimeout(overallTimer);
      };

      // Consistent hashing (RING_HASH/MAGLEV clusters): the route's hash_policy keys the request.
      const lbPolicy = cluster['lb_policy'];
      const hashed =
        lbPolicy === 'RING_HASH' || lbPolicy === 'MAGLEV'
          ? requestHash(action['hash_policy'], req.headers, target.path, req.socket.remoteAddress)
          : undefined;
      if (hashed?.setCookie !== undefined) res.appendHeader('set-cookie', hashed.setCookie);

      const attempt = (n: number, avoid: string | undefined): void => {
        if (finished) return;
        const endpoint = pick(cluster, clusterName, endpoints, avoid, hashed?.hash);
        if (endpoint === undefined) {
          clear();
          reply(req, res, 503, 'no healthy upstream', 'UH');
          finish(503, 'UH', '', n);
          return;
        }
        const key = `${endpoint.host}:${String(endpoint.port)}`;
        let useAgent: http.Agent | https.Agent = agent;
        if (tlsConfig !== null) {
          const a = tlsAgents.agentFor(clusterName, tlsConfig);
          if (a instanceof Error) {
            clear();
            reply(
              req,
              res,
              503,
              `upstream connect error or disconnect/reset before headers. TLS error: ${a.message}`,
              'UF',
            );
            finish(503, 'UF', key, n);
            return;
          }
          useAgent = a;
        }
        if (n > 1) headers['x-envoy-attempt-count'] = String(n);
        state.activeByEndpoint.set(key, (state.activeByEndpoint.get(key) ?? 0) + 1);
        const done = (): void => {
          state.activeByEndpoint.set(key, Math.max(0, (state.activeByEndpoint.get(key) ?? 1) - 1));
        };
        // The attempt's request: aborting before the pool has started it is remembered.
        let controller: UpstreamController | undefined;
        let abortReason: Error | undefined;
        const upstream = {
          abort(reason: Error): void {
            abortReason ??= reason;
            controller?.abort(reason);
          },
        };
        current = upstream;
        let perTry: NodeJS.Timeout | undefined;
        const retryLater = (): void => {
          // Envoy: exponential back-off, base 25 ms, cap 10× base, full jitter.
          const cap = Math.min(250, 25 * 2 ** (n - 1));
          setTimeout(
            () => {
              attempt(n + 1, key);
            },
            randomInt(cap + 1),
          );
        };
        if (perTryMs !== undefined && perTryMs > 0)
          perTry = setTimeout(() => {
            upstream.abort(new Error('per-try timeout'));
          }, perTryMs);
        /** True while the response body is forwarded to `res` (false: none yet, or discarded). */
        let forwarding = false;
        let responded = false;
        let status = 502;
        let responseFlags = '-';
        /** The status fields of a trailers-only gRPC answer, re-sent as trailers. */
        let trailersOnly: Record<string, string | string[]> | undefined;
        const onError = (error: Error): void => {
          if (perTry !== undefined) clearTimeout(perTry);
          if (responded) {
            // Reset after the response started: the downstream sees the reset too.
            if (forwarding) res.destroy();
            return;
          }
          done();
          if (finished) return;
          observe(cluster, clusterName, key, undefined);
          const naming = error.message.startsWith('secure naming');
          if (
            !naming &&
            canRetry() &&
            n <= numRetries &&
            retriable(retryOn, undefined, true, codes)
          ) {
            retryLater();
            return;
          }
          clear();
          // Envoy: UF for the failed connection, plus URX when retries were exhausted on it.
          const exhausted = !naming && canRetry() && retriable(retryOn, undefined, true, codes);
          const flag = exhausted ? 'UF,URX' : 'UF';
          reply(
            req,
            res,
            503,
            `upstream connect error or disconnect/reset before headers. ${n > 1 ? 'retried and the latest ' : ''}reset reason: ${naming ? 'TLS error: ' + error.message : 'connection failure'}`,
            flag,
          );
          finish(503, flag, key, n);
        };
        const handler: UpstreamHandler = {
          onRequestStart(c) {
            controller = c;
            if (abortReason !== undefined) c.abort(abortReason);
          },
          onResponseStart(c, statusCode, upstreamHeaders) {
            controller = c;
            responded = true;
            if (perTry !== undefined) clearTimeout(perTry);
            done();
            status = statusCode;
            observe(cluster, clusterName, key, status);
            const grpcStatus = upstreamHeaders['grpc-status'];
            const retriableStatus =
              canRetry() &&
              retriable(
                retryOn,
                status,
                false,
                codes,
                grpcStatus === undefined ? undefined : Number(grpcStatus),
              );
            if (retriableStatus && n <= numRetries && !finished) {
              retryLater();
              return;
            }
            // Retries exhausted: Envoy forwards the last response and flags URX.
            if (retriableStatus) responseFlags = 'URX';
            clear();
            if (finished) return;
            const out: http.OutgoingHttpHeaders = forwardedResponseHeaders(upstreamHeaders);
            applyHeaderOps(
              out,
              route['response_headers_to_add'],
              route['response_headers_to_remove'],
            );
            applyHeaderOps(
              out,
              found.vhost['response_headers_to_add'],
              found.vhost['response_headers_to_remove'],
            );
            // The CORS filter sets its headers over the app's (Envoy's encodeHeaders).
            if (corsHeaders !== undefined) Object.assign(out, corsHeaders);
            // A generated sticky-session cookie goes out beside the app's own cookies.
            if (hashed?.setCookie !== undefined) {
              const own = out['set-cookie'];
              out['set-cookie'] = [
                ...(Array.isArray(own) ? own : own === undefined ? [] : [own]),
                hashed.setCookie,
              ];
            }
            trailersOnly = takeTrailersOnlyStatus(out);
            res.writeHead(status, out);
            forwarding = true;
          },
          onResponseData(c, chunk) {
            if (!forwarding) return;
            if (res.destroyed) {
              c.abort(new Error('downstream closed'));
              return;
            }
            if (!writeChunk(res, chunk)) {
              c.pause();
              res.once('drain', () => {
                c.resume();
              });
            }
          },
          onResponseEnd(_c, trailers) {
            if (!forwarding) return;
            forwarding = false;
            const relayed = { ...trailersOnly, ...forwardedResponseHeaders(trailers) };
            if (Object.keys(relayed).length > 0) res.addTrailers(relayed);
            noteGrpcStatus(req, relayed);
            res.end();
            finish(status, responseFlags, key, n);
          },
          onResponseError(_c, error) {
            onError(error);
          },
        };
        // Mesh peers on loopback see this instance's own address as the source (NetworkPolicy, logs).
        const pool = poolFor(
          clusterName,
          endpoint,
          tlsConfig === null ? undefined : (useAgent as https.Agent),
          str(headers['host']),
          upstreamHttp2(cluster, isH2(req)),
        );
        try {
          pool.dispatch(
            {
              method: req.method ?? 'GET',
              path,
              headers: headers as Record<string, string | string[]>,
              body: !hasBody
                ? null
                : replay === undefined
                  ? req
                  : n === 1
                    ? replay.first
                    : replay.replay(),
              // undici takes SNI from the Host header unless told: the cluster's `sni` wins.
              ...(tlsConfig?.sni === undefined ? {} : { servername: tlsConfig.sni }),
            },
            handler,
          );
        } catch (error) {
          onError(error instanceof Error ? error : new Error(String(error)));
        }
      };

      const go = (): void => {
        if (injectAbort) {
          clear();
          // A grpc_status abort answers gRPC requests with that status (HTTP 200, Envoy's fault filter).
          const grpcStatus =
            abort['grpc_status'] === undefined ? undefined : Number(abort['grpc_status']);
          const status = grpcStatus === undefined ? Number(abort['http_status']) : 200;
          reply(req, res, status, 'fault filter abort', 'FI', grpcStatus);
          finish(status, 'FI', '', 0);
          return;
        }
        startTimer();
        attempt(1, undefined);
      };
      if (injectDelay) setTimeout(go, delayMs);
      else go();
    }
  };

  const server = http.createServer(
    {
      headersTimeout: REQUEST_HEADERS_TIMEOUT_MS,
      requestTimeout: 0,
      maxHeaderSize: MAX_REQUEST_HEADER_BYTES,
      // Node checks its headers timeout on this interval: a slow client is closed at most
      // this long after the timeout, not up to 30 s (Node's default) later.
      connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
    },
    (req, res) => {
      containRequest(req, res, options.logger, 'outbound request', () => {
        serve(req, res);
      });
    },
  );
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    answerParseError(error, socket);
  });
  enforceHeadersTimeout(server, REQUEST_HEADERS_TIMEOUT_MS);

  // Upgrade (WebSocket): checked, routed and policed like any request (request-head checks,
  // the route's allowed upgrade types, local rate limit, circuit breaker, rewrites, header
  // operations, trace context, upstream mTLS), then spliced on 101. No retries, timeouts or
  // faults: the exchange becomes a long-lived tunnel.
  const upgrade = (
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    hcmOverride?: Record<string, unknown>,
  ): void => {
    const snapshot = options.snapshot();
    const checked = checkedTarget(req, snapshot, hcmOverride);
    if ('rejection' in checked) {
      rejectOnSocket(socket, checked.rejection);
      recorder(req, targetOf(req), performance.now())(
        '',
        '',
        checked.rejection.status,
        'DPE',
        1,
        false,
      );
      return;
    }
    const target = checked.target;
    const record = recorder(req, target, performance.now());
    const request = { authority: target.authority, path: target.path, headers: req.headers };
    const { hcm, found } = routeOf(snapshot, target.port, request, hcmOverride);
    if (found === undefined) {
      rejectUpgrade(socket, 404, '', 'NR');
      record('', '', 404, 'NR', 1, false);
      return;
    }
    // Envoy relays only the upgrade types its upgrade_configs allow; others get 403 (upgrade_failed).
    if (!upgradeAllowed(str(req.headers.upgrade), hcm, found.route)) {
      rejectUpgrade(socket, 403, '', 'UPE');
      record('', '', 403, 'UPE', 1, false);
      return;
    }
    const limit = rateLimiter.check(
      hcmRateLimit(hcm),
      routeRateLimit(found.route),
      downstreamConnection(req),
    );
    if (limit?.kind === 'limited') {
      rejectUpgrade(socket, limit.status, 'local_rate_limited', 'RL');
      record('', '', limit.status, 'RL', 1, false);
      return;
    }
    if (limit !== undefined) Object.assign(req.headers, limit.requestHeaders);
    const decision = decide(found.route, request, (total) => randomInt(total));
    if (decision.kind !== 'cluster' || decision.cluster === 'BlackHoleCluster') {
      const status = decision.kind === 'cluster' ? 502 : decision.status;
      rejectUpgrade(socket, status, decision.kind === 'direct' ? decision.body : '', 'NR');
      record('', '', status, 'NR', 1, false);
      return;
    }
    const clusterName = decision.cluster;
    const cluster = snapshot.cluster.get(clusterName);
    const endpoint =
      clusterName === 'PassthroughCluster'
        ? { host: target.host, port: target.port }
        : cluster === undefined
          ? undefined
          : pick(cluster, clusterName, endpointsOf(snapshot.endpoint.get(clusterName)), undefined);
    if (cluster === undefined || endpoint === undefined) {
      rejectUpgrade(socket, 503, 'no healthy upstream', 'UH');
      record(clusterName, '', 503, 'UH', 1, false);
      return;
    }
    const tlsConfig = tlsOf(cluster);
    const tlsAgent =
      tlsConfig === undefined ? undefined : tlsAgents.agentFor(clusterName, tlsConfig);
    if (tlsAgent instanceof Error) {
      rejectUpgrade(socket, 503, `upstream connect error: ${tlsAgent.message}`, 'UF');
      record(clusterName, '', 503, 'UF', 1, true);
      return;
    }
    // Circuit breaking: an upgrade holds a request slot for as long as its tunnel lives.
    const state = stateOf(clusterName);
    if (state.active >= limits(cluster).maxRequests) {
      rejectUpgrade(
        socket,
        503,
        'upstream connect error or disconnect/reset before headers. reset reason: overflow',
        'UO',
      );
      record(clusterName, '', 503, 'UO', 1, tlsAgent !== undefined);
      return;
    }
    state.active += 1;
    const { headers, path } = upstreamRequest(req, target, found, decision);
    const upstream = `${endpoint.host}:${String(endpoint.port)}`;
    relayUpgrade(socket, head, req.method ?? 'GET', path, headers, str(req.headers.upgrade), {
      host: endpoint.host,
      port: endpoint.port,
      agent: tlsAgent,
      tls: tlsAgent !== undefined,
      localAddress:
        options.localAddress !== undefined && endpoint.host.startsWith('127.')
          ? options.localAddress
          : undefined,
    })
      .then((result) => {
        record(clusterName, upstream, result.status, result.flags, 1, tlsAgent !== undefined);
      })
      .catch((error: unknown) => {
        options.logger?.error({ err: error }, 'upgrade relay failed');
        socket.destroy();
      })
      .finally(() => {
        state.active -= 1;
      });
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    containSocket(socket, options.logger, 'outbound upgrade', () => {
      upgrade(req, socket, head);
    });
  });

  /**
   * Splices `socket` to `endpoint` (over the cluster's mTLS when `tlsAgent` is set), writing
   * `first` (bytes already read from the client) ahead of the rest; either side closing or
   * failing closes both.
   */
  const tunnel = (
    socket: Duplex,
    endpoint: Endpoint,
    tlsAgent: https.Agent | undefined,
    first: Buffer,
  ): void => {
    const at = { host: endpoint.host, port: endpoint.port };
    const local =
      options.localAddress !== undefined && endpoint.host.startsWith('127.')
        ? { localAddress: options.localAddress }
        : {};
    const upstream =
      tlsAgent === undefined
        ? net.connect({ ...at, ...local })
        : tls.connect({ ...(tlsAgent.options as tls.ConnectionOptions), ...at, ...local });
    upstream.once(tlsAgent === undefined ? 'connect' : 'secureConnect', () => {
      if (first.length > 0) upstream.write(first);
      upstream.pipe(socket);
      socket.pipe(upstream);
      socket.resume();
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    socket.on('close', () => upstream.destroy());
  };

  /**
   * A gateway's tcp_proxy (TLS passthrough, TCP servers): the cluster (weighted when
   * `weighted_clusters`), an endpoint by its load balancer, then an opaque tunnel. No cluster
   * or no healthy endpoint closes the connection, as Envoy does.
   */
  const tcpProxy = (
    socket: Duplex,
    config: Record<string, unknown>,
    first: Buffer,
    to?: { host: string; port: number },
  ): void => {
    const snapshot = options.snapshot();
    let clusterName = str(config['cluster']);
    const weighted = records(rec(config['weighted_clusters'])['clusters']);
    if (clusterName === '' && weighted.length > 0) {
      const total = weighted.reduce((sum, c) => sum + Number(c['weight'] ?? 0), 0);
      let roll = total > 0 ? randomInt(total) : 0;
      for (const c of weighted) {
        roll -= Number(c['weight'] ?? 0);
        if (roll < 0) {
          clusterName = str(c['name']);
          break;
        }
      }
    }
    const cluster = snapshot.cluster.get(clusterName);
    const tlsConfig = cluster === undefined ? undefined : tlsOf(cluster);
    const tlsAgent =
      tlsConfig === undefined ? undefined : tlsAgents.agentFor(clusterName, tlsConfig);
    const endpoint =
      cluster === undefined || tlsAgent instanceof Error
        ? undefined
        : to !== undefined
          ? endpointsOf(snapshot.endpoint.get(clusterName)).find(
              (e) => e.host === to.host && e.port === to.port,
            )
          : pick(cluster, clusterName, endpointsOf(snapshot.endpoint.get(clusterName)), undefined);
    if (endpoint === undefined || tlsAgent instanceof Error) {
      options.logger?.info(
        {
          cluster: clusterName,
          reason: tlsAgent instanceof Error ? tlsAgent.message : 'no healthy upstream',
        },
        'tcp_proxy closed a connection',
      );
      socket.destroy();
      return;
    }
    tunnel(socket, endpoint, tlsAgent, first);
  };

  // Requests inside CONNECT tunnels (HTTP/1.1 on the socket, HTTP/2 per session) default to the
  // CONNECT's port when their authority names none.
  const tunnelPorts = new WeakMap<object, number>();
  const h2 = createH2Downstream<number>((req, res) => {
    containRequest(req, res, options.logger, 'outbound request', () => {
      serve(req, res);
    });
  });
  function tunnelPortOf(req: AnyRequest): number {
    return (isH2(req) ? h2.contextOf(req) : tunnelPorts.get(req.socket)) ?? 80;
  }

  // CONNECT authority-form (how gRPC and other HTTP/2 clients use an HTTP proxy): after
  // `200 Connection Established` the tunnel's first bytes decide, as Istio's protocol sniffing
  // does — the HTTP/2 preface or an HTTP/1.1 request line is served here, routed and policed
  // like any request (so mTLS, retries and metrics apply per request); anything else (TLS
  // from the app, other protocols) is an opaque tunnel to the routed endpoint, over mTLS when
  // the cluster says so.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    containSocket(socket, options.logger, 'outbound CONNECT', () => {
      connect(req, socket, head);
    });
  });
  const connect = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    const authority = req.url ?? '';
    const portMatch = /:(\d+)$/.exec(authority);
    if (portMatch?.[1] === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const target: Target = {
      authority,
      host: authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''),
      port: Number(portMatch[1]),
      path: '/',
    };
    const snapshot = options.snapshot();
    const request = { authority: target.authority, path: '/', headers: req.headers };
    const { found } = routeOf(snapshot, target.port, request);
    const decision =
      found === undefined ? undefined : decide(found.route, request, (total) => randomInt(total));
    let endpoint: Endpoint | undefined;
    let tlsAgent: https.Agent | undefined;
    if (decision?.kind === 'cluster') {
      const cluster = snapshot.cluster.get(decision.cluster);
      const tlsConfig = cluster === undefined ? undefined : tlsOf(cluster);
      const agentOrError =
        tlsConfig === undefined ? undefined : tlsAgents.agentFor(decision.cluster, tlsConfig);
      if (decision.cluster === 'PassthroughCluster')
        endpoint = { host: target.host, port: target.port };
      else if (cluster !== undefined && !(agentOrError instanceof Error)) {
        tlsAgent = agentOrError;
        endpoint = pick(
          cluster,
          decision.cluster,
          endpointsOf(snapshot.endpoint.get(decision.cluster)),
          undefined,
        );
      }
    }
    if (found === undefined && endpoint === undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    const opaque = (first: Buffer): void => {
      if (endpoint === undefined) socket.destroy();
      else tunnel(socket, endpoint, tlsAgent, first);
    };
    const start = (first: Buffer): void => {
      if (found !== undefined && isH2Preface(first)) {
        socket.unshift(first);
        h2.accept(socket, target.port, true);
      } else if (found !== undefined && /^[A-Z]+ \S/.test(first.toString('latin1', 0, 16))) {
        socket.unshift(first);
        tunnelPorts.set(socket, target.port);
        server.emit('connection', socket);
        socket.resume();
      } else opaque(first);
    };
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) start(head);
    else
      socket.once('data', (first: Buffer) => {
        socket.pause();
        containSocket(socket, options.logger, 'CONNECT tunnel', () => {
          start(first);
        });
      });
  };

  return {
    server,
    handle: serve,
    handleUpgrade: upgrade,
    handleTcp: tcpProxy,
    sync(snapshot) {
      health.sync(snapshot, (name) =>
        endpointsOf(
          snapshot.endpoint.get(name) ?? rec(snapshot.cluster.get(name)?.['load_assignment']),
        ).map((e) => `${e.host}:${String(e.port)}`),
      );
    },
    listen(host, port) {
      return new Promise((resolveListen, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolveListen(typeof address === 'object' && address !== null ? address.port : port);
        });
      });
    },
    close() {
      health.close();
      h2.close();
      agent.destroy();
      tlsAgents.destroy();
      for (const pool of plainPools.values()) void pool.destroy();
      for (const entry of tlsPools.values())
        for (const pool of entry.pools.values()) void pool.destroy();
      plainPools.clear();
      tlsPools.clear();
      server.closeAllConnections();
      return new Promise((resolveClose) =>
        server.close(() => {
          resolveClose();
        }),
      );
    },
  };
}
