/**
 * The sidecar's inbound side (docs/xds-contract.md "Sidecar listeners"): one
 * socket per `inbound|<port>` listener, bound at `<instance-ip>:<port>`.
 *
 * Per connection the first byte picks the filter chain, as Envoy's
 * tls_inspector does: a TLS ClientHello (0x16) takes the `tls` chain, anything
 * else the `raw_buffer` chain; no matching chain closes the connection — so a
 * plaintext client on a STRICT port is refused. TLS chains terminate mTLS with
 * the workload's SVID (SDS `default`) and verify the peer against the trust
 * bundle (SDS `ROOTCA`); the peer's SPIFFE ID becomes the request principal.
 * Secure contexts are rebuilt when the secret store changes, so a rotated
 * certificate is used by the next handshake without touching live connections.
 *
 * HTTP chains then run jwt_authn → RBAC (the policy module's evaluator) and
 * forward allowed requests to the local app (`inbound|<port>||`); TCP chains
 * run network RBAC and pipe bytes. Denials answer as Envoy does: 403
 * `RBAC: access denied`, 401 with the JWT reason (for gRPC requests: HTTP 200
 * with grpc-status PERMISSION_DENIED/UNAUTHENTICATED).
 *
 * HTTP chains speak HTTP/1.1 and HTTP/2 (ALPN `h2` after mTLS, or the h2c
 * preface in plaintext); requests go to the app over HTTP/2 when the inbound
 * cluster's HttpProtocolOptions ask for it (gRPC/HTTP2 ports), with trailers
 * relayed both ways.
 */
import * as http from 'node:http';
import { str } from '../../xds/index.js';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
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
  requestHasBody,
  takeTrailersOnlyStatus,
  type AnyRequest,
  type AnyResponse,
  type H2Downstream,
  writeChunk,
} from '../h2-downstream.js';
import {
  createH2Origin,
  upstreamHttp2,
  type UpstreamController,
  type UpstreamDispatcher,
} from '../h2-upstream.js';
import { peerSpiffeIds, SERVER_TLS_DEFAULTS } from '../../identity/workload.js';
import type { Logger } from '../../logging/index.js';
import type { InboundRequest } from '../../policy/index.js';
import { rejectUpgrade, relayUpgrade } from '../http-upgrade.js';
import { containRequest, containSocket } from '../containment.js';
import {
  answerParseError,
  checkRequestHead,
  enforceHeadersTimeout,
  CONNECTION_CHECK_INTERVAL_MS,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
  rejectionHeaders,
  rejectOnSocket,
  requestHeadPolicy,
  upgradeAllowed,
} from '../request-head.js';
import {
  createLocalRateLimiter,
  downstreamConnection,
  hcmRateLimit,
  routeRateLimit,
} from '../local-rate-limit.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { XdsResource } from '../xds-client/xds-resource.js';
import { bindsToPort, handOff } from '../capture/virtual-inbound.js';
import { destinationOf } from '../capture/destinations.js';
import {
  inboundPeer,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  type InboundTelemetry,
} from './inbound-telemetry.js';
import type { PeerInfo, SpanContext } from '../../telemetry/index.js';
import {
  denialBody,
  flatHeaders,
  httpPolicyEvaluator,
  tcpPolicyEvaluator,
  type PolicyEvaluator,
} from './inbound-policy.js';

/** One inbound request or connection, for access logs and metrics. */
export interface InboundRecord {
  readonly listener: string;
  readonly principal: string | null;
  readonly method?: string;
  readonly path?: string;
  readonly status: number;
  readonly reason: string;
  readonly policy: string | null;
  readonly durationMs: number;
  readonly mtls: boolean;
  /** HTTP requests: `HTTP/1.1` or `HTTP/2`. */
  readonly protocol?: string;
  /** Set for gRPC requests: the status the client got, when one was sent. */
  readonly grpc?: { readonly status: number | undefined };
  /** The client's peer metadata, when mTLS proved its claim (inbound-telemetry.ts). */
  readonly peer?: PeerInfo;
  /** The server span of this request, when server spans are on. */
  readonly span?: SpanContext;
}

/** Options of {@link createInboundListeners}. */
export interface InboundListenersOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  /** Called once per finished request/connection. */
  readonly onRecord?: (record: InboundRecord) => void;
  /** Peer metadata exchange and server spans (inbound-telemetry.ts); absent = neither. */
  readonly telemetry?: InboundTelemetry;
}

