/**
 * The listeners of a sidecar whose pod's traffic iptables REDIRECTs to it
 * (node metadata INTERCEPTION_MODE=REDIRECT; Istio's `istio-iptables`):
 *
 * - `virtualOutbound` at 0.0.0.0:15001, `use_original_dst`: every outbound TCP
 *   connection of the pod, matched by its original destination as Istio's
 *   sidecar listeners match it. HTTP service ports: one chain per port that
 *   matches any address (Istio's `0.0.0.0_<port>` listener) and routes by
 *   Host/`:authority` with the port's route configuration (RDS `"<port>"`, the
 *   same routes as the explicit `outbound` listener); per service VIP on that
 *   port the same HTTP chain plus a tcp_proxy chain to that service for what is
 *   not HTTP; the HTTP chains carry `application_protocols` (found by
 *   `envoy.filters.listener.http_inspector`); non-HTTP bytes to any other
 *   address of the port go to the original destination
 *   (`PassthroughFilterChain|<port>`), never to a service that merely shares
 *   the port. TCP service ports: a chain per port matching the service's VIPs
 *   (Istio's `<vip>_<port>` listener), tcp_proxy to the service cluster. Pod
 *   IPs of mesh endpoints: a chain per endpoint address and port, tcp_proxy to
 *   the service cluster (the proxy connects to that very endpoint, over the
 *   cluster's mTLS), so an app dialling a pod IP is still mTLS'd. The rest:
 *   `PassthroughFilterChain` (tcp_proxy to PassthroughCluster, ALLOW_ANY) or
 *   to BlackHoleCluster (REGISTRY_ONLY).
 * - `virtualInbound` at 0.0.0.0:15006, `use_original_dst`: hands each
 *   connection to the `inbound|<port>` listener of its original destination
 *   port (those are sent with `bind_to_port: false`, Envoy's field for a
 *   listener that only receives handed-off connections), so mTLS,
 *   PeerAuthentication, AuthorizationPolicy and NetworkPolicy apply as in
 *   loopback mode; a port with no listener falls to the one chain here, a
 *   tcp_proxy to BlackHoleCluster (closed): only declared ports are served.
 *
 * Protocol detection has no timeout (`listener_filters_timeout` 0 s, Istio's
 * `protocolDetectionTimeout` current default): a slow HTTP client is never
 * taken for TCP (with the former 100 ms bound, a loaded pod's HTTP call could
 * miss it and be relayed as bytes). A server-first protocol must be on a port
 * declared TCP, as Istio documents; TCP ports never wait (no chain of theirs
 * needs detection).
 */
import {
  EXTENSION_TYPE_URLS,
  TYPE_URLS,
  type CidrRange,
  type Filter,
  type FilterChain,
  type FilterChainMatch,
  type Listener,
} from '../../xds/index.js';
import type { PathNormalization } from '../../policy/index.js';
import { isHttp, type Registry, type ServiceView } from '../registry/service-registry.js';
import { outboundHcm } from './listeners.js';
import type { ProxyNode } from './proxy-node.js';

/** Istio's ports: outbound capture (15001) and inbound capture (15006). */
export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;
/** What http_inspector reports for HTTP/1.x and prior-knowledge HTTP/2 (Envoy's names). */
const HTTP_PROTOCOLS = ['http/1.0', 'http/1.1', 'h2c'];

function tcpProxy(statPrefix: string, cluster: string): Filter {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': EXTENSION_TYPE_URLS.tcpProxy, stat_prefix: statPrefix, cluster },
  };
}

function cidr(address: string): CidrRange {
  return {
    address_prefix: address,
    prefix_len: { value: address.includes(':') ? 128 : 32 },
  };
}

function clusterName(port: number, service: ServiceView): string {
  return `outbound|${String(port)}||${service.hostname}`;
}

