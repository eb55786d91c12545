/**
 * The sidecar's outbound listener (docs/xds-contract.md "Outbound") and the
 * server layer of the outbound stack (docs/proxy.md "Layers"): an explicit
 * HTTP proxy on `<instance-ip>:15001` taking absolute-form requests (HTTP/1.1
 * and h2c), CONNECT, and upgrades. It turns each request into an
 * {@link Exchange} and composes the layers:
 *
 *   server (here) → router (router.ts) → filters (filters.ts: CORS, local
 *   rate limit, fault) → cluster (cluster.ts, load-balancer.ts) → endpoint
 *   (endpoint.ts), with retry/timeout as a handler around the dispatch
 *   (retry-handler.ts) and mirrors (mirror.ts), upgrades and tunnels
 *   (tunnels.ts) through the same router and cluster code.
 *
 * Every lookup reads the current snapshot, so an accepted xDS update takes
 * effect on the next request and the proxy keeps serving its last good
 * config when the control plane is gone. Failures are answered through
 * http/proxy-failure.ts (status, response flags, gRPC status).
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomInt } from 'node:crypto';
import type { PeerInfo, SpanContext } from '../../telemetry/index.js';
import { containRequest, containSocket } from '../listeners/containment.js';
import { createHttpServer } from '../listeners/http-server.js';
import {
  createH2Downstream,
  isH2,
  isGrpc,
  protocolOf,
  sentGrpcStatus,
  type AnyRequest,
  type AnyResponse,
  type Http1AnyRequest,
} from '../h2-downstream.js';
import { usesHttp2 } from '../h2-upstream.js';
import { nodeExchange } from '../http/node-exchange.js';
import { proxyFailure, type ProxyFailure } from '../http/proxy-failure.js';
import type { RequestTarget } from '../http/types.js';
import { createLocalRateLimiter, downstreamConnection } from '../local-rate-limit.js';
import {
  checkRequestHead,
  compileRequestHeadPolicy,
  rejectOnSocket,
  type HeadRejection,
} from '../request-head.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import { createClusterManager, isClusterFailure } from './cluster.js';
import { createEndpointConnector } from './endpoint.js';
import { runRequestFilters, rollFault } from './filters.js';
import { requestHash } from './hash-lb.js';
import { sendMirror } from './mirror.js';
import { answerFailure, forward, type ForwardLayers } from './retry-handler.js';
import { capRetries } from './retry-policy.js';
import { decide } from './route-table.js';
import { hcmFor, routeIn, targetOf, upstreamHead } from './router.js';
import type { HcmConfig } from './hcm-config.js';

/** Envoy's defaults, for a target port whose chain has no HCM (nothing routes there). */
const DEFAULT_HEAD_POLICY = compileRequestHeadPolicy(undefined);
import { createConnectHandler } from './connect-tunnel.js';
import { relayRoutedUpgrade, tcpProxy } from './tunnels.js';
import type { OutboundProxy, OutboundProxyOptions } from './outbound-types.js';

export type {
  OutboundProxy,
  OutboundProxyOptions,
  OutboundRecord,
  OutboundTcpRecord,
} from './outbound-types.js';

