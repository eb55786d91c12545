/**
 * The `virtualInbound` capture listener (0.0.0.0:15006, where iptables
 * REDIRECTs a pod's inbound TCP). It is bound and served by the inbound side
 * (src/proxy/inbound) like any inbound listener; what capture adds is Envoy's
 * `use_original_dst` hand-off: a connection whose original destination port
 * has an `inbound|<port>` listener is served by that listener's chains (mTLS,
 * PeerAuthentication, AuthorizationPolicy, NetworkPolicy, then the app), the
 * others by virtualInbound's own chain, which closes them. Those
 * `inbound|<port>` listeners come with `bind_to_port: false`: in a pod the app
 * owns <port>, the sidecar only receives what capture hands over.
 */
import type * as net from 'node:net';
import { asListener } from '../../xds/index.js';
import { recordDestination } from './destinations.js';
import { originalDestination } from './original-dst.js';

/** False for a listener sent with `bind_to_port: false` (Envoy's default is true). */
export function bindsToPort(listener: Record<string, unknown>): boolean {
  return asListener(listener).bind_to_port?.value !== false;
}

/**
 * The listener that serves a connection `received` on: for virtualInbound, the
 * `inbound|<original port>` listener when `exists`, else virtualInbound itself.
 */
export function handOff(
  received: string,
  socket: net.Socket,
  exists: (name: string) => boolean,
): string {
  if (received !== 'virtualInbound') return received;
  const destination = originalDestination(socket);
  if (destination === undefined) return received;
  recordDestination(socket, destination);
  const target = `inbound|${String(destination.port)}`;
  return exists(target) ? target : received;
}
