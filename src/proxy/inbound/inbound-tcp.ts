/**
 * The TCP handler of inbound chains without an HTTP connection manager:
 * network RBAC on the connection (principal, addresses, port), then bytes
 * piped to the local app (`inbound|<port>||`); a denial closes the connection.
 */
import * as net from 'node:net';
import { destinationOf } from '../capture/destinations.js';
import { clusterEndpoint, type ChainState } from './inbound-chains.js';
import type { InboundContext } from './inbound-context.js';

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
  void state.evaluator
    .decide({
      principal,
      destinationPort: destinationOf(socket).port,
      protocol: 'tcp',
      ...(socket.remoteAddress === undefined ? {} : { sourceIp: socket.remoteAddress }),
      ...(socket.localAddress === undefined ? {} : { destinationIp: socket.localAddress }),
    })
    .then((decision) => {
      const snapshot = context.snapshot();
      const target = snapshot === undefined ? undefined : clusterEndpoint(snapshot, state.cluster);
      if (decision.status !== 200 || target === undefined) {
        context.record({
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
        context.record({
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
}
