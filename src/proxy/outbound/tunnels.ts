/**
 * The outbound server's long-lived exchanges, through the same router and
 * cluster layers as requests:
 * - HTTP/1.1 Upgrade (WebSocket): request-head checks, route, the route's
 *   allowed upgrade types, local rate limit, cluster (LB, health, ejection,
 *   circuit breaker — a tunnel holds a request slot while it lives), upstream
 *   mTLS, rewrites, header operations and trace context; then spliced on 101.
 *   No retries, timeouts or faults: the exchange becomes a tunnel.
 * - CONNECT tunnels that are not HTTP, gateway tcp_proxy (TLS passthrough,
 *   TCP servers) and captured TCP connections (src/proxy/capture): the cluster (weighted when `weighted_clusters`), a host by
 *   its load balancer, then an opaque splice (over mTLS when the cluster says
 *   so). No cluster or no healthy host closes the connection, as Envoy does.
 */
import type { Http1AnyRequest } from '../h2-downstream.js';
import { randomInt } from 'node:crypto';
import type * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import { str } from '../../xds/index.js';
import { relayUpgrade, rejectUpgrade } from '../http-upgrade.js';
import { proxyFailure, type ProxyFailure } from '../http/proxy-failure.js';
import type { RequestTarget } from '../http/types.js';
import type { LocalRateLimiter } from '../local-rate-limit.js';
import { upgradeAllowedBy } from '../request-head.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import { isClusterFailure, type ResolvedCluster } from './cluster.js';
import { relayTcp, type TcpRelayTelemetry } from './tcp-relay.js';
import { admitRequest, endpointKey, releaseRequest, type Endpoint } from './load-balancer.js';
import type { ForwardLayers } from './retry-handler.js';
import type { HcmConfig } from './hcm-config.js';
import { pickTcpCluster, type TcpProxyConfig } from './tcp-proxy-config.js';
import { decide } from './route-table.js';
import { hcmFor, routeIn, upstreamHead, type RouteMatch } from './router.js';

/** Records an exchange: cluster, upstream host, status, flags, mTLS. */
export type UpgradeRecord = (
  cluster: string,
  upstream: string,
  status: number,
  flags: string,
  mtls: boolean,
) => void;

/** A cluster's host and TLS agent, or the failure (the one cluster → TLS → LB sequence). */
export function hostFor(
  layers: ForwardLayers,
  snapshot: XdsSnapshot,
  name: string,
  target: RequestTarget,
  to?: Endpoint,
):
  | { cluster: ResolvedCluster; endpoint: Endpoint; agent: https.Agent | undefined }
  | { failure: ProxyFailure; mtls: boolean; reason?: string } {
  const cluster = layers.clusters.resolve(snapshot, name, target);
  if (isClusterFailure(cluster))
    return {
      failure: proxyFailure(
        cluster.failure === 'PAL_ERR_PROXY_NO_CLUSTER'
          ? 'PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM'
          : cluster.failure,
      ),
      mtls: false,
    };
  const agent = layers.clusters.agent(cluster);
  if (agent instanceof Error)
    return {
      failure: proxyFailure('PAL_ERR_PROXY_UPSTREAM_TLS', { reason: agent.message }),
      mtls: true,
      reason: agent.message,
    };
  // `to`: that host of the cluster (a captured connection to a pod IP), only when it is one.
  const endpoint =
    to === undefined
      ? layers.clusters.pick(cluster)
      : cluster.endpoints.find((e) => e.host === to.host && e.port === to.port);
  if (endpoint === undefined)
    return { failure: proxyFailure('PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM'), mtls: false };
  return { cluster, endpoint, agent };
}

/** What {@link relayRoutedUpgrade} needs beyond the request. */
export interface UpgradeContext {
  readonly layers: ForwardLayers;
  readonly snapshot: XdsSnapshot;
  readonly listenerName: string;
  readonly limiter: LocalRateLimiter;
  readonly traceSampling: number;
  readonly logger: Logger | undefined;
  /** The downstream connection (per-connection rate-limit buckets). */
  readonly connection: object;
}

