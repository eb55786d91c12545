/**
 * An accepted inbound connection, up to the chain that serves it: the first
 * byte picks the filter chain, as Envoy's tls_inspector does — a TLS
 * ClientHello (0x16) takes the `tls` chain, anything else the `raw_buffer`
 * chain; no matching chain closes the connection, so a plaintext client on a
 * STRICT port is refused. TLS chains terminate mTLS first (inbound-tls.ts).
 * Then network policy (NetworkPolicy) ahead of HTTP, HTTP/2 by ALPN or the
 * h2c preface (RFC 9113 §3), HTTP/1.1 otherwise, or the TCP handler.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { isH2Preface } from '../h2-downstream.js';
import { containSocket } from '../listeners/containment.js';
import { handOff } from '../capture/virtual-inbound.js';
import { destinationOf } from '../capture/destinations.js';
import { peerOf, type ChainState } from './inbound-chains.js';
import { chainOf, type InboundContext } from './inbound-context.js';
import type { TlsServerFor } from './inbound-tls.js';
import { handleInboundTcp } from './inbound-tcp.js';

/** The connection handler of every inbound socket (`received`: the listener that accepted it). */
export function createInboundConnections(
  context: InboundContext,
  tlsServerFor: TlsServerFor,
): (received: string, socket: net.Socket) => void {
  const { logger, principals } = context;

  /** Network-level policy (NetworkPolicy) decides the connection before any HTTP. */
  const gate = (name: string, chain: ChainState, s: net.Socket, then: () => void): void => {
    const evaluator = chain.connection;
    if (evaluator === undefined) {
      then();
      return;
    }
    void evaluator
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
          context.record({
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
        then();
      })
      .catch((error: unknown) => {
        logger.error({ err: error, listener: name }, 'network policy failed: closing');
        s.destroy();
      });
  };

  const firstBytes = (name: string, socket: net.Socket, first: Buffer): void => {
    socket.pause();
    socket.unshift(first);
    socket.setTimeout(0);
    const isTls = first[0] === 0x16;
    const chain = context.lookup(name)?.chains.find((c) => (isTls ? c.tls : !c.tls));
    if (chain === undefined) {
      logger.info(
        { listener: name, tls: isTls, peer: socket.remoteAddress },
        isTls ? 'TLS not accepted on this port' : 'plaintext refused: mTLS required (STRICT)',
      );
      context.record({
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
    /** Hands a (decrypted) connection to the chain as it is now (it may have been rebuilt). */
    const deliver = (s: net.Socket): void => {
      const current = chainOf(context, name, chain.name) ?? chain;
      const http1 = current.http;
      if (http1 === undefined) {
        // Stays paused while the policy decides: the sniffed first bytes (unshifted) and
        // anything after them wait in the socket's buffer until the TCP handler pipes it.
        // (Resuming here dropped them: a flowing stream with no 'data' listener discards
        // its chunks.)
        handleInboundTcp(context, name, current, s);
        return;
      }
      gate(name, current, s, () => {
        /** HTTP/2 by ALPN after TLS, by the connection preface in plaintext (RFC 9113 §3). */
        const tlsSocket = s instanceof tls.TLSSocket;
        const h2 = tlsSocket ? s.alpnProtocol === 'h2' : isH2Preface(first);
        // In plaintext the preface was read to sniff it: the session must read through JS.
        if (h2 && current.h2 !== undefined)
          current.h2.accept(s, peerOf(s, principals.get(s) ?? null), !tlsSocket);
        else {
          http1.emit('connection', s);
          // The first bytes were peeked with pause/unshift: let the HTTP parser read them.
          s.resume();
        }
      });
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

  return (received, socket) => {
    // virtualInbound hands a captured connection to the listener of its original port.
    const name = handOff(received, socket, (n) => context.lookup(n) !== undefined);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(15_000, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      containSocket(socket, logger, 'inbound first bytes', () => {
        firstBytes(name, socket, first);
      });
    });
    socket.resume();
  };
}
