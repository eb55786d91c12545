/**
 * The name table of the sidecar's DNS proxy, read from the `dns` listener the
 * control plane sends to captured sidecars: Envoy's UDP DNS filter
 * (`envoy.filters.udp.dns_filter`, DnsFilterConfig) with an inline DnsTable
 * whose `virtual_domains` map each mesh hostname the pod may use (`reviews`,
 * `reviews.default`, `reviews.default.svc`, `reviews.default.svc.cluster.local`,
 * ServiceEntry hosts) to its VIPs (`address_list`). Istio's own DNS proxying
 * (istio-agent, `ISTIO_META_DNS_CAPTURE`) gets the same table as an NDS
 * NameTable; Palisade carries it on this listener so it rides the existing
 * ADS stream (LDS) with no new resource type.
 */
import { isIPv4, isIPv6 } from 'node:net';

type R = Record<string, unknown>;

export const DNS_LISTENER = 'dns';
export const DNS_FILTER = 'envoy.filters.udp.dns_filter';

export interface DnsEntry {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /** Seconds (DnsVirtualDomain.answer_ttl, default 30 as Istio's NDS answers use). */
  readonly ttl: number;
}

export interface DnsTable {
  lookup(name: string): DnsEntry | undefined;
  readonly size: number;
  /** Upstream resolver timeout (client_config.resolver_timeout), ms. */
  readonly resolverTimeoutMs: number;
  /** Queries forwarded at once (client_config.max_pending_lookups). */
  readonly maxPendingLookups: number;
}

export const EMPTY_DNS_TABLE: DnsTable = {
  lookup: () => undefined,
  size: 0,
  resolverTimeoutMs: 2_000,
  maxPendingLookups: 256,
};

function rec(value: unknown): R {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as R) : {};
}

function seconds(duration: unknown, fallback: number): number {
  const d = rec(duration);
  if (d['seconds'] === undefined && d['nanos'] === undefined) return fallback;
  return Number(d['seconds'] ?? 0) + Number(d['nanos'] ?? 0) / 1e9;
}

/** A DNS name as compared: lower case, no trailing dot. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The table of a `dns` listener, compiled with the listener update (before the ACK); empty without one. */
export function compileDnsTable(listener: R | undefined): DnsTable {
  if (listener === undefined) return EMPTY_DNS_TABLE;
  const filter = (
    Array.isArray(listener['listener_filters']) ? (listener['listener_filters'] as R[]) : []
  ).find((f) => f['name'] === DNS_FILTER);
  const config = rec(filter?.['typed_config']);
  const table = rec(rec(config['server_config'])['inline_dns_table']);
  const client = rec(config['client_config']);
  const names = new Map<string, DnsEntry>();
  for (const domain of Array.isArray(table['virtual_domains'])
    ? (table['virtual_domains'] as R[])
    : []) {
    const name = canonicalName(typeof domain['name'] === 'string' ? domain['name'] : '');
    const list = rec(rec(domain['endpoint'])['address_list'])['address'];
    const addresses = Array.isArray(list) ? list.map(String) : [];
    if (name === '') continue;
    names.set(name, {
      v4: addresses.filter((a) => isIPv4(a)),
      v6: addresses.filter((a) => isIPv6(a)),
      ttl: Math.max(1, Math.round(seconds(domain['answer_ttl'], 30))),
    });
  }
  return {
    lookup: (name) => names.get(canonicalName(name)),
    size: names.size,
    resolverTimeoutMs: Math.round(seconds(client['resolver_timeout'], 2) * 1000),
    maxPendingLookups: Math.max(1, Number(client['max_pending_lookups'] ?? 256)),
  };
}