/** Routes and relays a checked HTTP/1.1 Upgrade request (see the module comment). */
export function relayRoutedUpgrade(
  ctx: UpgradeContext,
  req: Http1AnyRequest,
  socket: Duplex,
  head: Buffer,
  target: RequestTarget,
  hcmOverride: HcmConfig | undefined,
  record: UpgradeRecord,
): void {
  const refuse = (failure: ProxyFailure, cluster = '', mtls = false): void => {
    rejectUpgrade(socket, failure.status, failure.body, failure.flags);
    record(cluster, '', failure.status, failure.flags, mtls);
  };
  const request = { authority: target.authority, path: target.path, headers: req.headers };
  const hcm = hcmFor(ctx.snapshot, ctx.listenerName, target.port, hcmOverride);
  const match: RouteMatch | undefined = routeIn(ctx.snapshot, hcm, request);
  if (match === undefined) {
    refuse(proxyFailure('PAL_ERR_PROXY_NO_ROUTE'));
    return;
  }
  // Envoy relays only the upgrade types its upgrade_configs allow; others get 403 (upgrade_failed).
  if (!upgradeAllowedBy(str(req.headers.upgrade), hcm?.upgrades, match.entry.upgrades)) {
    refuse(proxyFailure('PAL_ERR_PROXY_UPGRADE_REFUSED'));
    return;
  }
  const limit = ctx.limiter.check(hcm?.rateLimit, match.entry.rateLimit, ctx.connection);
  if (limit?.kind === 'limited') {
    refuse(proxyFailure('PAL_ERR_PROXY_RATE_LIMITED', { status: limit.status }));
    return;
  }
  if (limit !== undefined) Object.assign(req.headers, limit.requestHeaders);
  const decision = decide(match.entry, request, (total) => randomInt(total));
  if (decision.kind !== 'cluster' || decision.cluster === 'BlackHoleCluster') {
    const status = decision.kind === 'cluster' ? 502 : decision.status;
    rejectUpgrade(socket, status, decision.kind === 'direct' ? decision.body : '', 'NR');
    record('', '', status, 'NR', false);
    return;
  }
  const host = hostFor(ctx.layers, ctx.snapshot, decision.cluster, target);
  if ('failure' in host) {
    refuse(host.failure, decision.cluster, host.mtls);
    return;
  }
  const { cluster, endpoint, agent } = host;
  const mtls = agent !== undefined;
  // Circuit breaking: an upgrade holds a request slot for as long as its tunnel lives.
  if (!admitRequest(cluster.policy, cluster.state)) {
    refuse(proxyFailure('PAL_ERR_PROXY_OVERFLOW'), cluster.name, mtls);
    return;
  }
  const { headers, path } = upstreamHead(req.headers, target, match, decision, ctx.traceSampling);
  relayUpgrade(socket, head, req.method ?? 'GET', path, headers, str(req.headers.upgrade), {
    host: endpoint.host,
    port: endpoint.port,
    agent,
    tls: mtls,
    localAddress: ctx.layers.connector.localAddressFor(endpoint),
  })
    .then((result) => {
      record(cluster.name, endpointKey(endpoint), result.status, result.flags, mtls);
    })
    .catch((error: unknown) => {
      ctx.logger?.error({ err: error }, 'upgrade relay failed');
      socket.destroy();
    })
    .finally(() => {
      releaseRequest(cluster.state);
    });
}

/** A gateway's tcp_proxy: weighted or single cluster, a host, then an opaque splice. */
export function tcpProxy(
  layers: ForwardLayers,
  snapshot: XdsSnapshot,
  logger: Logger | undefined,
  socket: Duplex,
  config: TcpProxyConfig,
  first: Buffer,
  to?: Endpoint,
  telemetry: TcpRelayTelemetry = {},
): void {
  const clusterName = pickTcpCluster(config);
  // tcp_proxy has no request target: PassthroughCluster is not meaningful here.
  const none: RequestTarget = { authority: '', host: '', port: 0, path: '' };
  const host =
    clusterName === 'PassthroughCluster'
      ? undefined
      : hostFor(layers, snapshot, clusterName, none, to);
  if (host === undefined || 'failure' in host) {
    logger?.info(
      {
        cluster: clusterName,
        reason: host?.reason ?? 'no healthy upstream',
      },
      'tcp_proxy closed a connection',
    );
    socket.destroy();
    return;
  }
  relayTcp(layers.connector, host, socket, first, telemetry, logger);
}
