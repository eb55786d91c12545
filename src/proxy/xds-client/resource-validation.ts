/**
 * Validation of xDS resources before the proxy applies them. The proxy
 * implements a defined subset of Envoy's API (docs/xds-contract.md); a field or
 * filter outside that subset is a reason to NACK the whole response, never to
 * ignore it (DESIGN §3, STYLE §3: fail closed on what we do not support).
 */
import { EXTENSION_TYPE_URLS, list, rec, TYPE_URLS, type ResourceKind } from '../../xds/index.js';
import { rewriteProblem, safeRegexProblem } from '../../regex/index.js';
import { LOCAL_RATE_LIMIT_FILTER, localRateLimitProblems } from '../local-rate-limit.js';
import { gatewayListenerProblems } from '../gateway/gateway-validation.js';
import { inboundListenerProblems } from '../inbound/inbound-validation.js';
import { healthCheckProblems } from '../outbound/health-checker.js';
import { parseUpstreamTls } from '../outbound/upstream-tls.js';
import { HTTP_PROTOCOL_OPTIONS_KEY } from '../h2-upstream.js';
import { hcmHeadProblems } from '../request-head.js';
import { DNS_LISTENER, dnsListenerProblems } from '../dns/index.js';
import {
  CAPTURE_EXTENSIONS,
  captureListenerProblems,
  isCaptureListener,
} from '../capture/capture-validation.js';

/** A decoded xDS resource (decoded plain object, `@type` set). */
import type { XdsResource } from './xds-resource.js';
export type { XdsResource } from './xds-resource.js';

const SUPPORTED_FIELDS: Record<ResourceKind, ReadonlySet<string>> = {
  listener: new Set([
    '@type',
    'name',
    'address',
    'filter_chains',
    'listener_filters',
    'traffic_direction',
    'default_filter_chain',
    'stat_prefix',
    // Transparent capture (src/proxy/capture): checked per listener below.
    'use_original_dst',
    'bind_to_port',
    'listener_filters_timeout',
    'continue_on_listener_filters_timeout',
  ]),
  route: new Set(['@type', 'name', 'virtual_hosts', 'validate_clusters']),
  cluster: new Set([
    '@type',
    'name',
    'type',
    'eds_cluster_config',
    'connect_timeout',
    'lb_policy',
    'load_assignment',
    'transport_socket',
    'circuit_breakers',
    'outlier_detection',
    'health_checks',
    'max_requests_per_connection',
    'ring_hash_lb_config',
    'maglev_lb_config',
    'metadata',
    'typed_extension_protocol_options',
  ]),
  endpoint: new Set(['@type', 'cluster_name', 'endpoints', 'policy']),
  secret: new Set(['@type', 'name', 'tls_certificate', 'validation_context']),
};

/**
 * Extensions the outbound listener implements. Others (ext_authz, Lua,
 * global rate limit, …) are NACKed until their filter lands: accepting a filter and
 * not enforcing it would fail open.
 */
const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.fault,
  EXTENSION_TYPE_URLS.cors,
  EXTENSION_TYPE_URLS.corsPolicy,
  EXTENSION_TYPE_URLS.localRateLimit,
  EXTENSION_TYPE_URLS.upstreamTls,
  EXTENSION_TYPE_URLS.httpProtocolOptions,
]);

/** Extensions the gateway listeners implement (checked field by field in gateway-validation). */
const GATEWAY_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpRbac,
  EXTENSION_TYPE_URLS.jwtAuthn,
  EXTENSION_TYPE_URLS.httpExtAuthz,
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.fault,
  EXTENSION_TYPE_URLS.cors,
  EXTENSION_TYPE_URLS.downstreamTls,
  EXTENSION_TYPE_URLS.tcpProxy,
  EXTENSION_TYPE_URLS.tlsInspector,
  EXTENSION_TYPE_URLS.localRateLimit,
]);

