/**
 * mTLS termination of inbound TLS chains: one tls.Server per listener chain
 * (node's server computes `authorized` against the trust bundle, SDS
 * `ROOTCA`) with the workload's SVID (SDS `default`); its context is swapped
 * when the secret store changes, so the next handshake uses a rotated
 * certificate without touching live connections. The peer's SPIFFE ID
 * becomes the connection's principal.
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { peerSpiffeIds, SERVER_TLS_DEFAULTS } from '../../identity/workload.js';
import { containSocket } from '../listeners/containment.js';
import { TCP_PEER_EXCHANGE_ALPN } from '../tcp-peer-exchange.js';
import type { ChainState } from './inbound-chains.js';
import type { InboundContext } from './inbound-context.js';

/** The TLS servers of the inbound side, by listener and chain. */
export type TlsServerFor = (
  listener: string,
  chain: ChainState,
  deliver: (s: net.Socket) => void,
) => tls.Server | undefined;

export function createInboundTls(context: InboundContext): TlsServerFor {
  const { secrets, logger } = context;
  const servers = new Map<string, { server: tls.Server; generation: number }>();
  return (listener, chain, deliver) => {
    const own = secrets.get('default')?.tlsCertificate;
    const roots = secrets.get('ROOTCA')?.validationContext;
    if (own === undefined || roots === undefined) return undefined;
    const key = `${listener}|${chain.name}|${String(chain.requireClientCert)}`;
    const material = {
      cert: own.certChainPem,
      key: own.privateKeyPem,
      ca: roots.trustedCaPem,
      // Mesh mTLS: TLS 1.2+, AEAD suites only (Envoy's defaults).
      ...SERVER_TLS_DEFAULTS,
    };
    let entry = servers.get(key);
    if (entry === undefined) {
      const server = tls.createServer({
        ...material,
        requestCert: true,
        rejectUnauthorized: chain.requireClientCert,
        // A TCP chain selects istio-peer-exchange when a client sidecar offers it
        // (tcp-peer-exchange.ts); an HTTP chain never does: a sidecar relaying bytes to an HTTP
        // port (a pod IP dialled directly) must not put a preamble in front of the request.
        ALPNProtocols:
          chain.http === undefined
            ? [TCP_PEER_EXCHANGE_ALPN, 'h2', 'http/1.1']
            : ['h2', 'http/1.1'],
        handshakeTimeout: 10_000,
      });
      server.on('secureConnection', (secure: tls.TLSSocket) => {
        containSocket(secure, logger, 'inbound TLS connection', () => {
          const ids = peerSpiffeIds(secure.getPeerCertificate());
          context.principals.set(secure, secure.authorized ? (ids[0] ?? null) : null);
          deliver(secure);
        });
      });
      server.on('tlsClientError', (error) => {
        logger.info({ listener, err: error.message }, 'TLS handshake failed');
      });
      entry = { server, generation: secrets.generation };
      servers.set(key, entry);
    } else if (entry.generation !== secrets.generation) {
      entry.server.setSecureContext(material);
      entry.generation = secrets.generation;
    }
    return entry.server;
  };
}