/** A built update, not yet serving: {@link PreparedUpdate.commit} swaps it in, `abort` releases it. */
export interface PreparedUpdate {
  commit(): void;
  abort(): void;
}

/** The inbound listeners of one proxy. */
export interface InboundListeners {
  /**
   * Builds everything the snapshot's `inbound|*` listeners need (compiled filter chains,
   * bound sockets: a new or moved listener binds before the old one closes) without changing
   * what serves. Rejects with every problem, after releasing what it built, so the update can
   * be NACKed while the old config keeps serving (Envoy's listener manager: a listener is
   * only swapped in once it is ready).
   */
  prepare(snapshot: XdsSnapshot): Promise<PreparedUpdate>;
  /** {@link InboundListeners.prepare} then commit. */
  sync(snapshot: XdsSnapshot): Promise<void>;
  /** Bound listeners: name → port. */
  bound(): ReadonlyMap<string, number>;
  /** Stops accepting, waits up to `drainMs` for in-flight requests, then closes. */
  close(drainMs: number): Promise<void>;
}

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(rec) : []);

interface ChainState {
  readonly chain: R;
  readonly tls: boolean;
  readonly requireClientCert: boolean;
  readonly http: http.Server | undefined;
  /** The chain's HTTP/2 side (same handler); the connection's verified peer is its context. */
  readonly h2: H2Downstream<Peer> | undefined;
  readonly evaluator: PolicyEvaluator;
  /** Network RBAC ahead of an HTTP connection manager (NetworkPolicy), checked per connection. */
  readonly connection: PolicyEvaluator | undefined;
  readonly cluster: string;
  /** The HCM's local rate limit filter config and the route's override (HTTP chains). */
  readonly rateLimit: { readonly filter: R | undefined; readonly route: R | undefined };
  /** The HCM's config and its one route (HTTP chains): request-head checks, upgrade types. */
  readonly hcm: R | undefined;
  readonly route: R | undefined;
}

interface ListenerState {
  readonly name: string;
  resource: XdsResource;
  readonly server: net.Server;
  readonly port: number;
  chains: ChainState[];
}

/** The inbound cluster's one endpoint (STATIC `load_assignment`). */
function clusterEndpoint(
  snapshot: XdsSnapshot,
  name: string,
): { host: string; port: number } | undefined {
  const cluster = snapshot.cluster.get(name);
  const lb = list(list(rec(cluster?.['load_assignment'])['endpoints'])[0]?.['lb_endpoints'])[0];
  const address = rec(rec(rec(lb?.['endpoint'])['address'])['socket_address']);
  const host = address['address'];
  const port = address['port_value'];
  return typeof host === 'string' && port !== undefined ? { host, port: Number(port) } : undefined;
}

/** The connection a request came on: verified peer and addresses. */
interface Peer {
  readonly principal: string | null;
  readonly sourceIp: string | undefined;
  readonly destinationIp: string | undefined;
  readonly destinationPort: number;
}

function peerOf(socket: net.Socket, principal: string | null): Peer {
  // A captured connection's destination is its original one (src/proxy/capture).
  const destination = destinationOf(socket);
  return {
    principal,
    sourceIp: socket.remoteAddress,
    destinationIp: destination.address,
    destinationPort: destination.port,
  };
}

/** What the HTTP policy filters decide on, for a request (or an upgrade) on an inbound socket. */
function httpRequestFacts(req: AnyRequest, peer: Peer): InboundRequest {
  return {
    principal: peer.principal,
    ...(peer.sourceIp === undefined ? {} : { sourceIp: peer.sourceIp }),
    ...(peer.destinationIp === undefined ? {} : { destinationIp: peer.destinationIp }),
    destinationPort: peer.destinationPort,
    protocol: 'http',
    method: req.method ?? 'GET',
    ...(req.headers.host === undefined ? {} : { host: req.headers.host }),
    path: req.url ?? '/',
    headers: flatHeaders(req.headers),
  };
}

