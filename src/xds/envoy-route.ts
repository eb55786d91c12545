/**
 * The Envoy RouteConfiguration subset Palisade speaks (route.v3), as one set
 * of types for both ends of xDS: the control-plane compiler builds these
 * objects (src/control/compiler/routes.ts, compile-proxy.ts) and the proxy
 * compiles the decoded ones (src/proxy/outbound/route-table.ts), so a field
 * is named in one place. Field names are the protos' (snake_case); values as
 * protobufjs writes and decodes them (see envoy-cluster.ts). Object types are
 * type aliases, not interfaces, so that they stay assignable to the decoded
 * `Record<string, unknown>` shape the per-filter compilers take. As in the
 * protos, fields are optional: a decoded message omits what is empty.
 */
import type { Duration, WrappedNumber } from './envoy-cluster.js';

/** type.matcher.v3.StringMatcher. */
export type StringMatcher = {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex: string };
  ignore_case?: boolean;
};

/** config.route.v3.HeaderMatcher. */
export type HeaderMatcher = {
  name: string;
  string_match?: StringMatcher;
  present_match?: boolean;
  invert_match?: boolean;
};

/** config.route.v3.QueryParameterMatcher. */
export type QueryParameterMatcher = {
  name: string;
  string_match?: StringMatcher;
  present_match?: boolean;
};

/** config.route.v3.RouteMatch. */
export type RouteMatch = {
  prefix?: string;
  path?: string;
  safe_regex?: { regex: string };
  case_sensitive?: { value: boolean };
  headers?: HeaderMatcher[];
  query_parameters?: QueryParameterMatcher[];
};

/** config.core.v3.HeaderValueOption. */
export type HeaderValueOption = {
  header: { key: string; value: string };
  append_action?:
    | 'APPEND_IF_EXISTS_OR_ADD'
    | 'ADD_IF_ABSENT'
    | 'OVERWRITE_IF_EXISTS_OR_ADD'
    | 'OVERWRITE_IF_EXISTS';
};

/** The header operations a virtual host, route or weighted cluster carries. */
export type HeaderOperations = {
  request_headers_to_add?: HeaderValueOption[];
  request_headers_to_remove?: string[];
  response_headers_to_add?: HeaderValueOption[];
  response_headers_to_remove?: string[];
};

/** type.v3.FractionalPercent. */
export type FractionalPercent = {
  numerator: number;
  denominator?: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
};

/** config.route.v3.RetryPolicy. */
export type RetryPolicy = {
  retry_on?: string;
  num_retries?: WrappedNumber;
  per_try_timeout?: Duration;
  retriable_status_codes?: number[];
};

/** config.route.v3.RouteAction.HashPolicy (read by src/proxy/outbound/hash-lb.ts). */
export type HashPolicy = Record<string, unknown>;

/** config.route.v3.RouteAction.UpgradeConfig. */
export type UpgradeConfig = { upgrade_type: string; enabled?: { value: boolean } };

/** config.route.v3.RouteAction. */
export type RouteAction = {
  cluster?: string;
  weighted_clusters?: { clusters?: { name?: string; weight?: WrappedNumber }[] };
  timeout?: Duration;
  retry_policy?: RetryPolicy;
  prefix_rewrite?: string;
  regex_rewrite?: { pattern?: { regex?: string }; substitution?: string };
  host_rewrite_literal?: string;
  request_mirror_policies?: {
    cluster?: string;
    runtime_fraction?: { default_value: FractionalPercent };
  }[];
  hash_policy?: HashPolicy[];
  upgrade_configs?: UpgradeConfig[];
};

/** config.route.v3.RedirectAction. */
export type RedirectAction = {
  path_redirect?: string;
  host_redirect?: string;
  port_redirect?: number;
  scheme_redirect?: string;
  https_redirect?: boolean;
  response_code?:
    'MOVED_PERMANENTLY' | 'FOUND' | 'SEE_OTHER' | 'TEMPORARY_REDIRECT' | 'PERMANENT_REDIRECT';
};

/** config.route.v3.DirectResponseAction. */
export type DirectResponseAction = { status: number; body?: { inline_string?: string } };

/** config.route.v3.Route: one of `route`, `redirect`, `direct_response`. */
export type Route = HeaderOperations & {
  name?: string;
  match?: RouteMatch;
  route?: RouteAction;
  redirect?: RedirectAction;
  direct_response?: DirectResponseAction;
  /** By HTTP filter name: the filter's per-route config (a typed Any, decoded). */
  typed_per_filter_config?: Record<string, Record<string, unknown>>;
};

/** config.route.v3.VirtualHost. */
export type VirtualHost = {
  name?: string;
  domains?: string[];
  routes?: Route[];
};

/** config.route.v3.RouteConfiguration. */
export type RouteConfiguration = {
  '@type'?: string;
  name?: string;
  virtual_hosts?: VirtualHost[];
  /** Accepted and ignored: the proxy never validates cluster names against CDS at load. */
  validate_clusters?: { value: boolean };
};
