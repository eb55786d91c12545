/**
 * Listener (LDS) checks shared by every listener kind: each HTTP connection
 * manager's head fields (request-head.ts) and local rate limit filters.
 */
import { list, rec } from '../../xds/index.js';
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
