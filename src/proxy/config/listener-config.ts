/**
 * Listener (LDS) checks shared by every listener kind: each HTTP connection
 * manager's head fields (request-head.ts) and local rate limit filters.
 */
import {
  asListener,
  fieldsOf,
  hcmOf,
  HCM_FILTER,
  list,
  rec,
  type FilterChain,
  type FilterChainMatch,
  type HttpConnectionManager,
} from '../../xds/index.js';
import { checkFields } from './fields.js';
import { LOCAL_RATE_LIMIT_FILTER, localRateLimitProblems } from '../local-rate-limit.js';
import { hcmHeadProblems } from '../request-head.js';
import type { XdsResource } from '../xds-client/xds-resource.js';

/** Every HTTP connection manager's path-normalisation and upgrade fields (request-head.ts). */
export function hcmFieldProblems(listener: XdsResource): string[] {
  const problems: string[] = [];
  list(listener['filter_chains']).forEach((chain, i) => {
    list(chain['filters']).forEach((filter, j) => {
      if (filter['name'] === 'envoy.filters.network.http_connection_manager')
        problems.push(
          ...hcmHeadProblems(
            rec(filter['typed_config']),
            `filter_chains[${String(i)}].filters[${String(j)}]`,
          ),
        );
    });
  });
  return problems;
}

export function rateLimitFilterProblems(listener: XdsResource): string[] {
  const problems: string[] = [];
  list(listener['filter_chains']).forEach((chain, i) => {
    list(chain['filters']).forEach((filter, j) => {
      list(rec(filter['typed_config'])['http_filters']).forEach((f, k) => {
        if (f['name'] === LOCAL_RATE_LIMIT_FILTER)
          problems.push(
            ...localRateLimitProblems(
              rec(f['typed_config']),
              `filter_chains[${String(i)}].filters[${String(j)}].http_filters[${String(k)}]`,
            ),
          );
      });
    });
  });
  return problems;
}

/**
 * The explicit `outbound` listener's chains: a destination port match and one RDS
 * HttpConnectionManager each. A field the outbound side would skip — a chain's
 * `transport_socket`, an SNI or address match, an inline route configuration — is a
 * problem, not silently ignored (before, only extension types and head fields were checked).
 */
export function outboundListenerProblems(listener: XdsResource): string[] {
  const problems: string[] = [];
  (asListener(listener).filter_chains ?? []).forEach((chain, i) => {
    const at = `filter_chains[${String(i)}]`;
    checkFields(chain, OUTBOUND_CHAIN_FIELDS, at, problems);
    checkFields(
      chain.filter_chain_match,
      OUTBOUND_MATCH_FIELDS,
      `${at}.filter_chain_match`,
      problems,
    );
    const filters = chain.filters ?? [];
    if (filters.length !== 1 || filters[0]?.name !== HCM_FILTER) {
      problems.push(`${at}: exactly one HTTP connection manager is supported`);
      return;
    }
    const hcm = hcmOf(filters[0]);
    checkFields(hcm, OUTBOUND_HCM_FIELDS, `${at}.filters[0]`, problems);
    if ((hcm.rds?.route_config_name ?? '') === '')
      problems.push(`${at}.filters[0]: the HTTP connection manager must name its routes over RDS`);
  });
  return problems;
}

const OUTBOUND_CHAIN_FIELDS = fieldsOf<FilterChain>()('name', 'filter_chain_match', 'filters');
const OUTBOUND_MATCH_FIELDS = fieldsOf<FilterChainMatch>()('destination_port');
const OUTBOUND_HCM_FIELDS = fieldsOf<HttpConnectionManager>()(
  '@type',
  'stat_prefix',
  'codec_type',
  'rds',
  'http_filters',
  // Path normalisation, HTTP/1.0 and upgrade types: enforced by request-head.ts.
  'normalize_path',
  'merge_slashes',
  'path_with_escaped_slashes_action',
  'http_protocol_options',
  'upgrade_configs',
);
