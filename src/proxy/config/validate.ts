/**
 * Validation of xDS resources before the proxy applies them. The proxy
 * implements a defined subset of Envoy's API (docs/xds-contract.md); a field or
 * filter outside that subset is a reason to NACK the whole response, never to
 * ignore it (DESIGN §3, STYLE §3: fail closed on what we do not support).
 */
import {
  allFieldsOf,
  rec,
  TYPE_URLS,
  type Cluster,
  type ClusterLoadAssignment,
  type Listener,
  type ResourceKind,
  type RouteConfiguration,
} from '../../xds/index.js';
import { gatewayListenerProblems } from '../gateway/gateway-validation.js';
import { inboundListenerProblems } from '../inbound/inbound-validation.js';
import {
  CAPTURE_EXTENSIONS,
  captureListenerProblems,
  isCaptureListener,
} from '../capture/capture-validation.js';
import type { XdsResource } from '../xds-client/xds-resource.js';
// Not dns/index.js: that pulls the DNS server and dns-packet into every proxy (idle RSS, issue 18).
import { DNS_LISTENER } from '../dns/dns-table.js';
import { dnsListenerProblems } from '../dns/dns-validation.js';
import { collectClusterProblems } from './cluster-config.js';
import {
  collectRegexProblems,
  collectUnsupportedExtensions,
  GATEWAY_EXTENSIONS,
  INBOUND_EXTENSIONS,
  isOneofDiscriminator,
  SUPPORTED_EXTENSIONS,
} from './fields.js';
import {
  hcmFieldProblems,
  outboundListenerProblems,
  rateLimitFilterProblems,
} from './listener-config.js';
import { collectUnsupportedRouteFields } from './route-config.js';

/** Top-level fields of each resource kind this build implements. */
const SUPPORTED_FIELDS: Record<ResourceKind, ReadonlySet<string>> = {
  // Transparent capture's fields (use_original_dst, bind_to_port, listener_filters_timeout,
  // continue_on_listener_filters_timeout) are checked per listener below.
  listener: allFieldsOf<Listener>()(
    '@type',
    'name',
    'address',
    'filter_chains',
    'listener_filters',
    'traffic_direction',
    'default_filter_chain',
    'stat_prefix',
    'use_original_dst',
    'bind_to_port',
    'listener_filters_timeout',
    'continue_on_listener_filters_timeout',
  ),
  route: allFieldsOf<RouteConfiguration>()('@type', 'name', 'virtual_hosts', 'validate_clusters'),
  cluster: allFieldsOf<Cluster>()(
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
  ),
  endpoint: allFieldsOf<ClusterLoadAssignment>()('@type', 'cluster_name', 'endpoints', 'policy'),
  secret: new Set(['@type', 'name', 'tls_certificate', 'validation_context']),
};

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
  if (kind === 'listener' && name === 'outbound')
    nested.push(...outboundListenerProblems(resource));
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
