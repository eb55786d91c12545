/**
 * The listeners of a sidecar whose pod's traffic iptables REDIRECTs to it
 * (node metadata INTERCEPTION_MODE=REDIRECT; Istio's `istio-iptables`):
 *
 * - `virtualOutbound` at 0.0.0.0:15001, `use_original_dst`: every outbound TCP
 *   connection of the pod, matched by its original destination as Istio's
 *   sidecar listeners match it. HTTP service ports: one chain per port that
 *   matches any address (Istio's `0.0.0.0_<port>` listener) and routes by
 *   Host/`:authority` with the port's route configuration (RDS `"<port>"`, the
 *   same routes as the explicit `outbound` listener); it carries
 *   `application_protocols` (found by `envoy.filters.listener.http_inspector`),
 *   and a tcp_proxy chain beside it takes what is not HTTP. TCP service ports:
 *   a chain per port matching the service's VIPs (Istio's `<vip>_<port>`
 *   listener), tcp_proxy to the service cluster. Pod IPs of mesh endpoints: a
 *   chain per endpoint address and port, tcp_proxy to the service cluster (the
 *   proxy connects to that very endpoint, over the cluster's mTLS), so an app
 *   dialling a pod IP is still mTLS'd. The rest: `PassthroughFilterChain`
 *   (tcp_proxy to PassthroughCluster, ALLOW_ANY) or to BlackHoleCluster
 *   (REGISTRY_ONLY).
 * - `virtualInbound` at 0.0.0.0:15006, `use_original_dst`: hands each
 *   connection to the `inbound|<port>` listener of its original destination
 *   port (those are sent with `bind_to_port: false`, Envoy's field for a
 *   listener that only receives handed-off connections), so mTLS,
 *   PeerAuthentication, AuthorizationPolicy and NetworkPolicy apply as in
 *   loopback mode; a port with no listener falls to the one chain here, a
 *   tcp_proxy to BlackHoleCluster (closed): only declared ports are served.
 *
 * Protocol detection is bounded by `listener_filters_timeout` (100 ms, Istio's
 * former `protocolDetectionTimeout` default) with
 * `continue_on_listener_filters_timeout`: a server-first protocol on an HTTP
 * port waits at most that long before its bytes are relayed as TCP; TCP ports
 * never wait (no chain of theirs needs detection).
 */
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../xds/index.js';
import type { PathNormalization } from '../../policy/index.js';
import { isHttp, type Registry, type ServiceView } from '../registry/service-registry.js';
import { outboundHcm } from './listeners.js';
import type { ProxyNode } from './proxy-node.js';

/** Istio's ports: outbound capture (15001) and inbound capture (15006). */
export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;
/** Longest wait for a client's first bytes when a port's chains differ by protocol. */
export const PROTOCOL_DETECTION_TIMEOUT_MS = 100;

/** What http_inspector reports for HTTP/1.x and prior-knowledge HTTP/2 (Envoy's names). */
const HTTP_PROTOCOLS = ['http/1.0', 'http/1.1', 'h2c'];

type R = Record<string, unknown>;

function tcpProxy(statPrefix: string, cluster: string): object {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': EXTENSION_TYPE_URLS.tcpProxy, stat_prefix: statPrefix, cluster },
  };
}

function cidr(address: string): object {
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
  routeFilters: ReadonlyMap<number, readonly object[]>,
  policy: 'ALLOW_ANY' | 'REGISTRY_ONLY',
  normalization?: PathNormalization,
): Record<string, unknown> {
  const chains: object[] = [];
  const httpPorts = new Set<number>();
  /** Port → first service that claims it (HTTP ports' TCP fallback goes there). */
  const httpFallback = new Map<number, ServiceView>();
  const endpointChains = new Map<string, object>();
  for (const service of services)
    for (const port of service.ports) {
      const name = clusterName(port.port, service);
      if (isHttp(port.protocol)) {
        httpPorts.add(port.port);
        if (!httpFallback.has(port.port)) httpFallback.set(port.port, service);
      } else if ((service.addresses ?? []).length > 0)
        chains.push({
          name: `${name}|vip`,
          filter_chain_match: {
            destination_port: { value: port.port },
            prefix_ranges: (service.addresses ?? []).map(cidr),
          },
          filters: [tcpProxy(name, name)],
        });
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
  for (const port of [...httpPorts].sort((a, b) => a - b)) {
    chains.push({
      name: `outbound|${String(port)}|http`,
      filter_chain_match: {
        destination_port: { value: port },
        application_protocols: HTTP_PROTOCOLS,
      },
      filters: [outboundHcm(String(port), routeFilters.get(port) ?? [], normalization)],
    });
    const service = httpFallback.get(port);
    if (service !== undefined)
      chains.push({
        name: `outbound|${String(port)}|tcp`,
        filter_chain_match: { destination_port: { value: port } },
        filters: [tcpProxy(clusterName(port, service), clusterName(port, service))],
      });
  }
  const fallback = policy === 'REGISTRY_ONLY' ? 'BlackHoleCluster' : 'PassthroughCluster';
  // Envoy matches the destination port first and does not fall back to port-less chains: a
  // port with only address-specific chains (a TCP VIP, a pod IP) needs its own fallback for
  // the other addresses (Istio's per-VIP listeners leave those to virtualOutbound).
  const portOnly = new Set(httpPorts);
  const specific = new Set<number>();
  for (const chain of chains) {
    const match = (chain as { filter_chain_match?: R }).filter_chain_match ?? {};
    const port = Number((match['destination_port'] as R | undefined)?.['value']);
    if (match['prefix_ranges'] !== undefined) specific.add(port);
  }
  for (const port of [...specific].filter((p) => !portOnly.has(p)).sort((a, b) => a - b))
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
    listener_filters_timeout: { seconds: '0', nanos: PROTOCOL_DETECTION_TIMEOUT_MS * 1_000_000 },
    continue_on_listener_filters_timeout: true,
    filter_chains: chains,
  };
}

/** The `virtualInbound` listener for a REDIRECT-mode sidecar. */
export function buildVirtualInbound(): Record<string, unknown> {
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
export function handOffInbound(
  listener: Record<string, unknown>,
  port: number,
): Record<string, unknown> {
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
