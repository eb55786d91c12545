/**
 * A tcp_proxy network filter as the tunnel code reads it per connection,
 * compiled when its listener (or gateway chain) is accepted: the cluster, or
 * the weighted clusters with their total weight.
 */
import { randomInt } from 'node:crypto';
import { list, rec, str } from '../../xds/index.js';

export interface TcpProxyConfig {
  /** `cluster`, or '' when the filter splits over `weighted_clusters`. */
  readonly cluster: string;
  readonly weighted: readonly { readonly name: string; readonly weight: number }[];
  readonly totalWeight: number;
}

/** Compiles a tcp_proxy filter's typed_config. */
export function compileTcpProxy(raw: Record<string, unknown>): TcpProxyConfig {
  const weighted = list(rec(raw['weighted_clusters'])['clusters']).map((c) => ({
    name: str(c['name']),
    weight: Math.max(0, Number(c['weight'] ?? 0) || 0),
  }));
  return {
    cluster: str(raw['cluster']),
    weighted,
    totalWeight: weighted.reduce((sum, c) => sum + c.weight, 0),
  };
}

/** The cluster a connection goes to: `cluster`, else a weighted pick ('' when there is none). */
export function pickTcpCluster(config: TcpProxyConfig): string {
  if (config.cluster !== '' || config.weighted.length === 0) return config.cluster;
  let roll = config.totalWeight > 0 ? randomInt(config.totalWeight) : 0;
  for (const c of config.weighted) {
    roll -= c.weight;
    if (roll < 0) return c.name;
  }
  return config.weighted[0]?.name ?? '';
}
