/**
 * RouteConfiguration (RDS) checks: the Route, RouteAction, retry, hash-policy
 * and per-filter (fault, CORS, local rate limit) fields the outbound router
 * implements; anything else is named with its field path.
 */
import { LOCAL_RATE_LIMIT_FILTER, localRateLimitProblems } from '../local-rate-limit.js';
import { upgradeConfigProblems } from '../request-head.js';
import {
  allFieldsOf,
  type RetryPolicy,
  type Route,
  type RouteAction,
  type VirtualHost,
} from '../../xds/index.js';
import type { XdsResource } from '../xds-client/xds-resource.js';
import { isOneofDiscriminator, isRecord, unsupportedKeys } from './fields.js';

/** Fields of a Route (route.v3.Route) and its RouteAction this build implements. */
const SUPPORTED_ROUTE_FIELDS: ReadonlySet<string> = allFieldsOf<Route>()(
  'name',
  'match',
  'route',
  'redirect',
  'direct_response',
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
  'typed_per_filter_config',
);
const SUPPORTED_ROUTE_ACTION_FIELDS: ReadonlySet<string> = allFieldsOf<RouteAction>()(
  'cluster',
  'weighted_clusters',
  'prefix_rewrite',
  'regex_rewrite',
  'host_rewrite_literal',
  'timeout',
  'retry_policy',
  'request_mirror_policies',
  'hash_policy',
  'upgrade_configs',
);
const SUPPORTED_RETRY_FIELDS: ReadonlySet<string> = allFieldsOf<RetryPolicy>()(
  'retry_on',
  'num_retries',
  'per_try_timeout',
  'retriable_status_codes',
);
const SUPPORTED_VIRTUAL_HOST_FIELDS: ReadonlySet<string> = allFieldsOf<VirtualHost>()(
  'name',
  'domains',
  'routes',
);
/** Per-route filter configs the outbound path applies. */
const SUPPORTED_PER_FILTER: ReadonlySet<string> = new Set([
  'envoy.filters.http.fault',
  'envoy.filters.http.cors',
  LOCAL_RATE_LIMIT_FILTER,
]);
/** CorsPolicy fields the outbound path implements (see outbound/cors.ts). */
const SUPPORTED_CORS_FIELDS: ReadonlySet<string> = new Set([
  '@type',
  'allow_origin_string_match',
  'allow_methods',
  'allow_headers',
  'expose_headers',
  'max_age',
  'allow_credentials',
  'forward_not_matching_preflights',
]);
/** Fields of each hash_policy kind the consistent-hash balancer implements (see outbound/hash-lb.ts). */
const HASH_POLICY_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  header: new Set(['header_name']),
  cookie: new Set(['name', 'ttl', 'path']),
  connection_properties: new Set(['source_ip']),
  query_parameter: new Set(['name']),
};

/** Route-level features the outbound path does not implement yet (retries, timeouts, …). */
export function collectUnsupportedRouteFields(resource: XdsResource, problems: string[]): void {
  const vhosts = Array.isArray(resource['virtual_hosts']) ? resource['virtual_hosts'] : [];
  vhosts.forEach((vhost: unknown, v) => {
    if (!isRecord(vhost)) return;
    for (const key of unsupportedKeys(vhost, SUPPORTED_VIRTUAL_HOST_FIELDS)) {
      problems.push(`virtual_hosts[${String(v)}]: unsupported field ${key}`);
    }
    const routes = Array.isArray(vhost['routes']) ? vhost['routes'] : [];
    routes.forEach((route: unknown, r) => {
      const at = `virtual_hosts[${String(v)}].routes[${String(r)}]`;
      for (const key of unsupportedKeys(route, SUPPORTED_ROUTE_FIELDS)) {
        problems.push(`${at}: unsupported field ${key}`);
      }
      if (isRecord(route)) {
        for (const key of unsupportedKeys(route['route'], SUPPORTED_ROUTE_ACTION_FIELDS)) {
          problems.push(`${at}.route: unsupported field ${key}`);
        }
        const action = isRecord(route['route']) ? route['route'] : {};
        problems.push(
          ...upgradeConfigProblems(action['upgrade_configs'], `${at}.route.upgrade_configs`),
        );
        for (const key of unsupportedKeys(action['retry_policy'], SUPPORTED_RETRY_FIELDS)) {
          problems.push(`${at}.route.retry_policy: unsupported field ${key}`);
        }
        const hashPolicies = Array.isArray(action['hash_policy']) ? action['hash_policy'] : [];
        hashPolicies.forEach((policy: unknown, h) => {
          const where = `${at}.route.hash_policy[${String(h)}]`;
          if (!isRecord(policy)) return;
          const kinds = Object.keys(policy).filter(
            (k) => k !== 'terminal' && !isOneofDiscriminator(policy, k),
          );
          for (const kind of kinds) {
            const fields = HASH_POLICY_FIELDS[kind];
            if (fields === undefined) problems.push(`${where}: unsupported hash policy ${kind}`);
            else
              for (const key of unsupportedKeys(policy[kind], fields))
                problems.push(`${where}.${kind}: unsupported field ${key}`);
          }
        });
        const perFilter = isRecord(route['typed_per_filter_config'])
          ? route['typed_per_filter_config']
          : {};
        for (const key of Object.keys(perFilter)) {
          if (!SUPPORTED_PER_FILTER.has(key))
            problems.push(`${at}.typed_per_filter_config: unsupported filter ${key}`);
        }
        const fault = perFilter['envoy.filters.http.fault'];
        const abort = isRecord(fault) ? fault['abort'] : undefined;
        for (const key of unsupportedKeys(
          abort,
          new Set(['http_status', 'grpc_status', 'percentage']),
        ))
          problems.push(
            `${at}.typed_per_filter_config[envoy.filters.http.fault].abort: unsupported field ${key}`,
          );
        for (const key of unsupportedKeys(
          perFilter['envoy.filters.http.cors'],
          SUPPORTED_CORS_FIELDS,
        ))
          problems.push(
            `${at}.typed_per_filter_config[envoy.filters.http.cors]: unsupported field ${key}`,
          );
        const limit = perFilter[LOCAL_RATE_LIMIT_FILTER];
        if (limit !== undefined)
          problems.push(
            ...localRateLimitProblems(
              isRecord(limit) ? limit : {},
              `${at}.typed_per_filter_config[${LOCAL_RATE_LIMIT_FILTER}]`,
            ),
          );
      }
    });
  });
}
