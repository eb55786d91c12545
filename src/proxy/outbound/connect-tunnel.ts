/**
 * The outbound listener's CONNECT (authority-form; how gRPC and other HTTP/2
 * clients use an HTTP proxy). After `200 Connection Established` the tunnel's
 * first bytes decide, as Istio's protocol sniffing does: the HTTP/2 preface or
 * an HTTP/1.1 request line is served by the outbound server itself, routed and
 * policed like any request (so mTLS, retries and metrics apply per request);
 * anything else (TLS from the app, other protocols) is an opaque tunnel to the
 * routed host, over mTLS when the cluster says so — a TCP connection like a
 * tcp_proxy's (tcp-relay.ts: the peer exchange with a mesh peer, istio_tcp_*).
 */
import { randomInt } from 'node:crypto';
import type * as net from 'node:net';
import type { Logger } from '../../logging/index.js';
import { isH2Preface, type H2Downstream, type Http1AnyRequest } from '../h2-downstream.js';
import { containSocket } from '../listeners/containment.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { ForwardLayers } from './retry-handler.js';
import { decide } from './route-table.js';
import { connectTargetOf, hcmFor, routeIn } from './router.js';
import { relayTcp, type TcpRelayTelemetry } from './tcp-relay.js';
import { hostFor } from './tunnels.js';

/** What the CONNECT handler shares with the outbound server that created it. */
export interface ConnectContext {
  readonly snapshot: () => XdsSnapshot;
  readonly listenerName: string;
  readonly layers: ForwardLayers;
  readonly logger: Logger | undefined;
  /** The outbound server's HTTP/2 side (requests inside an h2 tunnel), keyed by tunnel port. */
  readonly h2: H2Downstream<number>;
  /** The CONNECT port of each tunnel socket serving HTTP/1.1 (requests default to it). */
  readonly tunnelPorts: WeakMap<object, number>;
  /** The outbound HTTP/1.1 server (a tunnel's HTTP/1.1 requests are its connections). */
  readonly server: { emit(event: 'connection', socket: net.Socket): boolean };
  /** Opaque tunnels are TCP connections: the peer exchange and istio_tcp_* as for tcp_proxy. */
  readonly tcp?: TcpRelayTelemetry;
}

/** The `connect` event handler of the outbound server. */
export function createConnectHandler(
  ctx: ConnectContext,
): (req: Http1AnyRequest, socket: net.Socket, head: Buffer) => void {
  const { listenerName, layers, h2, tunnelPorts, server } = ctx;
  return (req, socket, head) => {
    const target = connectTargetOf(req.url ?? '');
    if (target === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const snapshot = ctx.snapshot();
    const request = { authority: target.authority, path: '/', headers: req.headers };
    const match = routeIn(
      snapshot,
      hcmFor(snapshot, listenerName, target.port, undefined),
      request,
    );
    const decision =
      match === undefined ? undefined : decide(match.entry, request, (total) => randomInt(total));
    const host =
      decision?.kind === 'cluster'
        ? hostFor(layers, snapshot, decision.cluster, target)
        : undefined;
    const routed = host !== undefined && !('failure' in host) ? host : undefined;
    if (match === undefined && routed === undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    const start = (first: Buffer): void => {
      if (match !== undefined && isH2Preface(first)) {
        socket.unshift(first);
        h2.accept(socket, target.port, true);
      } else if (match !== undefined && /^[A-Z]+ \S/.test(first.toString('latin1', 0, 16))) {
        socket.unshift(first);
        tunnelPorts.set(socket, target.port);
        server.emit('connection', socket);
        socket.resume();
      } else if (routed === undefined) socket.destroy();
      else relayTcp(layers.connector, routed, socket, first, ctx.tcp ?? {}, ctx.logger);
    };
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) start(head);
    else
      socket.once('data', (first: Buffer) => {
        socket.pause();
        containSocket(socket, ctx.logger, 'CONNECT tunnel', () => {
          start(first);
        });
      });
  };
}
