/**
 * The `virtualOutbound` capture listener (0.0.0.0:15001 in a pod whose
 * outbound TCP iptables REDIRECTs here): each connection's original
 * destination (SO_ORIGINAL_DST) picks a filter chain of the `virtualOutbound`
 * resource as Envoy's filter chain matching does — `destination_port` (exact
 * before none), then `prefix_ranges` (longest prefix before none), then
 * `application_protocols` (a match before none) — and the chain's one filter
 * serves it:
 *
 * - an HTTP connection manager: the connection is parsed here and each request
 *   is routed by Host/`:authority` with the chain's RDS routes, exactly as the
 *   explicit outbound listener routes (src/proxy/outbound): retries, mTLS,
 *   metrics, policy all apply per request;
 * - tcp_proxy to a service cluster: an opaque relay over the cluster's mTLS,
 *   to the original destination when it is one of the cluster's endpoints (a
 *   pod IP), else to a load-balanced endpoint (a VIP);
 * - tcp_proxy to PassthroughCluster: a plain connection to the original
 *   destination (ALLOW_ANY); to BlackHoleCluster: closed (REGISTRY_ONLY).
 *
 * Protocol detection (Envoy's http_inspector) only runs when the best chains
 * for the destination differ by `application_protocols`; it waits for the
 * client's first bytes up to `listener_filters_timeout` and then, with
 * `continue_on_listener_filters_timeout`, takes the chain without protocols.
 * The control plane sends 0 s (Istio's default: no timeout, so a slow HTTP
 * client is never taken for TCP); then a client silent for the HTTP head
 * timeout is closed.
 */
import * as net from 'node:net';
import type { Logger } from '../../logging/index.js';
import { containRequest, containSocket } from '../listeners/containment.js';
import { createH2Downstream, isH2Preface, type H2Downstream } from '../h2-downstream.js';
import { createHttpServer, type HandedOffHttpServer } from '../listeners/http-server.js';
import type { HcmConfig } from '../outbound/hcm-config.js';
import type { OutboundProxy } from '../outbound/outbound-proxy.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import { recordDestination } from './destinations.js';
import type { CaptureChain, CaptureListenerConfig } from './capture-config.js';
import { egressDenied } from './egress-filter.js';
import { originalDestination, type OriginalDestination } from './original-dst.js';
import { candidateChains } from './chain-match.js';

export { candidateChains } from './chain-match.js';

export interface VirtualOutboundOptions {
  readonly snapshot: () => XdsSnapshot;
  readonly outbound: OutboundProxy;
  readonly logger: Logger;
  /** Source of the original destination (tests may stub it); default SO_ORIGINAL_DST. */
  readonly originalDestination?: (socket: net.Socket) => OriginalDestination | undefined;
}

