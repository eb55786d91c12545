/**
 * Validation of xDS resources before the proxy applies them. The proxy
 * implements a defined subset of Envoy's API (docs/xds-contract.md); a field or
 * filter outside that subset is a reason to NACK the whole response, never to
 * ignore it (DESIGN §3, STYLE §3: fail closed on what we do not support).
 */
import { EXTENSION_TYPE_URLS, TYPE_URLS, type ResourceKind } from '../../xds/index.js';

/** A decoded xDS resource (proto-loader plain object, `@type` set). */
export type XdsResource = Record<string, unknown>;

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
    'typed_extension_protocol_options',
    'common_lb_config',
    'ring_hash_lb_config',
    'least_request_lb_config',
    'metadata',
  ]),
  endpoint: new Set(['@type', 'cluster_name', 'endpoints', 'policy']),
  secret: new Set(['@type', 'name', 'tls_certificate', 'validation_context']),
};

/**
 * Extensions this build implements. Others (RBAC, jwt_authn, fault, CORS, local
 * rate limit, TLS contexts, tcp_proxy) are NACKed until their filter lands:
 * accepting an RBAC filter and not enforcing it would fail open.
 */
const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
]);

/** Fields of a Route (route.v3.Route) and its RouteAction this build implements. */
const SUPPORTED_ROUTE_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'match',
  'route',
  'redirect',
  'direct_response',
]);
const SUPPORTED_ROUTE_ACTION_FIELDS: ReadonlySet<string> = new Set([
  'cluster',
  'weighted_clusters',
  'prefix_rewrite',
]);

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
      }
    });
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `key` is a proto-loader oneof discriminator (its value names a sibling field). */
function isOneofDiscriminator(object: Record<string, unknown>, key: string): boolean {
  const value = object[key];
  return typeof value === 'string' && value !== key && value in object;
}

/** Every `typed_config`/`typed_extension_protocol_options` @type must be one we implement. */
function collectUnsupportedExtensions(value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      collectUnsupportedExtensions(item, `${path}[${String(index)}]`, problems);
    });
    return;
  }
  if (!isRecord(value)) return;
  const type = value['@type'];
  if (typeof type === 'string' && path !== '' && !SUPPORTED_EXTENSIONS.has(type)) {
    problems.push(`${path}: unsupported extension ${type}`);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    collectUnsupportedExtensions(child, path === '' ? key : `${path}.${key}`, problems);
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
  if (kind === 'listener' && name !== '' && name !== 'outbound') {
    problems.push(`${label}: only the outbound listener is implemented in this build`);
  }
  const nested: string[] = [];
  if (kind === 'route') collectUnsupportedRouteFields(resource, nested);
  for (const [key, child] of Object.entries(resource)) {
    if (key !== '@type') collectUnsupportedExtensions(child, key, nested);
  }
  problems.push(...nested.map((problem) => `${label}: ${problem}`));
  return problems;
}
