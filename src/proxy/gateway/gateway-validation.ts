/**
 * What the gateway side implements of a `0.0.0.0_<port>` listener: chains
 * matched on `server_names`/`transport_protocol`, TLS termination with a
 * server certificate (SDS or files) and, for MUTUAL, a required client
 * certificate; one HttpConnectionManager with RDS and the fault/router
 * filters, or one tcp_proxy (TLS passthrough when the chain has no
 * transport_socket and matches `transport_protocol: tls`). Anything else is
 * NACKed.
 */
import { checkFields } from '../config/fields.js';
import {
  fieldsOf,
  list,
  rec,
  str,
  type FilterChain,
  type FilterChainMatch,
  type HttpConnectionManager,
  type TcpProxy,
} from '../../xds/index.js';

const GATEWAY_HTTP_FILTERS = new Set([
  'envoy.filters.http.jwt_authn',
  'envoy.filters.http.ext_authz',
  'envoy.filters.http.rbac',
  'envoy.filters.http.fault',
  'envoy.filters.http.cors',
  'envoy.filters.http.local_ratelimit',
  'envoy.filters.http.router',
]);

/** Problems with one gateway listener (empty when the gateway side can apply it). */
export function gatewayListenerProblems(listener: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [i, chain] of list(listener['filter_chains']).entries()) {
    const at = `filter_chains[${String(i)}]`;
    checkFields(
      chain,
      fieldsOf<FilterChain>()('name', 'filter_chain_match', 'transport_socket', 'filters'),
      at,
      problems,
    );
    checkFields(
      rec(chain['filter_chain_match']),
      fieldsOf<FilterChainMatch>()('server_names', 'transport_protocol'),
      `${at}.filter_chain_match`,
      problems,
    );
    if (chain['transport_socket'] !== undefined) {
      const config = rec(rec(chain['transport_socket'])['typed_config']);
      checkFields(
        config,
        ['@type', 'require_client_certificate', 'common_tls_context'],
        `${at}.transport_socket`,
        problems,
      );
      const common = rec(config['common_tls_context']);
      checkFields(
        common,
        [
          'alpn_protocols',
          'tls_certificate_sds_secret_configs',
          'validation_context_sds_secret_config',
          'tls_certificates',
          'validation_context',
          'tls_params',
        ],
        `${at}.transport_socket.common_tls_context`,
        problems,
      );
      checkFields(
        rec(common['tls_params']),
        ['cipher_suites'],
        `${at}.transport_socket.common_tls_context.tls_params`,
        problems,
      );
      const suites = rec(common['tls_params'])['cipher_suites'];
      if (
        suites !== undefined &&
        (!Array.isArray(suites) ||
          suites.some((c) => typeof c !== 'string' || !/^[A-Za-z0-9_-]+$/.test(c)))
      )
        problems.push(
          `${at}.transport_socket.common_tls_context.tls_params.cipher_suites: must be a list of cipher suite names`,
        );
      checkFields(
        rec(common['validation_context']),
        ['trusted_ca'],
        `${at}.transport_socket.common_tls_context.validation_context`,
        problems,
      );
    }
    const filters = list(chain['filters']);
    const only = filters.length === 1 ? filters[0] : undefined;
    if (only?.['name'] === 'envoy.filters.network.tcp_proxy') {
      const tcp = rec(only['typed_config']);
      checkFields(
        tcp,
        fieldsOf<TcpProxy>()('@type', 'stat_prefix', 'cluster', 'weighted_clusters'),
        `${at}.tcp_proxy`,
        problems,
      );
      for (const [j, c] of list(rec(tcp['weighted_clusters'])['clusters']).entries())
        checkFields(
          c,
          ['name', 'weight'],
          `${at}.tcp_proxy.weighted_clusters.clusters[${String(j)}]`,
          problems,
        );
      if (
        str(tcp['cluster']) === '' &&
        list(rec(tcp['weighted_clusters'])['clusters']).length === 0
      )
        problems.push(`${at}.tcp_proxy: names no cluster`);
      continue;
    }
    if (only?.['name'] !== 'envoy.filters.network.http_connection_manager') {
      problems.push(`${at}: a gateway chain must be one HTTP connection manager or one tcp_proxy`);
      continue;
    }
    const hcm = rec(only['typed_config']);
    checkFields(
      hcm,
      fieldsOf<HttpConnectionManager>()(
        '@type',
        'stat_prefix',
        'codec_type',
        'rds',
        'use_remote_address',
        'xff_num_trusted_hops',
        'http_filters',
        // Path normalisation and upgrade types: enforced by request-head.ts.
        'normalize_path',
        'merge_slashes',
        'path_with_escaped_slashes_action',
        'upgrade_configs',
      ),
      `${at}.filters[0]`,
      problems,
    );
    for (const [j, f] of list(hcm['http_filters']).entries()) {
      const name = str(f['name']);
      if (!GATEWAY_HTTP_FILTERS.has(name))
        problems.push(`${at}.filters[0].http_filters[${String(j)}]: unsupported filter ${name}`);
    }
  }
  return problems;
}
