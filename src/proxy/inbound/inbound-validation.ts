/**
 * What the inbound side implements of an `inbound|<port>` listener, checked
 * before the snapshot is accepted: filter chains matched only on
 * `transport_protocol`; TLS only as mTLS with SDS `default`/`ROOTCA`; HCM
 * with an inline route to one cluster and the filters jwt_authn, RBAC and
 * router; or network RBAC + tcp_proxy. Anything else is NACKed: accepting a
 * field the inbound path would not enforce could fail open.
 */

import { checkFields } from '../config/fields.js';
import {
  fieldsOf,
  str,
  type FilterChain,
  type FilterChainMatch,
  type HttpConnectionManager,
  type TcpProxy,
} from '../../xds/index.js';

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(rec) : []);

const HTTP_FILTERS = new Set([
  'envoy.filters.http.jwt_authn',
  'envoy.filters.http.ext_authz',
  'envoy.filters.http.rbac',
  'envoy.filters.http.local_ratelimit',
  'envoy.filters.http.router',
]);
const NETWORK_EXT_AUTHZ = 'envoy.filters.network.ext_authz';
/** The network ext_authz fields enforced (tcp-ext-authz.ts); anything else is NACKed. */
const NETWORK_EXT_AUTHZ_FIELDS = [
  '@type',
  'stat_prefix',
  'grpc_service',
  'failure_mode_allow',
  'transport_api_version',
  'filter_enabled_metadata',
];
const JWT_PROVIDER_FIELDS = [
  'issuer',
  'audiences',
  'local_jwks',
  'remote_jwks',
  'from_headers',
  'from_params',
  'from_cookies',
  'forward',
  'forward_payload_header',
  'claim_to_headers',
  'payload_in_metadata',
  'normalize_payload_in_metadata',
  'clock_skew_seconds',
];

function checkHcm(config: R, at: string, problems: string[]): void {
  checkFields(
    config,
    fieldsOf<HttpConnectionManager>()(
      '@type',
      'stat_prefix',
      'codec_type',
      'route_config',
      'use_remote_address',
      'xff_num_trusted_hops',
      'http_filters',
      // Path normalisation and upgrade types: enforced by request-head.ts.
      'normalize_path',
      'merge_slashes',
      'path_with_escaped_slashes_action',
      'upgrade_configs',
    ),
    at,
    problems,
  );
  const vhosts = list(rec(config['route_config'])['virtual_hosts']);
  const routes = list(vhosts[0]?.['routes']);
  if (
    vhosts.length !== 1 ||
    routes.length !== 1 ||
    typeof rec(routes[0]?.['route'])['cluster'] !== 'string'
  )
    problems.push(`${at}.route_config: inbound routes must send everything to one cluster`);
  const filters = list(config['http_filters']);
  filters.forEach((f, i) => {
    const name = str(f['name']);
    if (!HTTP_FILTERS.has(name))
      problems.push(`${at}.http_filters[${String(i)}]: unsupported filter ${name}`);
    if (name === 'envoy.filters.http.jwt_authn')
      for (const [provider, p] of Object.entries(rec(rec(f['typed_config'])['providers'])))
        checkFields(
          rec(p),
          JWT_PROVIDER_FIELDS,
          `${at}.http_filters[${String(i)}].providers.${provider}`,
          problems,
        );
  });
  if (filters.at(-1)?.['name'] !== 'envoy.filters.http.router')
    problems.push(`${at}.http_filters: the router filter must be last`);
}

function checkTls(socket: R, at: string, problems: string[]): void {
  const config = rec(socket['typed_config']);
  checkFields(config, ['@type', 'require_client_certificate', 'common_tls_context'], at, problems);
  const common = rec(config['common_tls_context']);
  checkFields(
    common,
    [
      'alpn_protocols',
      'tls_certificate_sds_secret_configs',
      'validation_context_sds_secret_config',
    ],
    `${at}.common_tls_context`,
    problems,
  );
  const own = list(common['tls_certificate_sds_secret_configs']).map((s) => s['name']);
  if (own.length !== 1 || own[0] !== 'default')
    problems.push(`${at}: inbound TLS must use the workload certificate (SDS "default")`);
  if (rec(common['validation_context_sds_secret_config'])['name'] !== 'ROOTCA')
    problems.push(`${at}: inbound TLS must verify peers with the trust bundle (SDS "ROOTCA")`);
}

/** Problems with one `inbound|*` listener (empty when the inbound side can apply it). */
export function inboundListenerProblems(listener: R): string[] {
  const problems: string[] = [];
  for (const [i, chain] of list(listener['filter_chains']).entries()) {
    const at = `filter_chains[${String(i)}]`;
    checkFields(
      chain,
      fieldsOf<FilterChain>()('name', 'filter_chain_match', 'transport_socket', 'filters'),
      at,
      problems,
    );
    const match = rec(chain['filter_chain_match']);
    checkFields(
      match,
      fieldsOf<FilterChainMatch>()('transport_protocol'),
      `${at}.filter_chain_match`,
      problems,
    );
    const transport = match['transport_protocol'];
    if (transport !== 'tls' && transport !== 'raw_buffer')
      problems.push(`${at}: transport_protocol must be "tls" or "raw_buffer"`);
    if (transport === 'tls')
      checkTls(rec(chain['transport_socket']), `${at}.transport_socket`, problems);
    else if (chain['transport_socket'] !== undefined)
      problems.push(`${at}: a raw_buffer chain cannot terminate TLS`);
    const filters = list(chain['filters']);
    const names = filters.map((f) => str(f['name']));
    const leadingRbac = names.findIndex((n) => n !== 'envoy.filters.network.rbac');
    if (
      leadingRbac === names.length - 1 &&
      names.at(-1) === 'envoy.filters.network.http_connection_manager'
    )
      checkHcm(
        rec(filters.at(-1)?.['typed_config']),
        `${at}.filters[${String(names.length - 1)}]`,
        problems,
      );
    else if (
      names.at(-1) === 'envoy.filters.network.tcp_proxy' &&
      names.slice(0, -1).every((n) => n === 'envoy.filters.network.rbac' || n === NETWORK_EXT_AUTHZ)
    ) {
      const proxy = rec(filters.at(-1)?.['typed_config']);
      checkFields(
        proxy,
        fieldsOf<TcpProxy>()('@type', 'stat_prefix', 'cluster'),
        `${at}.tcp_proxy`,
        problems,
      );
      filters.forEach((f, j) => {
        if (f['name'] === NETWORK_EXT_AUTHZ)
          checkFields(
            rec(f['typed_config']),
            NETWORK_EXT_AUTHZ_FIELDS,
            `${at}.filters[${String(j)}]`,
            problems,
          );
      });
    } else
      problems.push(
        `${at}: filters must be network RBAC filters then one HTTP connection manager or tcp_proxy`,
      );
  }
  return problems;
}
