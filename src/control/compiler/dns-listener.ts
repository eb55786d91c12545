/**
 * The `dns` listener of a captured sidecar: Envoy's UDP DNS filter
 * (`envoy.filters.udp.dns_filter`) on 127.0.0.1:15053 with an inline table of
 * the names the pod may resolve to mesh VIPs — what Istio's DNS proxying
 * answers from its NDS NameTable
 * (https://istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/):
 *
 * - a Kubernetes Service: `name.ns.svc.cluster.local`, `name.ns.svc`,
 *   `name.ns`, and `name` alone in the pod's own namespace (what the pod's
 *   resolv.conf search list would expand in a cluster);
 * - a ServiceEntry host: the host itself (wildcards are never answered);
 * - the addresses are the service's VIPs: `spec.clusterIP` (allocated by the
 *   runtime from the service CIDR in netns mode), a ServiceEntry's
 *   `addresses`, or the auto-allocated 240.240.0.0/16 VIP.
 *
 * Names not in the table are forwarded by the sidecar to the pod's upstream
 * resolver (src/proxy/dns).
 */
import { EXTENSION_TYPE_URLS, TYPE_URLS, type Listener } from '../../xds/index.js';
import { DNS_DOMAIN, type ServiceView } from '../registry/service-registry.js';
import type { ProxyNode } from './proxy-node.js';

/** Istio's DNS proxy port (istio-agent listens there; proxy-init --redirect-dns points at it). */
export const DNS_PROXY_PORT = 15053;

/** Names of one service as the pod in `namespace` may write them. */
export function dnsNames(service: ServiceView, namespace: string): string[] {
  if (service.hostname.startsWith('*')) return [];
  if (service.source !== 'Service') return [service.hostname];
  const { name } = service;
  const ns = service.namespace;
  const names = [`${name}.${ns}.svc.${DNS_DOMAIN}`, `${name}.${ns}.svc`, `${name}.${ns}`];
  if (ns === namespace) names.push(name);
  return names;
}

export function buildDnsListener(proxy: ProxyNode, services: readonly ServiceView[]): Listener {
  const domains = new Map<string, string[]>();
  for (const service of services) {
    const addresses = (service.addresses ?? []).filter((a) => a !== '' && a !== 'None');
    if (addresses.length === 0) continue;
    for (const name of dnsNames(service, proxy.namespace))
      // The first service to claim a name keeps it (its own namespace's short name first).
      if (!domains.has(name)) domains.set(name, addresses);
  }
  return {
    '@type': TYPE_URLS.listener,
    name: 'dns',
    address: {
      socket_address: { protocol: 'UDP', address: '127.0.0.1', port_value: DNS_PROXY_PORT },
    },
    listener_filters: [
      {
        name: 'envoy.filters.udp.dns_filter',
        typed_config: {
          '@type': EXTENSION_TYPE_URLS.dnsFilter,
          stat_prefix: 'dns',
          server_config: {
            inline_dns_table: {
              virtual_domains: [...domains].map(([name, address]) => ({
                name,
                endpoint: { address_list: { address } },
                answer_ttl: { seconds: '30' },
              })),
            },
          },
          client_config: { resolver_timeout: { seconds: '2' }, max_pending_lookups: '256' },
        },
      },
    ],
  };
}