/** The `virtualOutbound` listener for a REDIRECT-mode sidecar. */
export function buildVirtualOutbound(
  registry: Registry,
  services: readonly ServiceView[],
  routeFilters: ReadonlyMap<number, readonly Filter[]>,
  policy: 'ALLOW_ANY' | 'REGISTRY_ONLY',
  normalization?: PathNormalization,
): Listener {
  const chains: FilterChain[] = [];
  const httpPorts = new Set<number>();
  const endpointChains = new Map<string, FilterChain>();
  for (const service of services)
    for (const port of service.ports) {
      const name = clusterName(port.port, service);
      if (isHttp(port.protocol)) httpPorts.add(port.port);
      const vips = service.addresses ?? [];
      if (vips.length > 0) {
        const destination: FilterChainMatch = {
          destination_port: { value: port.port },
          prefix_ranges: vips.map(cidr),
        };
        // An HTTP port's VIPs: HTTP routed by Host as on any address of the port.
        if (isHttp(port.protocol))
          chains.push({
            name: `${name}|vip|http`,
            filter_chain_match: { ...destination, application_protocols: HTTP_PROTOCOLS },
            filters: [
              outboundHcm(String(port.port), routeFilters.get(port.port) ?? [], normalization),
            ],
          });
        // Bytes to the VIPs (all of a TCP port's, what is not HTTP on an HTTP port) go to this
        // service, never to another one sharing the port.
        chains.push({
          name: `${name}|vip`,
          filter_chain_match: destination,
          filters: [tcpProxy(name, name)],
        });
      }
      // Pod IPs: a connection straight to an endpoint still goes through mTLS to that pod.
      if (service.external) continue;
      for (const endpoint of registry.endpoints(service, port)) {
        const key = `${endpoint.instance.address}|${String(endpoint.port)}`;
        if (endpointChains.has(key)) continue;
        endpointChains.set(key, {
          name: `${name}|endpoint|${endpoint.instance.address}:${String(endpoint.port)}`,
          filter_chain_match: {
            destination_port: { value: endpoint.port },
            prefix_ranges: [cidr(endpoint.instance.address)],
          },
          filters: [tcpProxy(name, name)],
        });
      }
    }
  chains.push(...endpointChains.values());
  const fallback = policy === 'REGISTRY_ONLY' ? 'BlackHoleCluster' : 'PassthroughCluster';
  for (const port of [...httpPorts].sort((a, b) => a - b))
    chains.push(
      {
        name: `outbound|${String(port)}|http`,
        filter_chain_match: {
          destination_port: { value: port },
          application_protocols: HTTP_PROTOCOLS,
        },
        filters: [outboundHcm(String(port), routeFilters.get(port) ?? [], normalization)],
      },
      // Not HTTP, to an address of no service: the original destination (Istio's
      // PassthroughFilterChain), never some service that happens to share the port.
      {
        name: `PassthroughFilterChain|${String(port)}`,
        filter_chain_match: { destination_port: { value: port } },
        filters: [tcpProxy(fallback, fallback)],
      },
    );
  // Envoy matches the destination port first and does not fall back to port-less chains: a
  // port with only address-specific chains (a TCP VIP, a pod IP) needs its own fallback for
  // the other addresses (Istio's per-VIP listeners leave those to virtualOutbound).
  const specific = new Set<number>();
  for (const chain of chains) {
    const match = chain.filter_chain_match ?? {};
    if (match.prefix_ranges !== undefined) specific.add(Number(match.destination_port?.value));
  }
  for (const port of [...specific].filter((p) => !httpPorts.has(p)).sort((a, b) => a - b))
    chains.push({
      name: `PassthroughFilterChain|${String(port)}`,
      filter_chain_match: { destination_port: { value: port } },
      filters: [tcpProxy(fallback, fallback)],
    });
  chains.push({ name: 'PassthroughFilterChain', filters: [tcpProxy(fallback, fallback)] });
  return {
    '@type': TYPE_URLS.listener,
    name: 'virtualOutbound',
    address: { socket_address: { address: '0.0.0.0', port_value: VIRTUAL_OUTBOUND_PORT } },
    use_original_dst: { value: true },
    traffic_direction: 'OUTBOUND',
    listener_filters: [
      {
        name: 'envoy.filters.listener.original_dst',
        typed_config: { '@type': EXTENSION_TYPE_URLS.originalDst },
      },
      {
        name: 'envoy.filters.listener.http_inspector',
        typed_config: { '@type': EXTENSION_TYPE_URLS.httpInspector },
      },
    ],
    // 0 s: no detection timeout, Istio's `protocolDetectionTimeout` default (a slow HTTP client
    // is never taken for TCP); the proxy still closes a silent client after its head timeout.
    listener_filters_timeout: { seconds: '0' },
    continue_on_listener_filters_timeout: true,
    filter_chains: chains,
  };
}

/** The `virtualInbound` listener for a REDIRECT-mode sidecar. */
export function buildVirtualInbound(): Listener {
  return {
    '@type': TYPE_URLS.listener,
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: VIRTUAL_INBOUND_PORT } },
    use_original_dst: { value: true },
    traffic_direction: 'INBOUND',
    listener_filters: [
      {
        name: 'envoy.filters.listener.original_dst',
        typed_config: { '@type': EXTENSION_TYPE_URLS.originalDst },
      },
    ],
    filter_chains: [
      {
        name: 'virtualInbound|undeclared-port',
        filters: [tcpProxy('BlackHoleCluster', 'BlackHoleCluster')],
      },
    ],
  };
}

/** A REDIRECT-mode inbound listener: bound by nobody, reached through virtualInbound. */
export function handOffInbound(listener: Listener, port: number): Listener {
  return {
    ...listener,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    bind_to_port: { value: false },
  };
}

/** True when iptables captures this sidecar's pod. */
export function capturing(proxy: ProxyNode): boolean {
  return proxy.type === 'sidecar' && proxy.interception === 'REDIRECT';
}
