/**
 * The endpoint layer: connections to one upstream host. Keep-alive pools
 * per host (and per TLS agent, i.e. per cluster and secret generation) for
 * requests: the raw-socket HTTP/1.1 client (src/proxy/http1, issue 22: it
 * replaced undici's Pool, which had replaced node:http(s)'s Agent, each
 * measured faster in bench/proxy-chain); HTTP/2 upstreams get one
 * multiplexed session per origin (h2-upstream.ts). Raw
 * connections (plain or mTLS) for tunnels and upgrades. TLS connections use
 * the cluster agent's options: SVID, trust bundle, secure-naming check.
 *
 * Mesh peers on loopback see this instance's own address as the source
 * (`localAddress`), so NetworkPolicy and logs can tell pods apart.
 */
import type * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { createH2Origin, type UpstreamDispatcher } from '../h2-upstream.js';
import { createHttp1Origin } from '../http1/dispatcher.js';
import { TupleMap } from '../tuple-map.js';
import type { Endpoint } from './load-balancer.js';

export interface EndpointConnector {
  /** The request dispatcher for `endpoint` (a pool, or an HTTP/2 session when `h2`). */
  dispatcher(
    clusterName: string,
    endpoint: Endpoint,
    tlsAgent: https.Agent | undefined,
    authority: string,
    h2: boolean,
  ): UpstreamDispatcher;
  /**
   * A raw connection to `endpoint` (mTLS with the agent's options when given, offering `alpn`
   * instead of the agent's protocols when set); `ready` fires once usable.
   */
  connect(
    endpoint: Endpoint,
    tlsAgent: https.Agent | undefined,
    ready: () => void,
    alpn?: readonly string[],
  ): Duplex;
  /** The source address for connections to `endpoint` (the instance IP for loopback hosts). */
  localAddressFor(endpoint: Endpoint): string | undefined;
  close(): void;
}

export function createEndpointConnector(localAddress: string | undefined): EndpointConnector {
  // Pools by endpoint host, port, SNI ('' for none) and HTTP/2 (the source address follows
  // from the host); mTLS pools per cluster and TLS agent.
  const plainPools = new TupleMap<UpstreamDispatcher>(4);
  const tlsPools = new Map<string, { agent: https.Agent; pools: TupleMap<UpstreamDispatcher> }>();
  // The SNI a request's authority gives (a host name, never an IP): the same authority
  // request after request, so the last one is kept.
  let lastAuthority: string | undefined;
  let lastSni: string | undefined;
  const sniOf = (authority: string): string | undefined => {
    if (authority !== lastAuthority) {
      const host = authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      lastSni = net.isIP(host) ? undefined : host;
      lastAuthority = authority;
    }
    return lastSni;
  };
  const localAddressFor = (endpoint: Endpoint): string | undefined =>
    localAddress !== undefined && endpoint.host.startsWith('127.') ? localAddress : undefined;

  return {
    localAddressFor,
    dispatcher(clusterName, endpoint, tlsAgent, authority, h2) {
      const agentOptions =
        tlsAgent === undefined ? undefined : (tlsAgent.options as Record<string, unknown>);
      // As node:https does: SNI from the Host header when the cluster names none (never an IP).
      const servername =
        agentOptions === undefined || agentOptions['servername'] !== undefined
          ? undefined
          : sniOf(authority);
      const key = [endpoint.host, endpoint.port, servername ?? '', h2];
      let pools = plainPools;
      if (tlsAgent !== undefined) {
        let entry = tlsPools.get(clusterName);
        if (entry?.agent !== tlsAgent) {
          // A new agent (rotated SVID or bundle): the old pools finish their requests, then close.
          for (const old of entry?.pools.values() ?? []) void old.close();
          entry = { agent: tlsAgent, pools: new TupleMap(4) };
          tlsPools.set(clusterName, entry);
        }
        pools = entry.pools;
      }
      let pool = pools.get(key);
      if (pool !== undefined) return pool;
      const local = localAddressFor(endpoint);
      const origin = {
        host: endpoint.host,
        port: endpoint.port,
        tls:
          agentOptions === undefined
            ? undefined
            : { ...agentOptions, ...(servername === undefined ? {} : { servername }) },
        localAddress: local,
      };
      // HTTP/2 upstream: one multiplexed session (h2c, or ALPN h2 with the cluster's TLS
      // options); HTTP/1.1: a keep-alive pool of up to 256 connections.
      pool = h2 ? createH2Origin(origin) : createHttp1Origin(origin);
      pools.set(key, pool);
      return pool;
    },
    connect(endpoint, tlsAgent, ready, alpn) {
      const at = { host: endpoint.host, port: endpoint.port };
      const local = localAddressFor(endpoint);
      const source = local === undefined ? {} : { localAddress: local };
      const protocols = alpn === undefined ? {} : { ALPNProtocols: [...alpn] };
      const socket =
        tlsAgent === undefined
          ? net.connect({ ...at, ...source })
          : tls.connect({
              ...(tlsAgent.options as tls.ConnectionOptions),
              ...at,
              ...source,
              ...protocols,
            });
      socket.once(tlsAgent === undefined ? 'connect' : 'secureConnect', ready);
      return socket;
    },
    close() {
      for (const pool of plainPools.values()) void pool.destroy();
      for (const entry of tlsPools.values())
        for (const pool of entry.pools.values()) void pool.destroy();
      plainPools.clear();
      tlsPools.clear();
    },
  };
}

/**
 * Splices `socket` to `upstream` once it is ready, writing `first` (bytes
 * already read from the client) ahead of the rest; either side closing or
 * failing closes both. Returns the upstream connection.
 */
export function splice(
  socket: Duplex,
  connector: EndpointConnector,
  endpoint: Endpoint,
  tlsAgent: https.Agent | undefined,
  first: Buffer,
): Duplex {
  const upstream = connector.connect(endpoint, tlsAgent, () => {
    if (first.length > 0) upstream.write(first);
    upstream.pipe(socket);
    socket.pipe(upstream);
    socket.resume();
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
  socket.on('close', () => upstream.destroy());
  return upstream;
}