/** Extensions the inbound listeners implement (checked field by field in inbound-validation). */
const INBOUND_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.httpRbac,
  EXTENSION_TYPE_URLS.networkRbac,
  EXTENSION_TYPE_URLS.jwtAuthn,
  EXTENSION_TYPE_URLS.httpExtAuthz,
  EXTENSION_TYPE_URLS.networkExtAuthz,
  EXTENSION_TYPE_URLS.tcpProxy,
  EXTENSION_TYPE_URLS.downstreamTls,
  EXTENSION_TYPE_URLS.tlsInspector,
  EXTENSION_TYPE_URLS.localRateLimit,
]);

/** Fields of a Route (route.v3.Route) and its RouteAction this build implements. */
const SUPPORTED_ROUTE_FIELDS: ReadonlySet<string> = new Set([
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
]);
const SUPPORTED_ROUTE_ACTION_FIELDS: ReadonlySet<string> = new Set([
  'cluster',
  'weighted_clusters',
  'prefix_rewrite',
  'regex_rewrite',
  'host_rewrite_literal',
  'timeout',
  'retry_policy',
  'request_mirror_policies',
  'hash_policy',
]);
const SUPPORTED_RETRY_FIELDS: ReadonlySet<string> = new Set([
  'retry_on',
  'num_retries',
  'per_try_timeout',
  'retriable_status_codes',
]);
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
const SUPPORTED_LB_POLICIES: ReadonlySet<string> = new Set([
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'CLUSTER_PROVIDED',
  'RING_HASH',
  'MAGLEV',
]);
/** Fields of each hash_policy kind the consistent-hash balancer implements (see outbound/hash-lb.ts). */
const HASH_POLICY_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  header: new Set(['header_name']),
  cookie: new Set(['name', 'ttl', 'path']),
  connection_properties: new Set(['source_ip']),
  query_parameter: new Set(['name']),
};
/** Envoy's largest Maglev table. */
const MAGLEV_MAX_TABLE = 5_000_011;

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d += 1) if (n % d === 0) return false;
  return true;
}
const SUPPORTED_CLUSTER_TYPES: ReadonlySet<string> = new Set(['EDS', 'STATIC', 'ORIGINAL_DST']);

function unsupportedKeys(object: unknown, allowed: ReadonlySet<string>): string[] {
  if (!isRecord(object)) return [];
  return Object.keys(object).filter(
    (key) => !allowed.has(key) && !isOneofDiscriminator(object, key),
  );
}