/** Headers for the app: hop-by-hop dropped, the policy's header changes, XFCC from the verified peer only. */
function appHeaders(
  req: AnyRequest,
  decision: {
    headersToRemove?: readonly string[];
    headersToSet?: Readonly<Record<string, string>>;
  },
  principal: string | null,
): http.OutgoingHttpHeaders {
  const headers = forwardedRequestHeaders(req.headers);
  for (const h of decision.headersToRemove ?? []) Reflect.deleteProperty(headers, h.toLowerCase());
  for (const [k, v] of Object.entries(decision.headersToSet ?? {})) headers[k] = v;
  headers['x-forwarded-proto'] = principal !== null ? 'https' : 'http';
  if (headers['x-request-id'] === undefined) headers['x-request-id'] = randomUUID();
  // Istio sets XFCC from the verified peer only; a client-supplied one is never trusted.
  if (principal !== null) headers['x-forwarded-client-cert'] = `URI=${principal}`;
  else delete headers['x-forwarded-client-cert'];
  // A client's `expect: 100-continue` was answered by this server already.
  delete headers['expect'];
  // Peer metadata is for the sidecars: the app never sees a (possibly forged) claim.
  Reflect.deleteProperty(headers, PEER_METADATA_HEADER);
  Reflect.deleteProperty(headers, PEER_METADATA_ID_HEADER);
  return headers;
}

