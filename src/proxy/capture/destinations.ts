/**
 * Where a connection was going, for policy: a captured connection's original
 * destination (recorded by the capture listeners), else the socket's own
 * local address. AuthorizationPolicy `ports`/`destination.port` and
 * NetworkPolicy ports then see 9080, not the capture port 15006.
 */
import type { Duplex } from 'node:stream';
import type { OriginalDestination } from './original-dst.js';

const recorded = new WeakMap<object, OriginalDestination>();

/** Remembers a captured connection's original destination. */
export function recordDestination(socket: Duplex, destination: OriginalDestination): void {
  recorded.set(socket, destination);
}

/** The destination address and port of a connection (a TLS socket's is its transport's). */
export function destinationOf(socket: Duplex): { address: string | undefined; port: number } {
  const own = socket as Duplex & { localAddress?: string; localPort?: number; _parent?: Duplex };
  const hit =
    recorded.get(socket) ?? (own._parent === undefined ? undefined : recorded.get(own._parent));
  if (hit !== undefined) return { address: hit.address, port: hit.port };
  return { address: own.localAddress, port: own.localPort ?? 0 };
}