/** Route-level features the outbound path does not implement yet (retries, timeouts, …). */
function collectUnsupportedRouteFields(resource: XdsResource, problems: string[]): void {
  const vhosts = Array.isArray(resource['virtual_hosts']) ? resource['virtual_hosts'] : [];
  vhosts.forEach((vhost: unknown, v) => {
    if (!isRecord(vhost)) return;
    for (const key of unsupportedKeys(vhost, new Set(['name', 'domains', 'routes']))) {
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

/** The local rate limit filters of a listener's HTTP connection managers, field by field. */
/** Every HTTP connection manager's path-normalisation and upgrade fields (request-head.ts). */
function hcmFieldProblems(listener: XdsResource): string[] {
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

function rateLimitFilterProblems(listener: XdsResource): string[] {
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
 * Every config regex — `safe_regex` string matchers (routes, headers, query
 * parameters, CORS origins, RBAC), `regex_rewrite` pattern and substitution —
 * is NACKed unless RE2 accepts it within the length and program-size bounds
 * (src/regex; Envoy rejects such a config too, so nothing half-applies).
 */
function collectRegexProblems(value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collectRegexProblems(v, `${path}[${String(i)}]`, problems);
    });
    return;
  }
  if (!isRecord(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const at = path === '' ? key : `${path}.${key}`;
    if ((key === 'safe_regex' || key === 'safe_regex_match') && isRecord(child)) {
      const regex = child['regex'];
      const problem =
        typeof regex === 'string' ? safeRegexProblem(regex) : 'regex must be a string';
      if (problem !== undefined) problems.push(`${at}.regex: ${problem}`);
      continue;
    }
    if (key === 'regex_rewrite' && isRecord(child)) {
      const pattern = rec(child['pattern'])['regex'];
      const substitution = child['substitution'];
      const problem =
        typeof pattern !== 'string'
          ? 'pattern.regex must be a string'
          : rewriteProblem(pattern, typeof substitution === 'string' ? substitution : '');
      if (problem !== undefined) problems.push(`${at}: ${problem}`);
      continue;
    }
    collectRegexProblems(child, at, problems);
  }
}

/** Cluster fields whose values this build must understand to honour them. */
function collectClusterProblems(resource: XdsResource, problems: string[]): void {
  const type = resource['type'];
  if (typeof type === 'string' && !SUPPORTED_CLUSTER_TYPES.has(type))
    problems.push(`unsupported cluster type ${type}`);
  const lb = resource['lb_policy'];
  if (typeof lb === 'string' && !SUPPORTED_LB_POLICIES.has(lb))
    problems.push(`unsupported lb_policy ${lb}`);
  for (const key of unsupportedKeys(
    resource['ring_hash_lb_config'],
    new Set(['minimum_ring_size', 'maximum_ring_size']),
  ))
    problems.push(`ring_hash_lb_config: unsupported field ${key}`);
  for (const key of unsupportedKeys(resource['maglev_lb_config'], new Set(['table_size'])))
    problems.push(`maglev_lb_config: unsupported field ${key}`);
  const table = isRecord(resource['maglev_lb_config'])
    ? resource['maglev_lb_config']['table_size']
    : undefined;
  if (isRecord(table)) {
    const size = Number(table['value']);
    if (!isPrime(size) || size > MAGLEV_MAX_TABLE)
      problems.push(
        `maglev_lb_config.table_size: ${String(table['value'])} must be a prime no larger than ${String(MAGLEV_MAX_TABLE)}`,
      );
  }
  if (resource['transport_socket'] !== undefined) parseUpstreamTls(resource, problems);
  collectProtocolOptionProblems(resource['typed_extension_protocol_options'], problems);
  problems.push(...healthCheckProblems(resource));
}

/**
 * Upstream HttpProtocolOptions: HTTP/1.1 or HTTP/2 explicitly, or the
 * downstream's protocol — with no tuning fields (none is implemented).
 */
function collectProtocolOptionProblems(options: unknown, problems: string[]): void {
  if (!isRecord(options)) return;
  for (const [key, value] of Object.entries(options)) {
    const at = `typed_extension_protocol_options[${key}]`;
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY) {
      problems.push(`${at}: unsupported protocol options`);
      continue;
    }
    for (const field of unsupportedKeys(
      value,
      new Set(['@type', 'explicit_http_config', 'use_downstream_protocol_config']),
    ))
      problems.push(`${at}: unsupported field ${field}`);
    const v = isRecord(value) ? value : {};
    for (const name of ['explicit_http_config', 'use_downstream_protocol_config']) {
      const config = v[name];
      if (!isRecord(config)) continue;
      for (const field of unsupportedKeys(
        config,
        new Set(['http_protocol_options', 'http2_protocol_options']),
      ))
        problems.push(`${at}.${name}: unsupported field ${field}`);
      for (const protocol of ['http_protocol_options', 'http2_protocol_options'])
        for (const field of unsupportedKeys(config[protocol], new Set()))
          problems.push(`${at}.${name}.${protocol}: unsupported field ${field}`);
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `key` is a oneof discriminator (protobufjs `oneofs: true`) (its value names a sibling field). */
function isOneofDiscriminator(object: Record<string, unknown>, key: string): boolean {
  const value = object[key];
  return typeof value === 'string' && value !== key && value in object;
}

/** Every `typed_config`/`typed_extension_protocol_options` @type must be one we implement. */
function collectUnsupportedExtensions(
  value: unknown,
  path: string,
  problems: string[],
  supported: ReadonlySet<string> = SUPPORTED_EXTENSIONS,
): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      collectUnsupportedExtensions(item, `${path}[${String(index)}]`, problems, supported);
    });
    return;
  }
  if (!isRecord(value)) return;
  const type = value['@type'];
  if (typeof type === 'string' && path !== '' && !supported.has(type)) {
    problems.push(`${path}: unsupported extension ${type}`);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    collectUnsupportedExtensions(child, path === '' ? key : `${path}.${key}`, problems, supported);
  }
}

/** The name a resource is keyed by (`cluster_name` for ClusterLoadAssignment). */
export function resourceName(kind: ResourceKind, resource: XdsResource): string {
  const name = kind === 'endpoint' ? resource['cluster_name'] : resource['name'];
  return typeof name === 'string' ? name : '';
}

/**
 * Returns every problem with one resource of `kind` (empty when the proxy can
 * apply it): wrong type URL, missing name, unsupported top-level fields and
 * unsupported extension configs anywhere inside.
 */
export function validateResource(kind: ResourceKind, resource: XdsResource): string[] {
  const problems: string[] = [];
  const name = resourceName(kind, resource);
  const label = `${kind} ${name === '' ? '(unnamed)' : JSON.stringify(name)}`;
  if (resource['@type'] !== TYPE_URLS[kind]) {
    problems.push(`${label}: type ${String(resource['@type'])} is not ${TYPE_URLS[kind]}`);
  }
  if (name === '') problems.push(`${label}: name is required`);
  for (const key of Object.keys(resource)) {
    if (SUPPORTED_FIELDS[kind].has(key) || isOneofDiscriminator(resource, key)) continue;
    problems.push(`${label}: unsupported field ${key}`);
  }
  const inbound = kind === 'listener' && name.startsWith('inbound|');
  const gateway = kind === 'listener' && /^0\.0\.0\.0_\d+$/.test(name);
  const capture = kind === 'listener' && isCaptureListener(name);
  // The DNS proxy's listener (src/proxy/dns): validated there, nothing else applies to it.
  if (kind === 'listener' && name === DNS_LISTENER)
    return [...problems, ...dnsListenerProblems(resource).map((p) => `${label}: ${p}`)];
  if (
    kind === 'listener' &&
    name !== '' &&
    name !== 'outbound' &&
    !inbound &&
    !gateway &&
    !capture
  ) {
    problems.push(
      `${label}: only the outbound, inbound|<port>, virtualOutbound, virtualInbound and 0.0.0.0_<port> (gateway) listeners are implemented in this build`,
    );
  }
  // Only capture listeners route by original destination; only inbound|<port> may stay unbound.
  if (kind === 'listener' && !capture && resource['use_original_dst'] !== undefined)
    problems.push(`${label}: use_original_dst is only implemented on capture listeners`);
  if (
    kind === 'listener' &&
    resource['bind_to_port'] !== undefined &&
    !(inbound && rec(resource['bind_to_port'])['value'] === false)
  )
    problems.push(`${label}: bind_to_port is only implemented as false on inbound|<port>`);
  if (kind === 'listener' && !capture)
    for (const key of ['listener_filters_timeout', 'continue_on_listener_filters_timeout'])
      if (resource[key] !== undefined)
        problems.push(`${label}: ${key} is only implemented on capture listeners`);
  const nested: string[] = [];
  if (kind === 'route') collectUnsupportedRouteFields(resource, nested);
  if (inbound) nested.push(...inboundListenerProblems(resource));
  if (gateway) nested.push(...gatewayListenerProblems(resource));
  if (capture) nested.push(...captureListenerProblems(resource));
  if (kind === 'cluster') collectClusterProblems(resource, nested);
  if (kind === 'listener') nested.push(...rateLimitFilterProblems(resource));
  if (kind === 'listener') nested.push(...hcmFieldProblems(resource));
  if (kind === 'route' || kind === 'listener') collectRegexProblems(resource, '', nested);
  for (const [key, child] of Object.entries(resource)) {
    if (key !== '@type')
      collectUnsupportedExtensions(
        child,
        key,
        nested,
        inbound
          ? INBOUND_EXTENSIONS
          : gateway
            ? GATEWAY_EXTENSIONS
            : capture
              ? CAPTURE_EXTENSIONS
              : SUPPORTED_EXTENSIONS,
      );
  }
  problems.push(...nested.map((problem) => `${label}: ${problem}`));
  return problems;
}
