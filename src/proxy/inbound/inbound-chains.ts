/**
 * The compiled filter chains of an inbound listener (docs/xds-contract.md
 * "Sidecar listeners"): per chain its transport (TLS or raw_buffer), policy
 * evaluators (HTTP jwt_authn → RBAC → ext_authz, or network RBAC), local rate
 * limit, the inbound cluster, and for HTTP chains the HTTP/1.1 server (from the
 * listeners' server factory) and HTTP/2 side that its connections are handed to.
 */
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  asListener,
  hcmOf,
  HCM_FILTER,
  NETWORK_RBAC_FILTER,
  rec,
  TCP_PROXY_FILTER,
  tcpProxyOf,
} from '../../xds/index.js';
import type { Logger } from '../../logging/index.js';
import {
  createH2Downstream,
  type AnyRequest,
  type AnyResponse,
  type H2Downstream,
  type Http1AnyRequest,
} from '../h2-downstream.js';
import { containRequest, containSocket } from '../listeners/containment.js';
import { hcmRateLimit, routeRateLimit, type RateLimitConfig } from '../local-rate-limit.js';
import {
  compileHcmUpgrades,
  compileRequestHeadPolicy,
  compileRouteUpgrades,
  type RequestHeadPolicy,
} from '../request-head.js';
import type { XdsResource, XdsSnapshot } from '../xds-client/xds-resource.js';
import { destinationOf } from '../capture/destinations.js';
import { createHttpServer, type HandedOffHttpServer } from '../listeners/http-server.js';
import {
  httpPolicyEvaluator,
  tcpPolicyEvaluator,
  type ConnectionFacts,
  type PolicyEvaluator,
} from '../filters/authz/index.js';

/** One compiled filter chain of an inbound listener. */
export interface ChainState {
  readonly name: string;
  readonly tls: boolean;
  readonly requireClientCert: boolean;
  readonly http: HandedOffHttpServer | undefined;
  /** The chain's HTTP/2 side (same handler); the connection's verified peer is its context. */
  readonly h2: H2Downstream<Peer> | undefined;
  readonly evaluator: PolicyEvaluator;
  /** Network RBAC ahead of an HTTP connection manager (NetworkPolicy), checked per connection. */
  readonly connection: PolicyEvaluator | undefined;
  readonly cluster: string;
  /** The HCM's local rate limit filter config and the route's override (HTTP chains). */
  readonly rateLimit: {
    readonly filter: RateLimitConfig | undefined;
    readonly route: RateLimitConfig | undefined;
  };
  /** The HCM's request-head policy (path normalisation, HTTP/1.0, escaped slashes). */
  readonly requestHead: RequestHeadPolicy;
  /** The upgrade types the HCM and its one route allow (`upgrade_configs`). */
  readonly upgrades: {
    readonly hcm: ReadonlySet<string> | undefined;
    readonly route: ReadonlyMap<string, boolean>;
  };
}

/** The connection a request came on: verified peer and addresses. */
export type Peer = ConnectionFacts;

/**
 * The facts of each connection, made at its first request: a connection's peer and addresses do
 * not change (the peer is verified in the handshake; the original destination is recorded
 * before the connection reaches a chain), and every request on it read them again — the
 * address getters, two weak-map lookups and a new object.
 */
const peers = new WeakMap<net.Socket, Peer>();

export function peerOf(socket: net.Socket, principal: string | null): Peer {
  const known = peers.get(socket);
  if (known !== undefined && known.principal === principal) return known;
  // A captured connection's destination is its original one (src/proxy/capture).
  const destination = destinationOf(socket);
  const peer: Peer = {
    principal,
    sourceIp: socket.remoteAddress,
    destinationIp: destination.address,
    destinationPort: destination.port,
  };
  peers.set(socket, peer);
  return peer;
}

/** The inbound cluster's endpoint (its STATIC `load_assignment`, first healthy host). */
export function clusterEndpoint(
  snapshot: XdsSnapshot,
  name: string,
): { host: string; port: number } | undefined {
  return snapshot.typed.clusters.get(name)?.loadAssignment[0];
}