export function createInboundListeners(options: InboundListenersOptions): InboundListeners {
  const { secrets, logger } = options;
  const listeners = new Map<string, ListenerState>();
  /** Listeners bound by a prepared update not committed yet (connections may already arrive). */
  const staged = new Map<string, ListenerState>();
  const lookup = (name: string): ListenerState | undefined =>
    listeners.get(name) ?? staged.get(name);
  const rateLimiter = createLocalRateLimiter();
  const principals = new WeakMap<net.Socket, string | null>();
  /** The connection of a request (HTTP/2 requests: kept per session; unknown → no principal). */
  const connectionOf = (req: AnyRequest, chain: ChainState | undefined): Peer => {
    if (!isH2(req)) {
      const socket = req.socket;
      return peerOf(socket, principals.get(socket) ?? null);
    }
    return (
      chain?.h2?.contextOf(req) ?? {
        principal: null,
        sourceIp: undefined,
        destinationIp: undefined,
        destinationPort: 0,
      }
    );
  };
  // Keep-alive pools to the local app: undici's dispatch() costs less per request than
  // node:http's Agent + ClientRequest + IncomingMessage (bench/proxy-chain); one multiplexed
  // session for HTTP/2 apps.
  const pools = new Map<string, UpstreamDispatcher>();
  const poolFor = (host: string, port: number, h2: boolean): UpstreamDispatcher => {
    const origin = `http://${host.includes(':') ? `[${host}]` : host}:${String(port)}`;
    const key = h2 ? `${origin}|h2` : origin;
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = h2
        ? createH2Origin({ host, port })
        : new Pool(origin, { connections: 512, pipelining: 1 });
      pools.set(key, pool);
    }
    return pool;
  };
  let snapshot: XdsSnapshot | undefined;

  /**
   * One tls.Server per listener chain terminates mTLS (node's server computes
   * `authorized` against the trust bundle); its context is swapped when the
   * secret store changes, so the next handshake uses a rotated certificate.
   */
  const tlsServers = new Map<string, { server: tls.Server; generation: number }>();
  const tlsServerFor = (
    listener: string,
    chain: ChainState,
    deliver: (s: net.Socket) => void,
  ): tls.Server | undefined => {
    const own = secrets.get('default')?.tlsCertificate;
    const roots = secrets.get('ROOTCA')?.validationContext;
    if (own === undefined || roots === undefined) return undefined;
    const key = `${listener}|${str(chain.chain['name'])}|${String(chain.requireClientCert)}`;
    const material = {
      cert: own.certChainPem,
      key: own.privateKeyPem,
      ca: roots.trustedCaPem,
      // Mesh mTLS: TLS 1.2+, AEAD suites only (Envoy's defaults).
      ...SERVER_TLS_DEFAULTS,
    };
    let entry = tlsServers.get(key);
    if (entry === undefined) {
      const server = tls.createServer({
        ...material,
        requestCert: true,
        rejectUnauthorized: chain.requireClientCert,
        ALPNProtocols: ['h2', 'http/1.1'],
        handshakeTimeout: 10_000,
      });
      server.on('secureConnection', (secure: tls.TLSSocket) => {
        containSocket(secure, logger, 'inbound TLS connection', () => {
          const ids = peerSpiffeIds(secure.getPeerCertificate());
          principals.set(secure, secure.authorized ? (ids[0] ?? null) : null);
          deliver(secure);
        });
      });
      server.on('tlsClientError', (error) => {
        logger.info({ listener, err: error.message }, 'TLS handshake failed');
      });
      entry = { server, generation: secrets.generation };
      tlsServers.set(key, entry);
    } else if (entry.generation !== secrets.generation) {
      entry.server.setSecureContext(material);
      entry.generation = secrets.generation;
    }
    return entry.server;
  };

  const record = (r: InboundRecord): void => {
    options.onRecord?.(r);
  };

  /** Records one HTTP exchange (request or upgrade) on an inbound listener, timed from now. */
  const requestRecorder = (
    listener: string,
    req: AnyRequest,
    principal: string | null,
    seen?: { readonly peer?: PeerInfo; readonly span?: SpanContext },
  ): ((status: number, reason: string, policy: string | null) => void) => {
    const started = performance.now();
    return (status, reason, policy) => {
      record({
        ...seen,
        listener,
        principal,
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        status,
        reason,
        policy,
        durationMs: performance.now() - started,
        mtls: principal !== null,
        protocol: protocolOf(req),
        ...(isGrpc(req.headers) ? { grpc: { status: sentGrpcStatus(req) } } : {}),
      });
    };
  };

  const handleHttp = (
    listener: string,
    chain: () => ChainState | undefined,
    req: AnyRequest,
    res: AnyResponse,
  ): Promise<void> | undefined => {
    const state = chain();
    const peer = connectionOf(req, state);
    const principal = peer.principal;
    const mtls = principal !== null;
    const seen = inboundPeer(options.telemetry, req.headers, principal);
    const done = requestRecorder(listener, req, principal, seen);
    const reply = (status: number, body: string, policy: string | null, reason: string): void => {
      localReply(
        req,
        res,
        status,
        body,
        status === 401
          ? { 'www-authenticate': 'Bearer realm="http://' + (req.headers.host ?? '') + '"' }
          : {},
      );
      done(status, reason, policy);
    };
    if (state === undefined || snapshot === undefined) {
      reply(503, 'no healthy upstream', null, 'listener removed');
      return;
    }
    // The request head is checked and its path normalised before policy sees it: the app
    // gets exactly the path that was authorised.
    const rejected = checkRequestHead(req, requestHeadPolicy(state.hcm));
    if (rejected !== undefined) {
      res.writeHead(rejected.status, rejectionHeaders(req, rejected));
      res.end(rejected.body);
      done(rejected.status, rejected.details, null);
      return;
    }
    const current = snapshot;
    return state.evaluator
      .decide(httpRequestFacts(req, peer))
      .then((decision) => {
        if (decision.status !== 200) {
          const status = typeof decision.status === 'number' ? decision.status : 403;
          logger.info(
            {
              listener,
              principal,
              path: req.url,
              status,
              policy: decision.policy,
              rule: decision.rule,
              reason: decision.reason,
            },
            'request denied',
          );
          if (mtls && decision.policy !== null)
            res.setHeader(
              'x-palisade-policy',
              `${decision.policy}${decision.rule === null ? '' : ` rule ${String(decision.rule)}`}`,
            );
          const ext = decision.localReply;
          if (ext !== undefined) {
            // The external authorizer's own answer (status, body, headersToDownstreamOnDeny).
            localReply(req, res, ext.status, ext.body, ext.headers);
            done(ext.status, decision.reason, decision.policy);
            return;
          }
          reply(status, denialBody(status, decision.reason), decision.policy, decision.reason);
          return;
        }
        const limit = rateLimiter.check(
          state.rateLimit.filter,
          state.rateLimit.route,
          downstreamConnection(req),
        );
        if (limit?.kind === 'limited') {
          for (const [name, value] of Object.entries(limit.headers)) res.setHeader(name, value);
          localReply(req, res, limit.status, 'local_rate_limited', {}, limit.grpcStatus);
          done(limit.status, 'local rate limit (RL)', decision.policy);
          return;
        }
        const target = clusterEndpoint(current, state.cluster);
        if (target === undefined) {
          reply(503, 'no healthy upstream', null, `cluster ${state.cluster} has no endpoint`);
          return;
        }
        const headers = appHeaders(req, decision, principal);
        if (seen.span !== undefined) options.telemetry?.toApp(headers, seen.span);
        if (limit !== undefined) {
          Object.assign(headers, limit.requestHeaders);
          for (const [name, value] of Object.entries(limit.responseHeaders))
            res.setHeader(name, value);
        }
        const hasBody = requestHasBody(req);
        let ended = false;
        let upstream: UpstreamController | undefined;
        let trailersOnly: Record<string, string | string[]> | undefined;
        const onClose = (): void => {
          if (!ended) upstream?.abort(new Error('downstream closed'));
        };
        res.once('close', onClose);
        const cluster = current.cluster.get(state.cluster);
        const h2 = cluster !== undefined && upstreamHttp2(cluster, isH2(req));
        poolFor(target.host, target.port, h2).dispatch(
          {
            method: req.method ?? 'GET',
            path: req.url ?? '/',
            headers: headers as Record<string, string | string[]>,
            body: hasBody ? req : null,
          },
          {
            onRequestStart(controller) {
              upstream = controller;
            },
            onResponseStart(controller, statusCode, upstreamHeaders) {
              const out: http.OutgoingHttpHeaders = forwardedResponseHeaders(upstreamHeaders);
              options.telemetry?.toClient(out, seen.peer);
              trailersOnly = takeTrailersOnlyStatus(out);
              res.writeHead(statusCode, out);
              upstream = controller;
            },
            onResponseData(controller, chunk) {
              if (!writeChunk(res, chunk)) {
                controller.pause();
                res.once('drain', () => {
                  controller.resume();
                });
              }
            },
            onResponseEnd(_controller, trailers) {
              ended = true;
              res.removeListener('close', onClose);
              const relayed = { ...trailersOnly, ...forwardedResponseHeaders(trailers) };
              if (Object.keys(relayed).length > 0) res.addTrailers(relayed);
              noteGrpcStatus(req, relayed);
              res.end();
              done(res.statusCode, decision.reason, decision.policy);
            },
            onResponseError(_controller, error) {
              ended = true;
              res.removeListener('close', onClose);
              if (!res.headersSent)
                reply(
                  503,
                  'upstream connect error or disconnect/reset before headers',
                  null,
                  error.message,
                );
              else res.destroy();
            },
          },
        );
      })
      .catch((error: unknown) => {
        logger.error({ err: error, listener }, 'inbound policy evaluation failed: denying');
        if (!res.headersSent)
          reply(403, 'RBAC: access denied', null, 'evaluation error (fail closed)');
      });
  };

  /** Upgrade (WebSocket): the same authentication and authorization as a request, then spliced. */
  const handleUpgrade = (
    listener: string,
    chain: () => ChainState | undefined,
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> | undefined => {
    const state = chain();
    const peer = connectionOf(req, state);
    const principal = peer.principal;
    const done = requestRecorder(listener, req, principal);
    if (state === undefined || snapshot === undefined) {
      rejectUpgrade(socket, 503, 'no healthy upstream');
      done(503, 'listener removed', null);
      return;
    }
    const rejected = checkRequestHead(req, requestHeadPolicy(state.hcm));
    if (rejected !== undefined) {
      rejectOnSocket(socket, rejected);
      done(rejected.status, rejected.details, null);
      return;
    }
    // Envoy relays only the upgrade types its upgrade_configs allow; others get 403 (upgrade_failed).
    if (!upgradeAllowed(str(req.headers.upgrade), state.hcm, state.route)) {
      rejectUpgrade(socket, 403, '');
      done(403, 'upgrade_failed', null);
      return;
    }
    const current = snapshot;
    return state.evaluator
      .decide(httpRequestFacts(req, peer))
      .then(async (decision) => {
        if (decision.status !== 200) {
          const status = typeof decision.status === 'number' ? decision.status : 403;
          logger.info(
            { listener, principal, path: req.url, status, policy: decision.policy },
            'upgrade denied',
          );
          if (decision.localReply !== undefined)
            rejectUpgrade(socket, decision.localReply.status, decision.localReply.body);
          else
            rejectUpgrade(socket, status, status === 403 ? 'RBAC: access denied' : 'Unauthorized');
          done(status, decision.reason, decision.policy);
          return;
        }
        const target = clusterEndpoint(current, state.cluster);
        if (target === undefined) {
          rejectUpgrade(socket, 503, 'no healthy upstream');
          done(503, `cluster ${state.cluster} has no endpoint`, null);
          return;
        }
        const result = await relayUpgrade(
          socket,
          head,
          req.method ?? 'GET',
          req.url ?? '/',
          appHeaders(req, decision, principal),
          str(req.headers.upgrade),
          { host: target.host, port: target.port, tls: false },
        );
        done(result.status, decision.reason, decision.policy);
      })
      .catch((error: unknown) => {
        logger.error({ err: error, listener }, 'inbound policy evaluation failed: denying');
        rejectUpgrade(socket, 403, 'RBAC: access denied');
      });
  };

  const handleTcp = (listener: string, state: ChainState, socket: net.Socket): void => {
    const started = performance.now();
    const principal = principals.get(socket) ?? null;
    void state.evaluator
      .decide({
        principal,
        destinationPort: destinationOf(socket).port,
        protocol: 'tcp',
        ...(socket.remoteAddress === undefined ? {} : { sourceIp: socket.remoteAddress }),
        ...(socket.localAddress === undefined ? {} : { destinationIp: socket.localAddress }),
      })
      .then((decision) => {
        const target =
          snapshot === undefined ? undefined : clusterEndpoint(snapshot, state.cluster);
        if (decision.status !== 200 || target === undefined) {
          record({
            listener,
            principal,
            status: 403,
            reason: decision.reason,
            policy: decision.policy,
            durationMs: performance.now() - started,
            mtls: principal !== null,
          });
          socket.destroy();
          return;
        }
        const upstream = net.connect(target.port, target.host);
        socket.pipe(upstream).pipe(socket);
        const end = (): void => {
          socket.destroy();
          upstream.destroy();
        };
        upstream.on('error', end);
        socket.on('error', end);
        socket.on('close', () => {
          upstream.destroy();
          record({
            listener,
            principal,
            status: 200,
            reason: decision.reason,
            policy: decision.policy,
            durationMs: performance.now() - started,
            mtls: principal !== null,
          });
        });
      })
      .catch((error: unknown) => {
        logger.error({ err: error, listener }, 'inbound TCP policy evaluation failed: closing');
        socket.destroy();
      });
  };

  const buildChains = (name: string, resource: XdsResource): ChainState[] =>
    list(resource['filter_chains']).map((chain) => {
      const match = rec(chain['filter_chain_match']);
      const socket = rec(rec(chain['transport_socket'])['typed_config']);
      const filters = list(chain['filters']);
      const hcm = filters.find(
        (f) => f['name'] === 'envoy.filters.network.http_connection_manager',
      );
      let cluster: string;
      let server: http.Server | undefined;
      let h2: H2Downstream<Peer> | undefined;
      let evaluator: PolicyEvaluator;
      let connection: PolicyEvaluator | undefined;
      let rateLimit: ChainState['rateLimit'] = { filter: undefined, route: undefined };
      let hcmConfig: R | undefined;
      let route: R | undefined;
      if (hcm !== undefined) {
        const networkRbac = filters.filter((f) => f['name'] === 'envoy.filters.network.rbac');
        if (networkRbac.length > 0) connection = tcpPolicyEvaluator(networkRbac);
        const config = rec(hcm['typed_config']);
        const vh = list(rec(config['route_config'])['virtual_hosts'])[0];
        cluster = str(rec(list(vh?.['routes'])[0]?.['route'])['cluster']);
        rateLimit = {
          filter: hcmRateLimit(config),
          route: routeRateLimit(list(vh?.['routes'])[0]),
        };
        hcmConfig = config;
        route = list(vh?.['routes'])[0];
        evaluator = httpPolicyEvaluator(config);
        const chainName = str(chain['name']);
        const current = (): ChainState | undefined =>
          lookup(name)?.chains.find((c) => c.chain['name'] === chainName);
        h2 = createH2Downstream<Peer>((req, res) => {
          containRequest(req, res, logger, 'inbound request', () =>
            handleHttp(name, current, req, res),
          );
        });
        server = http.createServer(
          {
            headersTimeout: REQUEST_HEADERS_TIMEOUT_MS,
            requestTimeout: 0,
            maxHeaderSize: MAX_REQUEST_HEADER_BYTES,
            keepAliveTimeout: 30_000,
            connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
          },
          (req, res) => {
            containRequest(req, res, logger, 'inbound request', () =>
              handleHttp(name, current, req, res),
            );
          },
        );
        server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
          containSocket(socket, logger, 'inbound upgrade', () =>
            handleUpgrade(name, current, req, socket, head),
          );
        });
        // This server never listens: connections are handed to it. Node starts its
        // connection tracking (idle close, headers/request timeouts) on 'listening'.
        server.emit('listening');
        server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
          answerParseError(error, socket);
        });
        enforceHeadersTimeout(server, REQUEST_HEADERS_TIMEOUT_MS);
      } else {
        const proxy = filters.find((f) => f['name'] === 'envoy.filters.network.tcp_proxy');
        cluster = str(rec(proxy?.['typed_config'])['cluster']);
        evaluator = tcpPolicyEvaluator(filters);
      }
      return {
        chain,
        tls: match['transport_protocol'] === 'tls',
        requireClientCert: rec(rec(socket)['require_client_certificate'])['value'] === true,
        http: server,
        h2,
        evaluator,
        connection,
        cluster,
        rateLimit,
        hcm: hcmConfig,
        route,
      };
    });

  const onConnection = (received: string, socket: net.Socket): void => {
    // virtualInbound hands a captured connection to the listener of its original port.
    const name = handOff(received, socket, (n) => lookup(n) !== undefined);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(15_000, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      containSocket(socket, logger, 'inbound first bytes', () => {
        firstBytes(first);
      });
    });
    const firstBytes = (first: Buffer): void => {
      socket.pause();
      socket.unshift(first);
      socket.setTimeout(0);
      const state = lookup(name);
      const isTls = first[0] === 0x16;
      const chain = state?.chains.find((c) => (isTls ? c.tls : !c.tls));
      if (chain === undefined) {
        logger.info(
          { listener: name, tls: isTls, peer: socket.remoteAddress },
          isTls ? 'TLS not accepted on this port' : 'plaintext refused: mTLS required (STRICT)',
        );
        record({
          listener: name,
          principal: null,
          status: 0,
          reason: isTls ? 'no TLS chain' : 'plaintext refused (STRICT)',
          policy: null,
          durationMs: 0,
          mtls: false,
        });
        socket.destroy();
        return;
      }
      const chainName = str(chain.chain['name']);
      /** Hands a (decrypted) connection to the chain as it is now (it may have been rebuilt). */
      const deliver = (s: net.Socket): void => {
        const current = lookup(name)?.chains.find((c) => c.chain['name'] === chainName) ?? chain;
        /** HTTP/2 by ALPN after TLS, by the connection preface in plaintext (RFC 9113 §3). */
        const toHttp = (): void => {
          const tlsSocket = s instanceof tls.TLSSocket;
          const h2 = tlsSocket ? s.alpnProtocol === 'h2' : isH2Preface(first);
          // In plaintext the preface was read to sniff it: the session must read through JS.
          if (h2 && current.h2 !== undefined)
            current.h2.accept(s, peerOf(s, principals.get(s) ?? null), !tlsSocket);
          else {
            current.http?.emit('connection', s);
            // The first bytes were peeked with pause/unshift: let the HTTP parser read them.
            s.resume();
          }
        };
        const gate = current.connection;
        if (gate !== undefined && current.http !== undefined) {
          // Network-level policy (NetworkPolicy) decides the connection before any HTTP.
          void gate
            .decide({
              principal: principals.get(s) ?? null,
              protocol: 'tcp',
              destinationPort: destinationOf(s).port,
              ...(s.remoteAddress === undefined ? {} : { sourceIp: s.remoteAddress }),
            })
            .then((decision) => {
              if (decision.status !== 200) {
                logger.info(
                  { listener: name, peer: s.remoteAddress, reason: decision.reason },
                  'connection refused by network policy',
                );
                record({
                  listener: name,
                  principal: principals.get(s) ?? null,
                  status: 0,
                  reason: decision.reason,
                  policy: decision.policy,
                  durationMs: 0,
                  mtls: false,
                });
                s.destroy();
                return;
              }
              toHttp();
            })
            .catch((error: unknown) => {
              logger.error({ err: error, listener: name }, 'network policy failed: closing');
              s.destroy();
            });
          return;
        }
        if (current.http !== undefined) toHttp();
        // Stays paused while the policy decides: the sniffed first bytes (unshifted) and
        // anything after them wait in the socket's buffer until handleTcp pipes it. (Resuming
        // here dropped them: a flowing stream with no 'data' listener discards its chunks.)
        else handleTcp(name, current, s);
      };
      if (!chain.tls) {
        principals.set(socket, null);
        deliver(socket);
        return;
      }
      const server = tlsServerFor(name, chain, deliver);
      if (server === undefined) {
        logger.warn(
          { listener: name },
          'no workload certificate or trust bundle yet: TLS connection refused',
        );
        socket.destroy();
        return;
      }
      server.emit('connection', socket);
    };
    socket.resume();
  };

  const closeChains = (chains: readonly ChainState[]): void => {
    for (const c of chains) {
      c.http?.close();
      c.h2?.close();
    }
  };
  const addressOf = (resource: XdsResource): { host: string; port: number } => {
    const address = rec(rec(resource['address'])['socket_address']);
    return { host: str(address['address'], '127.0.0.1'), port: Number(address['port_value'] ?? 0) };
  };
  const bind = async (name: string, host: string, port: number): Promise<net.Server> => {
    const server = net.createServer((socket) => {
      containSocket(socket, logger, 'inbound connection', () => {
        onConnection(name, socket);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, resolve);
    });
    return server;
  };
  const message = (error: unknown): string =>
    error instanceof Error ? error.message : String(error);

  const prepare = async (next: XdsSnapshot): Promise<PreparedUpdate> => {
    const wanted = new Map<string, XdsResource>();
    for (const [name, resource] of next.listener)
      if (name.startsWith('inbound|') || name === 'virtualInbound') wanted.set(name, resource);
    /** Existing listeners on the same address whose chains were rebuilt. */
    const rebuilt = new Map<string, { resource: XdsResource; chains: ChainState[] }>();
    /** New listeners, and existing ones moved to another address, bound now. */
    const fresh: ListenerState[] = [];
    const problems: string[] = [];
    for (const [name, resource] of wanted) {
      const existing = listeners.get(name);
      if (existing?.resource === resource) continue;
      let chains: ChainState[];
      try {
        chains = buildChains(name, resource);
      } catch (error) {
        problems.push(`listener ${JSON.stringify(name)}: ${message(error)}`);
        continue;
      }
      const { host, port } = addressOf(resource);
      const old = existing === undefined ? undefined : addressOf(existing.resource);
      if (existing !== undefined && old?.host === host && old.port === port) {
        rebuilt.set(name, { resource, chains });
        continue;
      }
      try {
        // bind_to_port false (capture): reached only through virtualInbound, never bound.
        const server = bindsToPort(resource) ? await bind(name, host, port) : net.createServer();
        const state: ListenerState = {
          name,
          resource,
          server,
          port: bindsToPort(resource) ? (server.address() as net.AddressInfo).port : port,
          chains,
        };
        fresh.push(state);
        if (existing === undefined) staged.set(name, state);
      } catch (error) {
        closeChains(chains);
        problems.push(
          `listener ${JSON.stringify(name)}: cannot bind ${host}:${String(port)}: ${message(error)}`,
        );
      }
    }
    const release = (): void => {
      for (const state of fresh) {
        state.server.close();
        closeChains(state.chains);
        if (staged.get(state.name) === state) staged.delete(state.name);
      }
      for (const { chains } of rebuilt.values()) closeChains(chains);
    };
    if (problems.length > 0) {
      release();
      throw new Error(problems.join('; '));
    }
    return {
      abort: release,
      commit() {
        snapshot = next;
        for (const [name, state] of listeners)
          if (!wanted.has(name)) {
            state.server.close();
            for (const c of state.chains) {
              c.http?.closeIdleConnections();
              c.h2?.close();
            }
            listeners.delete(name);
          }
        for (const [name, { resource, chains }] of rebuilt) {
          const existing = listeners.get(name);
          if (existing === undefined) continue;
          // As Envoy drains connections of a replaced filter chain: idle keep-alive
          // connections close now, so the next request is decided by the new chain
          // (a connection-level policy such as NetworkPolicy applies to new connections).
          closeChains(existing.chains);
          existing.chains = chains;
          existing.resource = resource;
          logger.info(
            { listener: name, chains: chains.map((c) => c.chain['name']) },
            'inbound listener updated',
          );
        }
        for (const state of fresh) {
          const old = listeners.get(state.name);
          if (old !== undefined) {
            old.server.close();
            closeChains(old.chains);
          }
          listeners.set(state.name, state);
          staged.delete(state.name);
          const { host } = addressOf(state.resource);
          logger.info(
            { listener: state.name, address: `${host}:${String(state.port)}` },
            'inbound listener bound',
          );
        }
      },
    };
  };

  return {
    prepare,
    async sync(next) {
      (await prepare(next)).commit();
    },
    bound() {
      return new Map([...listeners].map(([name, s]) => [name, s.port]));
    },
    async close(drainMs) {
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(
        all.map(
          (s) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                for (const c of s.chains) c.http?.closeAllConnections();
                resolve();
              }, drainMs);
              s.server.close(() => {
                clearTimeout(timer);
                resolve();
              });
              for (const c of s.chains) {
                c.http?.closeIdleConnections();
                c.h2?.close();
              }
            }),
        ),
      );
      await Promise.all([...pools.values()].map((p) => p.destroy()));
      pools.clear();
    },
  };
}
