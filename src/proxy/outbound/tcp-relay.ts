/**
 * A tcp_proxy's relay to the chosen host: the opaque splice of endpoint.ts,
 * plus — towards a mesh peer over mTLS — the TCP peer-metadata exchange
 * (tcp-peer-exchange.ts: offer ALPN `istio-peer-exchange`; when the server
 * sidecar selects it, write this proxy's preamble, read the server's, and
 * only then relay the app's bytes) and the source reporter's `istio_tcp_*`
 * records (opened; closed with the bytes each way).
 */
import * as tls from 'node:tls';
import type * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import {
  PEER_METADATA_HEADER,
  type IdentityMatcher,
  type PeerInfo,
  type PeerMetadataExchange,
} from '../../telemetry/index.js';
import { swapPreambles, TCP_PEER_EXCHANGE_ALPN } from '../tcp-peer-exchange.js';
import type { ResolvedCluster } from './cluster.js';
import { splice, type EndpointConnector } from './endpoint.js';
import type { Endpoint } from './load-balancer.js';
import type { OutboundTcpRecord } from './outbound-types.js';

/** What the relay reports with and exchanges metadata with (both optional). */
export interface TcpRelayTelemetry {
  readonly exchange?: PeerMetadataExchange | undefined;
  readonly record?: ((record: OutboundTcpRecord) => void) | undefined;
}

/** The host a tcp_proxy chose, as the cluster layer resolved it (tunnels.ts `hostFor`). */
export interface TcpRelayTarget {
  readonly cluster: ResolvedCluster;
  readonly endpoint: Endpoint;
  readonly agent: https.Agent | undefined;
}

/** Relays `socket` to `target`, `first` (bytes already read) ahead of the rest. */
export function relayTcp(
  connector: EndpointConnector,
  target: TcpRelayTarget,
  socket: Duplex,
  first: Buffer,
  telemetry: TcpRelayTelemetry,
  logger: Logger | undefined,
): void {
  const { record, exchange } = telemetry;
  const { cluster } = target;
  const upstreamAddress = `${target.endpoint.host}:${String(target.endpoint.port)}`;
  const base = { cluster: cluster.name, upstream: upstreamAddress, mtls: cluster.mtls };
  if (exchange === undefined || target.agent === undefined || !cluster.mtls) {
    const upstream = splice(socket, connector, target.endpoint, target.agent, first);
    if (record !== undefined) track(upstream, record, base, undefined);
    return;
  }
  // Mesh mTLS: offer the exchange; a server sidecar that does not select it is relayed as is.
  socket.pause();
  const upstream = connector.connect(
    target.endpoint,
    target.agent,
    () => {
      if (!(upstream instanceof tls.TLSSocket)) {
        // Not reached: a TLS agent always yields a TLSSocket. Fail closed if it ever does not.
        upstream.destroy();
        socket.destroy();
        return;
      }
      void handshake(upstream, exchange, cluster.tls?.sans ?? []).then((result) => {
        const { peer, overhead } = result;
        if (peer instanceof Error) {
          logger?.info(
            { cluster: cluster.name, upstream: upstreamAddress, reason: peer.message },
            'TCP peer metadata exchange failed: closing',
          );
          upstream.destroy();
          socket.destroy();
          return;
        }
        if (record !== undefined) track(upstream, record, base, peer, overhead);
        if (first.length > 0) upstream.write(first);
        upstream.pipe(socket);
        socket.pipe(upstream);
        upstream.resume();
        socket.resume();
      });
    },
    [TCP_PEER_EXCHANGE_ALPN, 'http/1.1'],
  );
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
  socket.on('close', () => upstream.destroy());
}

/**
 * The server's verified metadata after both preambles (undefined without the ALPN, or why
 * not), and the preambles' bytes each way (not the app's: left out of the byte metrics).
 */
async function handshake(
  upstream: tls.TLSSocket,
  exchange: PeerMetadataExchange,
  sans: readonly IdentityMatcher[],
): Promise<{ peer: PeerInfo | undefined | Error; overhead: Overhead }> {
  if (upstream.alpnProtocol !== TCP_PEER_EXCHANGE_ALPN)
    return { peer: undefined, overhead: { sent: 0, received: 0 } };
  const swapped = await swapPreambles(upstream, exchange);
  if (swapped instanceof Error) return { peer: swapped, overhead: { sent: 0, received: 0 } };
  return {
    peer: exchange.fromServer({ [PEER_METADATA_HEADER]: swapped.value }, sans),
    overhead: { sent: swapped.read, received: swapped.wrote },
  };
}

/** Bytes of the exchange itself: from the server (`sent` direction) and to it (`received`). */
interface Overhead {
  readonly sent: number;
  readonly received: number;
}

/** Records the connection opened now and closed (with its bytes) when `upstream` closes. */
function track(
  upstream: Duplex,
  record: (record: OutboundTcpRecord) => void,
  base: Omit<OutboundTcpRecord, 'tcp' | 'peer'>,
  peer: PeerInfo | undefined,
  overhead: Overhead = { sent: 0, received: 0 },
): void {
  const withPeer = peer === undefined ? base : { ...base, peer };
  record({ ...withPeer, tcp: { event: 'open' } });
  upstream.once('close', () => {
    const counted = upstream as Duplex & { bytesRead?: number; bytesWritten?: number };
    record({
      ...withPeer,
      tcp: {
        event: 'close',
        sentBytes: Math.max(0, (counted.bytesRead ?? 0) - overhead.sent),
        receivedBytes: Math.max(0, (counted.bytesWritten ?? 0) - overhead.received),
      },
    });
  });
}
