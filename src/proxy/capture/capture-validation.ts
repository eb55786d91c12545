/**
 * What the capture side implements of the `virtualOutbound` and
 * `virtualInbound` listeners (docs/xds-contract.md "Capture listeners"),
 * checked before a snapshot is accepted: chains matched only on
 * `destination_port`, `prefix_ranges` and `application_protocols`; one HTTP
 * connection manager (RDS) or one tcp_proxy to a named cluster per chain,
 * optionally after network RBAC filters (egress NetworkPolicy); the
 * `original_dst` and `http_inspector` listener filters. Anything else is
 * NACKed: a match field the proxy ignored would send traffic down the wrong
 * chain.
 */
import { EXTENSION_TYPE_URLS, list, rec, str } from '../../xds/index.js';
import { checkFields } from '../config/fields.js';
import {
  fieldsOf,
  type FilterChain,
  type FilterChainMatch,
  type TcpProxy,
} from '../../xds/index.js';

type R = Record<string, unknown>;

/** The listener filters capture implements. */
const LISTENER_FILTERS = new Set([
  'envoy.filters.listener.original_dst',
  'envoy.filters.listener.http_inspector',
]);

/** Extensions inside a capture listener. */
export const CAPTURE_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.fault,
  EXTENSION_TYPE_URLS.cors,
  EXTENSION_TYPE_URLS.localRateLimit,
  EXTENSION_TYPE_URLS.tcpProxy,
  EXTENSION_TYPE_URLS.originalDst,
  EXTENSION_TYPE_URLS.httpInspector,
  EXTENSION_TYPE_URLS.networkRbac,
]);

/** True for the listeners this module serves. */
export function isCaptureListener(name: string): boolean {
  return name === 'virtualOutbound' || name === 'virtualInbound';
}

/** Problems with a `virtualOutbound` / `virtualInbound` listener (empty when capture can apply it). */
export function captureListenerProblems(listener: R): string[] {
  const problems: string[] = [];
  const inbound = listener['name'] === 'virtualInbound';
  if (rec(listener['use_original_dst'])['value'] !== true)
    problems.push('use_original_dst: a capture listener must route by original destination');
  list(listener['listener_filters']).forEach((f, i) => {
    if (!LISTENER_FILTERS.has(str(f['name'])))
      problems.push(`listener_filters[${String(i)}]: unsupported filter ${str(f['name'])}`);
  });
  list(listener['filter_chains']).forEach((chain, i) => {
    const at = `filter_chains[${String(i)}]`;
    checkFields(
      chain,
      fieldsOf<FilterChain>()('name', 'filter_chain_match', 'filters'),
      at,
      problems,
    );
    const match = rec(chain['filter_chain_match']);
    checkFields(
      match,
      inbound
        ? []
        : fieldsOf<FilterChainMatch>()(
            'destination_port',
            'prefix_ranges',
            'application_protocols',
          ),
      `${at}.filter_chain_match`,
      problems,
    );
    // virtualOutbound: network RBAC filters (egress NetworkPolicy) may precede the terminal one.
    const all = list(chain['filters']);
    const rbac = inbound ? [] : all.filter((f) => str(f['name']) === 'envoy.filters.network.rbac');
    rbac.forEach((f, k) => {
      checkFields(
        rec(f['typed_config']),
        ['@type', 'stat_prefix', 'rules'],
        `${at}.rbac[${String(k)}]`,
        problems,
      );
    });
    const filters = all.filter((f) => !rbac.includes(f));
    if (all.slice(0, rbac.length).some((f) => !rbac.includes(f)))
      problems.push(`${at}: network RBAC filters must precede the terminal filter`);
    const name = str(filters[0]?.['name']);
    if (filters.length !== 1) problems.push(`${at}: exactly one network filter is supported`);
    else if (name === 'envoy.filters.network.tcp_proxy') {
      const config = rec(filters[0]?.['typed_config']);
      checkFields(
        config,
        fieldsOf<TcpProxy>()('@type', 'stat_prefix', 'cluster'),
        `${at}.tcp_proxy`,
        problems,
      );
      if (str(config['cluster']) === '') problems.push(`${at}.tcp_proxy: cluster is required`);
      if (inbound && config['cluster'] !== 'BlackHoleCluster')
        problems.push(
          `${at}: virtualInbound hands declared ports to inbound|<port>; its own chain can only close (BlackHoleCluster)`,
        );
    } else if (name === 'envoy.filters.network.http_connection_manager' && !inbound) {
      if (str(rec(rec(filters[0]?.['typed_config'])['rds'])['route_config_name']) === '')
        problems.push(`${at}: the HTTP connection manager must name its routes over RDS`);
    } else problems.push(`${at}: unsupported filter ${name}`);
  });
  return problems;
}