/** Starts nothing; `listen()` binds the outbound listener. */
export function createOutboundProxy(options: OutboundProxyOptions): OutboundProxy {
  const listenerName = options.listenerName ?? 'outbound';
  const traceSampling = options.traceSampling ?? 1;
  const rateLimiter = createLocalRateLimiter();
  const clusters = createClusterManager(options);
  const connector = createEndpointConnector(options.localAddress);
  const layers: ForwardLayers = { clusters, connector };

  /** The access-log/metrics record of one exchange, with its duration since `started`. */
  const recorder =
    (
      req: AnyRequest,
      target: RequestTarget | undefined,
      started: number,
      hopOf: () => { span?: SpanContext; peer?: PeerInfo },
    ) =>
    (
      cluster: string,
      upstream: string,
      status: number,
      flags: string,
      attempts: number,
      mtls: boolean,
    ): void => {
      const hop = hopOf();
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
        // One shape for every record (absent parts undefined), as the inbound one.
        grpc: isGrpc(req.headers) ? { status: sentGrpcStatus(req) } : undefined,
        span: hop.span,
        peer: hop.peer,
      });
    };
  const noSpan = (): { span?: SpanContext; peer?: PeerInfo } => ({});

  /** The answer to a request-target that names no target this listener can route. */
  const invalid = {
    rejection: { status: 400, body: 'Bad Request', details: 'http.invalid_target' },
  } as const;

  /**
   * The request's target after the request-head checks of its HCM (request-head.ts): the
   * path is normalised in `req.url`, so routing, policy and the upstream all see it.
   */
  const checkedTarget = (
    req: AnyRequest,
    snapshot: XdsSnapshot,
    hcmOverride: HcmConfig | undefined,
    defaultPort = 80,
  ): { target: RequestTarget } | { rejection: HeadRejection } => {
    const url = req.url ?? '';
    const host = req.headers.host;
    const first = targetOf(url, host, defaultPort);
    if (first === undefined) return invalid;
    const rejection = checkRequestHead(
      req,
      hcmFor(snapshot, listenerName, first.port, hcmOverride)?.requestHead ?? DEFAULT_HEAD_POLICY,
    );
    if (rejection !== undefined) return { rejection };
    // The checks may have rewritten the target (normalised path): parse it again only then.
    const target =
      req.url === url && req.headers.host === host
        ? first
        : targetOf(req.url ?? '', req.headers.host, defaultPort);
    return target === undefined ? invalid : { target };
  };

  /** Serves one request: routed by the outbound listener's chain for the target port, or by `hcmOverride` (gateways). */
  const serve = (req: AnyRequest, res: AnyResponse, hcmOverride?: HcmConfig): void => {
    const snapshot = options.snapshot();
    const checked = checkedTarget(req, snapshot, hcmOverride, tunnelPortOf(req));
    if ('rejection' in checked) {
      const { status, body } = checked.rejection;
      if (!isH2(req)) (res as http.ServerResponse).shouldKeepAlive = false;
      const failure = proxyFailure('PAL_ERR_PROXY_BAD_REQUEST', { status, reason: body });
      const target = targetOf(req.url ?? '', req.headers.host);
      const ex = nodeExchange(req, res, target ?? { authority: '', host: '', port: 0, path: '' });
      answerFailure(ex, failure);
      recorder(req, target, performance.now(), noSpan)('', '', status, failure.flags, 0, false);
      return;
    }
    const target = checked.target;
    // The span is known once the upstream head is built; records made before carry none.
    const hop: { span?: SpanContext; peer?: PeerInfo } = {};
    const record = recorder(req, target, performance.now(), () => hop);
    const ex = nodeExchange(req, res, target);
    const fail = (failure: ProxyFailure, cluster = ''): void => {
      answerFailure(ex, failure);
      record(cluster, '', failure.status, failure.flags, 0, false);
    };
    const hcm = hcmFor(snapshot, listenerName, target.port, hcmOverride);
    const match = routeIn(snapshot, hcm, ex.head);
    if (match === undefined) {
      fail(proxyFailure('PAL_ERR_PROXY_NO_ROUTE'));
      return;
    }
    const filtered = runRequestFilters(ex, hcm, match, rateLimiter, true);
    if (filtered.kind === 'preflight') {
      res.writeHead(200, { ...filtered.headers, 'content-length': 0 });
      res.end();
      record('', '', 200, '-', 0, false);
      return;
    }
    if (filtered.kind === 'failure') {
      for (const [name, value] of Object.entries(filtered.headers)) res.setHeader(name, value);
      fail(filtered.failure);
      return;
    }
    const decision = decide(match.entry, ex.head, (total) => randomInt(total));
    if (decision.kind === 'direct') {
      ex.reply(decision.status, decision.body, { 'x-palisade-response-flags': '-' });
      record('', '', decision.status, '-', 0, false);
      return;
    }
    if (decision.kind === 'redirect') {
      res.writeHead(decision.status, { location: decision.location, 'content-length': 0 });
      res.end();
      record('', '', decision.status, '-', 0, false);
      return;
    }
    const cluster = clusters.resolve(snapshot, decision.cluster, target);
    if (isClusterFailure(cluster)) {
      fail(proxyFailure(cluster.failure), decision.cluster);
      return;
    }
    const up = upstreamHead(ex.head.headers, target, match, decision, traceSampling);
    hop.span = up.span;
    // A client's `expect: 100-continue` was answered by this server already. (Deleting an
    // absent field is still a runtime call per request.)
    if (up.headers['expect'] !== undefined) delete up.headers['expect'];
    // Istio's metadata exchange: only to mesh peers (ISTIO_MUTUAL, the workload's own SVID).
    const tls = cluster.tls;
    const exchange =
      options.peerMetadata !== undefined && tls?.certificateSecret === 'default'
        ? options.peerMetadata
        : undefined;
    exchange?.put(up.headers);
    const route = match.entry;
    const retry = capRetries(route.retry, cluster.policy.maxRetries);
    if (!ex.hasBody)
      for (const mirror of route.mirrors)
        sendMirror(layers, snapshot, {
          ...mirror,
          method: ex.head.method,
          path: up.path,
          headers: up.headers,
          target,
          timeoutMs: retry.timeoutMs,
        });
    // Consistent hashing (RING_HASH/MAGLEV clusters): the route's hash_policy keys the request.
    const lb = cluster.policy.lbPolicy;
    const hashed =
      lb === 'RING_HASH' || lb === 'MAGLEV'
        ? requestHash(route.hashPolicy, req.headers, target.path, ex.head.remoteAddress)
        : undefined;
    forward(layers, {
      ex,
      match,
      cluster,
      retry,
      headers: up.headers,
      path: up.path,
      fault: rollFault(hcm, match),
      cors: filtered.cors,
      hash: hashed?.hash,
      setCookie: hashed?.setCookie,
      h2: usesHttp2(cluster.config.upstreamHttp2, isH2(req)),
      servername: cluster.tls?.sni,
      peer:
        exchange === undefined || tls === undefined
          ? undefined
          : (headers) => {
              const peer = exchange.fromServer(headers, tls.sans);
              if (peer !== undefined) hop.peer = peer;
            },
      finish: (status, flags, upstream, attempts) => {
        record(cluster.name, upstream, status, flags, attempts, cluster.mtls);
      },
    });
  };

  const upgrade = (
    req: Http1AnyRequest,
    socket: Duplex,
    head: Buffer,
    hcmOverride?: HcmConfig,
  ): void => {
    const snapshot = options.snapshot();
    const checked = checkedTarget(req, snapshot, hcmOverride);
    if ('rejection' in checked) {
      rejectOnSocket(socket, checked.rejection);
      recorder(req, targetOf(req.url ?? '', req.headers.host), performance.now(), noSpan)(
        '',
        '',
        checked.rejection.status,
        'DPE',
        1,
        false,
      );
      return;
    }
    const record = recorder(req, checked.target, performance.now(), noSpan);
    relayRoutedUpgrade(
      {
        layers,
        snapshot,
        listenerName,
        limiter: rateLimiter,
        traceSampling,
        logger: options.logger,
        connection: downstreamConnection(req),
      },
      req,
      socket,
      head,
      checked.target,
      hcmOverride,
      (cluster, upstream, status, flags, mtls) => {
        record(cluster, upstream, status, flags, 1, mtls);
      },
    );
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

  const connect = createConnectHandler({
    snapshot: options.snapshot,
    listenerName,
    layers,
    logger: options.logger,
    h2,
    tunnelPorts,
    server: {
      emit: (event, socket) => server.emit(event, socket),
    },
    tcp: { exchange: options.peerMetadata, record: options.onTcpRecord },
  });
  // The HTTP/1.1 server of the listener (listeners/http-server.ts chooses the transport).
  const server = createHttpServer({
    request(req, res) {
      containRequest(req, res, options.logger, 'outbound request', () => {
        serve(req, res);
      });
    },
    upgrade(req, socket, head) {
      containSocket(socket, options.logger, 'outbound upgrade', () => {
        upgrade(req, socket, head);
      });
    },
    connect(req, socket, head) {
      containSocket(socket, options.logger, 'outbound CONNECT', () => {
        connect(req, socket, head);
      });
    },
  });

  return {
    server,
    handle: serve,
    handleUpgrade: upgrade,
    handleTcp: (socket, config, first, to) => {
      tcpProxy(layers, options.snapshot(), options.logger, socket, config, first, to, {
        exchange: options.peerMetadata,
        record: options.onTcpRecord,
      });
    },
    sync(snapshot) {
      clusters.sync(snapshot);
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
      h2.close();
      clusters.close();
      connector.close();
      server.closeAllConnections();
      return new Promise((resolveClose) =>
        server.close(() => {
          resolveClose();
        }),
      );
    },
  };
}
