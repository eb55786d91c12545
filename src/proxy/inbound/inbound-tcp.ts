/**
 * The TCP handler of inbound chains without an HTTP connection manager:
 * the peer-metadata preamble when the client sidecar negotiated it
 * (tcp-peer-exchange.ts), network RBAC on the connection (principal,
 * addresses, port), then bytes piped to the local app (`inbound|<port>||`);
 * a denial closes the connection. Opened and closed connections and the bytes
 * each way are recorded for Istio's `istio_tcp_*` metrics.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { PeerInfo } from '../../telemetry/index.js';
import { PEER_METADATA_HEADER } from '../../telemetry/index.js';
import { destinationOf } from '../capture/destinations.js';
import { swapPreambles, TCP_PEER_EXCHANGE_ALPN } from '../tcp-peer-exchange.js';
import { clusterEndpoint, type ChainState } from './inbound-chains.js';
import type { InboundContext } from './inbound-context.js';

/**
 * The client's verified metadata when it negotiated the exchange (its preamble read, ours
 * written); undefined when it did not; an Error when it negotiated and then broke the protocol.
 */
async function exchangeMetadata(
  context: InboundContext,
  socket: net.Socket,
  principal: string | null,
): Promise<PeerInfo | undefined | Error> {
  if (!(socket instanceof tls.TLSSocket) || socket.alpnProtocol !== TCP_PEER_EXCHANGE_ALPN)
    return undefined;
  const exchange = context.telemetry?.exchange;
  const swapped = await swapPreambles(socket, exchange);
  if (swapped instanceof Error) return swapped;
  return exchange?.fromClient({ [PEER_METADATA_HEADER]: swapped.value }, principal);
}

/** Decides and relays one TCP connection on `state` (a paused socket: nothing is lost while deciding). */
export function handleInboundTcp(
  context: InboundContext,
  listener: string,
  state: ChainState,
  socket: net.Socket,
): void {
  const { logger } = context;
  const started = performance.now();
  const principal = context.principals.get(socket) ?? null;
  const mtls = principal !== null;
  void exchangeMetadata(context, socket, principal)
    .then(async (peer) => {
      if (peer instanceof Error) {
        logger.info(
          { listener, peer: socket.remoteAddress, reason: peer.message },
          'TCP peer metadata exchange failed: closing',
        );
        socket.destroy();
        return;
      }
      const decision = await state.evaluator.decide({
        principal,
        destinationPort: destinationOf(socket).port,
        protocol: 'tcp',
        ...(socket.remoteAddress === undefined ? {} : { sourceIp: socket.remoteAddress }),
        ...(socket.localAddress === undefined ? {} : { destinationIp: socket.localAddress }),
      });
      const snapshot = context.snapshot();
      const target = snapshot === undefined ? undefined : clusterEndpoint(snapshot, state.cluster);
      const base = {
        listener,
        principal,
        reason: decision.reason,
        policy: decision.policy,
        mtls,
        ...(peer === undefined ? {} : { peer }),
      };
      if (decision.status !== 200 || target === undefined) {
        context.record({ ...base, status: 403, durationMs: performance.now() - started });
        socket.destroy();
        return;
      }
      context.record({ ...base, status: 200, durationMs: 0, tcp: { event: 'open' } });
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
        context.record({
          ...base,
          status: 200,
          durationMs: performance.now() - started,
          // Istio's direction names: sent = towards the downstream client, received = from it.
          tcp: {
            event: 'close',
            sentBytes: upstream.bytesRead,
            receivedBytes: upstream.bytesWritten,
          },
        });
      });
    })
    .catch((error: unknown) => {
      logger.error({ err: error, listener }, 'inbound TCP policy evaluation failed: closing');
      socket.destroy();
    });
}