/** What an HTTP chain does with its requests and upgrades (inbound-http.ts). */
export interface ChainHandlers {
  request(
    listener: string,
    chain: () => ChainState | undefined,
    req: AnyRequest,
    res: AnyResponse,
  ): Promise<void> | undefined;
  upgrade(
    listener: string,
    chain: () => ChainState | undefined,
    req: Http1AnyRequest,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> | undefined;
}

/**
 * Compiles a listener's chains; throws on a policy that cannot be compiled (the update is
 * NACKed). `lookup` finds the chain as it is when a request arrives (it may have been rebuilt).
 */
export function buildChains(
  name: string,
  resource: XdsResource,
  logger: Logger,
  handlers: ChainHandlers,
  lookup: (listener: string, chain: string) => ChainState | undefined,
): ChainState[] {
  return (asListener(resource).filter_chains ?? []).map((chain) => {
    const chainName = chain.name ?? '';
    const socket = rec(chain.transport_socket?.typed_config);
    const filters = chain.filters ?? [];
    const hcmFilter = filters.find((f) => f.name === HCM_FILTER);
    const common = {
      name: chainName,
      tls: chain.filter_chain_match?.transport_protocol === 'tls',
      requireClientCert: rec(socket['require_client_certificate'])['value'] === true,
    };
    if (hcmFilter === undefined) {
      return {
        ...common,
        http: undefined,
        h2: undefined,
        evaluator: tcpPolicyEvaluator(filters),
        connection: undefined,
        cluster: tcpProxyOf(filters.find((f) => f.name === TCP_PROXY_FILTER)).cluster ?? '',
        rateLimit: { filter: undefined, route: undefined },
        requestHead: compileRequestHeadPolicy(undefined),
        upgrades: { hcm: undefined, route: new Map() },
      };
    }
    const networkRbac = filters.filter((f) => f.name === NETWORK_RBAC_FILTER);
    const config = hcmOf(hcmFilter);
    // The inbound HCM's inline route configuration: one virtual host, one route to the app.
    const route = config.route_config?.virtual_hosts?.[0]?.routes?.[0];
    const current = (): ChainState | undefined => lookup(name, chainName);
    const h2 = createH2Downstream<Peer>((req, res) => {
      containRequest(req, res, logger, 'inbound request', () =>
        handlers.request(name, current, req, res),
      );
    });
    // The server factory seam: the HTTP/1.1 transport under this chain.
    const server = createHttpServer(
      {
        request(req, res) {
          containRequest(req, res, logger, 'inbound request', () =>
            handlers.request(name, current, req, res),
          );
        },
        upgrade(req, duplex, head) {
          containSocket(duplex, logger, 'inbound upgrade', () =>
            handlers.upgrade(name, current, req, duplex, head),
          );
        },
      },
      { keepAliveTimeout: 30_000 },
    );
    return {
      ...common,
      http: server,
      h2,
      evaluator: httpPolicyEvaluator(config),
      connection: networkRbac.length > 0 ? tcpPolicyEvaluator(networkRbac) : undefined,
      cluster: route?.route?.cluster ?? '',
      rateLimit: { filter: hcmRateLimit(config), route: routeRateLimit(route) },
      requestHead: compileRequestHeadPolicy(config),
      upgrades: {
        hcm: compileHcmUpgrades(config.upgrade_configs),
        route: compileRouteUpgrades(route?.route?.upgrade_configs),
      },
    };
  });
}

/** Idle keep-alive connections close and HTTP/2 sessions get GOAWAY (a drained or replaced chain). */
export function releaseChains(chains: readonly ChainState[]): void {
  for (const c of chains) {
    c.http?.closeIdleConnections();
    c.h2?.close();
  }
}

/** Stops the chains' servers for good (idle connections close; busy ones finish). */
export function closeChains(chains: readonly ChainState[]): void {
  for (const c of chains) {
    c.http?.close();
    c.h2?.close();
  }
}