export interface VirtualOutbound {
  readonly server: net.Server;
  /** Draining (listener manager): idle keep-alive connections of every HTTP side close now. */
  drainIdle(): void;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** What http_inspector reports: `http/1.1`/`http/1.0` for a request line, `h2c` for the HTTP/2 preface. */
export function detectProtocol(first: Buffer): string | undefined {
  if (isH2Preface(first)) return 'h2c';
  const line = first.toString('latin1', 0, Math.min(first.length, 256));
  const m = /^[A-Z][A-Z-]{1,19} \S+ HTTP\/1\.([01])\r?\n/.exec(line);
  if (m !== null) return m[1] === '0' ? 'http/1.0' : 'http/1.1';
  // A request line still arriving: method and target with no version yet.
  return /^[A-Z][A-Z-]{1,19} \/\S*$/.test(line) ? 'http/1.1' : undefined;
}

/** The most bytes protocol detection reads before it decides (Envoy's http_inspector reads at most 8 KiB). */
const MAX_SNIFF_BYTES = 8 * 1024;

/**
 * True while `first` cannot be told yet: a method still arriving (`G`, `GET`,
 * `GET `) or the start of the HTTP/2 preface. http_inspector then waits for
 * more bytes (until `listener_filters_timeout`) instead of deciding on the
 * first TCP segment: a request line split across segments is still HTTP.
 */
export function undecided(first: Buffer): boolean {
  if (first.length < 3 && 'PRI'.startsWith(first.toString('latin1'))) return true;
  return /^[A-Z][A-Z-]{0,19} ?$/.test(first.toString('latin1', 0, Math.min(first.length, 32)));
}

/** Starts nothing; `listen()` binds the capture port. */
export function createVirtualOutbound(options: VirtualOutboundOptions): VirtualOutbound {
  const { logger, outbound } = options;
  const lookup = options.originalDestination ?? originalDestination;
  /** One HTTP/1.1 server and one HTTP/2 side per compiled HCM of the current virtualOutbound. */
  let sides = new Map<HcmConfig, { http1: HandedOffHttpServer; h2: H2Downstream<null> }>();
  let generation: CaptureListenerConfig | undefined;
  /** A new virtualOutbound drains the HTTP sides of the old one (idle connections close). */
  const retireOld = (listener: CaptureListenerConfig): void => {
    if (generation === listener) return;
    generation = listener;
    for (const side of sides.values()) {
      side.http1.closeIdleConnections();
      side.h2.close();
    }
    sides = new Map();
  };
  const httpSideFor = (hcm: HcmConfig): { http1: HandedOffHttpServer; h2: H2Downstream<null> } => {
    let side = sides.get(hcm);
    if (side === undefined) {
      // The same head bounds as the explicit outbound listener (listeners/http-server.ts):
      // without them a captured connection that sent half a request line was held for Node's
      // 60 s. Never listens: connections are handed to it (src/proxy/listeners).
      const http1 = createHttpServer({
        request(req, res) {
          containRequest(req, res, logger, 'captured request', () => {
            outbound.handle(req, res, hcm);
          });
        },
        upgrade(req, socket, head) {
          containSocket(socket, logger, 'captured upgrade', () => {
            outbound.handleUpgrade(req, socket, head, hcm);
          });
        },
      });
      const h2 = createH2Downstream<null>((req, res) => {
        containRequest(req, res, logger, 'captured request', () => {
          outbound.handle(req, res, hcm);
        });
      });
      side = { http1, h2 };
      sides.set(hcm, side);
    }
    return side;
  };

  const serveChain = (
    socket: net.Socket,
    chain: CaptureChain | undefined,
    destination: OriginalDestination,
    first: Buffer,
  ): void => {
    const action = chain?.action ?? { kind: 'blackhole', cluster: '' };
    switch (action.kind) {
      case 'http': {
        const side = httpSideFor(action.hcm);
        if (first.length > 0) socket.unshift(first);
        if (isH2Preface(first)) side.h2.accept(socket, null, true);
        else {
          side.http1.emit('connection', socket);
          socket.resume();
        }
        return;
      }
      case 'blackhole':
        logger.info(
          {
            destination: `${destination.address}:${String(destination.port)}`,
            cluster: action.cluster,
          },
          'captured connection closed (no route: BlackHoleCluster)',
        );
        socket.destroy();
        return;
      case 'passthrough': {
        // ORIGINAL_DST: connect where the app was connecting (the proxy's own traffic is not
        // captured again: it runs as the excluded user, UID 1337).
        const upstream = net.connect({ host: destination.address, port: destination.port });
        upstream.once('connect', () => {
          if (first.length > 0) upstream.write(first);
          upstream.pipe(socket);
          socket.pipe(upstream);
          socket.resume();
        });
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
        socket.on('close', () => upstream.destroy());
        return;
      }
      case 'tcp':
        outbound.handleTcp(
          socket,
          action.tcp,
          first,
          action.toDestination ? { host: destination.address, port: destination.port } : undefined,
        );
    }
  };

  const onConnection = (socket: net.Socket): void => {
    socket.on('error', () => socket.destroy());
    socket.pause();
    const destination = lookup(socket);
    if (destination === undefined) {
      // Not redirected (someone dialled 15001 itself): nowhere to route it.
      logger.info(
        { peer: socket.remoteAddress },
        'connection to the capture port without an original destination: closed',
      );
      socket.destroy();
      return;
    }
    if (
      destination.port === (socket.localPort ?? -1) &&
      destination.address === socket.localAddress
    ) {
      socket.destroy();
      return;
    }
    recordDestination(socket, destination);
    const listener = options.snapshot().typed.virtualOutbound;
    if (listener === undefined) {
      logger.warn('captured connection before virtualOutbound was received: closed');
      socket.destroy();
      return;
    }
    retireOld(listener);
    const candidates = candidateChains(listener.chains, destination);
    if (candidates.some((c) => c.egress !== null)) {
      // Egress NetworkPolicy (RBAC ahead of the chains): reset before any upstream is dialled.
      void egressDenied(candidates, destination).then(
        (denied) => {
          if (socket.destroyed) return;
          if (denied === undefined) {
            containSocket(socket, logger, 'captured connection', () => {
              route(socket, listener, candidates, destination);
            });
            return;
          }
          logger.info(
            { destination: `${destination.address}:${String(destination.port)}`, reason: denied },
            'captured connection reset: egress NetworkPolicy',
          );
          socket.resetAndDestroy();
        },
        (error: unknown) => {
          // Fail closed: a policy that cannot be evaluated lets nothing through.
          logger.warn(
            { error: String(error) },
            'egress policy evaluation failed: connection reset',
          );
          if (!socket.destroyed) socket.resetAndDestroy();
        },
      );
      return;
    }
    route(socket, listener, candidates, destination);
  };

  /** Serves a captured connection by its candidate chains (sniffing when they differ by protocol). */
  const route = (
    socket: net.Socket,
    listener: CaptureListenerConfig,
    candidates: readonly CaptureChain[],
    destination: OriginalDestination,
  ): void => {
    const sniff = candidates.some((c) => c.protocols.length > 0);
    if (!sniff) {
      serveChain(socket, candidates[0], destination, Buffer.alloc(0));
      return;
    }
    let done = false;
    let sniffed: Buffer = Buffer.alloc(0);
    const decide = (first: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      const protocol = first.length === 0 ? undefined : detectProtocol(first);
      const chain =
        (protocol === undefined
          ? undefined
          : candidates.find((c) => c.protocols.includes(protocol))) ??
        candidates.find((c) => c.protocols.length === 0);
      containSocket(socket, logger, 'captured connection', () => {
        serveChain(socket, chain, destination, first);
      });
    };
    // Read until the bytes tell (or 8 KiB, or the timeout): whatever was read goes to the
    // chosen chain first, so nothing is lost and nothing unparsed is taken for HTTP.
    const onData = (chunk: Buffer): void => {
      sniffed = sniffed.length === 0 ? chunk : Buffer.concat([sniffed, chunk]);
      if (sniffed.length < MAX_SNIFF_BYTES && undecided(sniffed)) return;
      decide(sniffed);
    };
    const bound = listener.detection;
    const timer = setTimeout(() => {
      if (bound.close) {
        done = true;
        socket.destroy();
        return;
      }
      decide(sniffed);
    }, bound.ms);
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(timer);
    });
    socket.resume();
  };

  const server = net.createServer((socket) => {
    containSocket(socket, logger, 'captured connection', () => {
      onConnection(socket);
    });
  });
  return {
    server,
    drainIdle() {
      for (const side of sides.values()) side.http1.closeIdleConnections();
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    },
    close() {
      for (const side of sides.values()) {
        side.http1.closeAllConnections();
        side.http1.close();
        side.h2.close();
      }
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
