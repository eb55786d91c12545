/**
 * VirtualService → RouteConfiguration, as Istio translates it
 * (istio.io/latest/docs/reference/config/networking/virtual-service/):
 * one Envoy route per HTTPMatchRequest (OR semantics), in order; matches on
 * uri, headers, queryParams, method, authority, scheme; weighted
 * destinations; redirect, directResponse, rewrite, timeout, retries, fault,
 * mirror, CORS and header operations. `sourceLabels`, `sourceNamespace`,
 * `port` and `gateways` in a match are decided here, per proxy.
 * Services without a VirtualService get Istio's default route.
 */
import {
  GRPC_STATUS_CODES,
  grpcStatusCode,
  type DestinationRule,
  type VirtualService,
} from '../../api/networking/index.js';
import {
  EXTENSION_TYPE_URLS,
  type Filter,
  type HashPolicy,
  type HeaderMatcher,
  type HeaderOperations,
  type HeaderValueOption,
  type RedirectAction,
  type Route,
  type RouteAction,
  type RouteConfiguration,
  type RouteMatch,
  type StringMatcher,
} from '../../xds/index.js';
import { isHttp, type ServicePortView, type ServiceView } from '../registry/service-registry.js';
import { destinationRuleFor, type CompileContext } from './clusters.js';
import {
  durationOf,
  fractionalPercent,
  outboundClusterName,
  protoDuration,
} from './envoy-values.js';
import type { ProxyNode } from './proxy-node.js';

type HttpRoute = NonNullable<VirtualService['spec']['http']>[number];
type HttpMatch = NonNullable<HttpRoute['match']>[number];
type StringMatch = NonNullable<HttpMatch['uri']>;
type Headers = NonNullable<HttpRoute['headers']>;

/** Istio's default retry policy for routes that set none (mesh default: 2 attempts). */
const DEFAULT_RETRY_ON =
  'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/** Where routes are being built: a sidecar (`mesh`) or a gateway `ns/name`. */
export interface RouteScope {
  readonly proxy: ProxyNode;
  /** `mesh`, or the gateways (`ns/name`) this listener serves. */
  readonly gateways: ReadonlySet<string>;
  /** The listener port being built. */
  readonly port: number;
}

function stringMatcher(m: StringMatch): StringMatcher {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex } };
}

/** Gateway names of a VirtualService, qualified `ns/name` (`mesh` stays `mesh`). */
export function qualifiedGateways(
  vs: VirtualService,
  names: readonly string[] | undefined,
): string[] {
  const ns = vs.metadata.namespace ?? 'default';
  const list = names === undefined || names.length === 0 ? ['mesh'] : names;
  return list.map((g) => (g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`));
}

function matchApplies(vs: VirtualService, match: HttpMatch, scope: RouteScope): boolean {
  if (match.port !== undefined && match.port !== scope.port) return false;
  if (match.gateways !== undefined && match.gateways.length > 0) {
    if (!qualifiedGateways(vs, match.gateways).some((g) => scope.gateways.has(g))) return false;
  }
  if (match.sourceLabels !== undefined) {
    if (!scope.gateways.has('mesh')) return false;
    for (const [k, v] of Object.entries(match.sourceLabels))
      if (scope.proxy.labels[k] !== v) return false;
  }
  if (match.sourceNamespace !== undefined && match.sourceNamespace !== scope.proxy.namespace)
    return false;
  return true;
}

function envoyMatch(match: HttpMatch | undefined): RouteMatch {
  const out: RouteMatch = {};
  const uri = match?.uri;
  if (uri === undefined) out.prefix = '/';
  else if ('exact' in uri) out.path = uri.exact;
  else if ('prefix' in uri) out.prefix = uri.prefix;
  else out.safe_regex = { regex: uri.regex };
  if (match?.ignoreUriCase === true) out.case_sensitive = { value: false };
  const headers: HeaderMatcher[] = [];
  for (const [name, m] of Object.entries(match?.headers ?? {}))
    headers.push({ name, string_match: stringMatcher(m) });
  // Istio: `regex: "*"` in withoutHeaders is not a regex but "the header is present".
  for (const [name, m] of Object.entries(match?.withoutHeaders ?? {}))
    headers.push(
      'regex' in m && m.regex === '*'
        ? { name, present_match: true, invert_match: true }
        : { name, string_match: stringMatcher(m), invert_match: true },
    );
  if (match?.method !== undefined)
    headers.push({ name: ':method', string_match: stringMatcher(match.method) });
  if (match?.authority !== undefined)
    headers.push({ name: ':authority', string_match: stringMatcher(match.authority) });
  if (match?.scheme !== undefined)
    headers.push({ name: ':scheme', string_match: stringMatcher(match.scheme) });
  if (headers.length > 0) out.headers = headers;
  const query = Object.entries(match?.queryParams ?? {}).map(([name, m]) => ({
    name,
    string_match: stringMatcher(m),
  }));
  if (query.length > 0) out.query_parameters = query;
  return out;
}

function headerOps(headers: Headers | undefined): HeaderOperations {
  const out: HeaderOperations = {};
  const side = (ops: Headers['request'], prefix: 'request' | 'response'): void => {
    if (ops === undefined) return;
    const add: HeaderValueOption[] = [
      ...Object.entries(ops.set ?? {}).map(([key, value]): HeaderValueOption => ({
        header: { key, value },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      })),
      ...Object.entries(ops.add ?? {}).map(([key, value]): HeaderValueOption => ({
        header: { key, value },
        append_action: 'APPEND_IF_EXISTS_OR_ADD',
      })),
    ];
    if (add.length > 0) out[`${prefix}_headers_to_add`] = add;
    if (ops.remove !== undefined && ops.remove.length > 0)
      out[`${prefix}_headers_to_remove`] = ops.remove;
  };
  side(headers?.request, 'request');
  side(headers?.response, 'response');
  return out;
}

const REDIRECT_CODES: Record<number, NonNullable<RedirectAction['response_code']>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** Resolves a destination to its cluster name; undefined when the host is unknown. */
function destinationCluster(
  context: CompileContext,
  vs: VirtualService,
  destination: { host: string; subset?: string; port?: { number: number } },
  scope: RouteScope,
): { name: string; service: ServiceView } | undefined {
  const ns = vs.metadata.namespace ?? 'default';
  const service = context.registry.resolveHost(destination.host, ns);
  if (service === undefined) return undefined;
  let port: ServicePortView | undefined;
  if (destination.port !== undefined)
    port = service.ports.find((p) => p.port === destination.port?.number);
  else if (service.ports.length === 1) port = service.ports[0];
  else port = service.ports.find((p) => p.port === scope.port);
  if (port === undefined) return undefined;
  return {
    name: outboundClusterName(port.port, destination.subset ?? '', service.hostname),
    service,
  };
}

type Destination = Parameters<typeof destinationCluster>[2];

/**
 * The cluster name a destination routes to: the resolved one (`resolved`, computed when not
 * given), else one built from the destination itself — a host Palisade does not know gets a
 * cluster without endpoints, so the route answers 503 as Istio's does.
 */
function destinationClusterName(
  context: CompileContext,
  vs: VirtualService,
  destination: Destination,
  scope: RouteScope,
  resolved = destinationCluster(context, vs, destination, scope),
): string {
  return (
    resolved?.name ??
    outboundClusterName(
      destination.port?.number ?? scope.port,
      destination.subset ?? '',
      destination.host,
    )
  );
}

function hashPolicy(dr: DestinationRule | undefined): HashPolicy[] | undefined {
  const ch = dr?.spec.trafficPolicy?.loadBalancer?.consistentHash;
  if (ch === undefined) return undefined;
  if (ch.httpHeaderName !== undefined) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie !== undefined)
    return [
      {
        cookie: {
          name: ch.httpCookie.name,
          ...(ch.httpCookie.path === undefined ? {} : { path: ch.httpCookie.path }),
          ...(ch.httpCookie.ttl === undefined ? {} : { ttl: durationOf(ch.httpCookie.ttl) }),
        },
      },
    ];
  if (ch.useSourceIp === true) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName !== undefined)
    return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

/** The Envoy action part (route/redirect/direct_response + per-filter config) of one HTTPRoute. */
function routeAction(
  context: CompileContext,
  vs: VirtualService,
  http: HttpRoute,
  scope: RouteScope,
): Omit<Route, 'name' | 'match'> | undefined {
  const out: Omit<Route, 'name' | 'match'> = { ...headerOps(http.headers) };
  if (http.redirect !== undefined) {
    const r = http.redirect;
    out.redirect = {
      ...(r.uri === undefined ? {} : { path_redirect: r.uri }),
      ...(r.authority === undefined ? {} : { host_redirect: r.authority }),
      ...(r.port === undefined ? {} : { port_redirect: r.port }),
      ...(r.scheme === undefined ? {} : { scheme_redirect: r.scheme }),
      response_code: REDIRECT_CODES[r.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY',
    };
    return out;
  }
  if (http.directResponse !== undefined) {
    const body = http.directResponse.body;
    out.direct_response = {
      status: http.directResponse.status,
      ...(body?.string === undefined ? {} : { body: { inline_string: body.string } }),
    };
    return out;
  }
  const destinations = http.route ?? [];
  const resolved = destinations.map((d) => ({
    d,
    c: destinationCluster(context, vs, d.destination, scope),
  }));
  const clusters = resolved.map(({ d, c }) => ({
    name: destinationClusterName(context, vs, d.destination, scope, c),
    weight: d.weight ?? (destinations.length === 1 ? 100 : 0),
  }));
  const action: RouteAction = {};
  if (clusters.length === 1 && clusters[0] !== undefined) action.cluster = clusters[0].name;
  else
    action.weighted_clusters = {
      clusters: clusters
        .filter((c) => c.weight > 0)
        .map((c) => ({ name: c.name, weight: { value: c.weight } })),
    };
  action.timeout = http.timeout === undefined ? protoDuration(0) : durationOf(http.timeout);
  const retries = http.retries;
  if (retries === undefined || (retries.attempts ?? 0) > 0 || retries.perTryTimeout !== undefined) {
    const attempts = retries?.attempts ?? 2;
    if (attempts > 0) {
      const retryOn = retries?.retryOn ?? DEFAULT_RETRY_ON;
      action.retry_policy = {
        retry_on: retryOn,
        num_retries: { value: attempts },
        ...(retries?.perTryTimeout === undefined
          ? {}
          : { per_try_timeout: durationOf(retries.perTryTimeout) }),
        ...(retryOn.includes('retriable-status-codes') ? { retriable_status_codes: [503] } : {}),
      };
    }
  }
  if (http.rewrite?.uri !== undefined) action.prefix_rewrite = http.rewrite.uri;
  if (http.rewrite?.uriRegexRewrite !== undefined)
    action.regex_rewrite = {
      pattern: { regex: http.rewrite.uriRegexRewrite.match },
      substitution: http.rewrite.uriRegexRewrite.rewrite,
    };
  if (http.rewrite?.authority !== undefined) action.host_rewrite_literal = http.rewrite.authority;
  const mirrors = [
    ...(http.mirror === undefined
      ? []
      : [{ destination: http.mirror, percentage: http.mirrorPercentage }]),
    ...(http.mirrors ?? []),
  ];
  if (mirrors.length > 0)
    action.request_mirror_policies = mirrors.map((m) => ({
      cluster: destinationClusterName(context, vs, m.destination, scope),
      runtime_fraction: { default_value: fractionalPercent(m.percentage?.value ?? 100) },
    }));
  const first = resolved[0]?.c;
  const hash =
    first === undefined
      ? undefined
      : hashPolicy(destinationRuleFor(context, first.service, scope.proxy.namespace));
  if (hash !== undefined) action.hash_policy = hash;
  if (clusters.length === 1) Object.assign(out, headerOps(destinations[0]?.headers));
  out.route = action;
  const perFilter: Record<string, Record<string, unknown>> = {};
  if (http.fault !== undefined) {
    const f = http.fault;
    const fault: Record<string, unknown> = { '@type': EXTENSION_TYPE_URLS.fault };
    if (f.delay?.fixedDelay !== undefined)
      fault['delay'] = {
        fixed_delay: durationOf(f.delay.fixedDelay),
        percentage: fractionalPercent(f.delay.percentage?.value ?? f.delay.percent ?? 100),
      };
    if (f.abort?.httpStatus !== undefined)
      fault['abort'] = {
        http_status: f.abort.httpStatus,
        percentage: fractionalPercent(f.abort.percentage?.value ?? 100),
      };
    else if (f.abort?.grpcStatus !== undefined)
      fault['abort'] = {
        grpc_status: grpcStatusCode(f.abort.grpcStatus) ?? GRPC_STATUS_CODES['UNKNOWN'],
        percentage: fractionalPercent(f.abort.percentage?.value ?? 100),
      };
    perFilter['envoy.filters.http.fault'] = fault;
  }
  if (http.corsPolicy !== undefined) {
    const c = http.corsPolicy;
    perFilter['envoy.filters.http.cors'] = {
      '@type': EXTENSION_TYPE_URLS.corsPolicy,
      allow_origin_string_match: (c.allowOrigins ?? []).map(stringMatcher),
      ...(c.allowMethods === undefined ? {} : { allow_methods: c.allowMethods.join(',') }),
      ...(c.allowHeaders === undefined ? {} : { allow_headers: c.allowHeaders.join(',') }),
      ...(c.exposeHeaders === undefined ? {} : { expose_headers: c.exposeHeaders.join(',') }),
      ...(c.maxAge === undefined
        ? {}
        : { max_age: String(Math.floor(Number(durationOf(c.maxAge).seconds))) }),
      ...(c.allowCredentials === undefined
        ? {}
        : { allow_credentials: { value: c.allowCredentials } }),
      // Istio: IGNORE answers unmatched preflights itself (no CORS headers) instead of forwarding them.
      ...(c.unmatchedPreflights === 'IGNORE'
        ? { forward_not_matching_preflights: { value: false } }
        : {}),
    };
  }
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

/** Envoy routes for one VirtualService's http section in a scope. */
export function translateHttpRoutes(
  context: CompileContext,
  vs: VirtualService,
  scope: RouteScope,
): Route[] {
  const routes: Route[] = [];
  (vs.spec.http ?? []).forEach((http, i) => {
    const action = routeAction(context, vs, http, scope);
    if (action === undefined) return;
    const name =
      http.name ?? `${vs.metadata.namespace ?? 'default'}.${vs.metadata.name}.${String(i)}`;
    const matches = http.match === undefined || http.match.length === 0 ? [undefined] : http.match;
    for (const match of matches) {
      if (match !== undefined && !matchApplies(vs, match, scope)) continue;
      routes.push({ name, match: envoyMatch(match), ...action });
    }
  });
  return routes;
}

/** Istio's default route to a service port (no VirtualService). */
export function defaultRoute(
  context: CompileContext,
  service: ServiceView,
  port: number,
  fromNamespace: string,
): Route {
  // Istio's default route carries the DestinationRule's consistent-hash policy too.
  const hash = hashPolicy(destinationRuleFor(context, service, fromNamespace));
  return {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster: outboundClusterName(port, '', service.hostname),
      timeout: protoDuration(0),
      retry_policy: {
        retry_on: DEFAULT_RETRY_ON,
        num_retries: { value: 2 },
        retriable_status_codes: [503],
      },
      ...(hash === undefined ? {} : { hash_policy: hash }),
    },
  };
}

/** Domains a sidecar answers for a service: every short form, with and without the port. */
export function serviceDomains(
  service: ServiceView,
  port: number,
  proxyNamespace: string,
): string[] {
  const names = new Set<string>([service.hostname]);
  if (service.source === 'Service') {
    names.add(`${service.name}.${service.namespace}`);
    names.add(`${service.name}.${service.namespace}.svc`);
    if (service.namespace === proxyNamespace) names.add(service.name);
  }
  // The VIPs too (Istio adds them): a captured client calling http://<vip>:<port> sends them as Host.
  for (const vip of service.addresses ?? []) names.add(vip.includes(':') ? `[${vip}]` : vip);
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${String(port)}`);
  return out;
}

/** VirtualServices that bind to one of `gateways` and name `service` (or are bound by host). */
export function virtualServicesFor(
  context: CompileContext,
  service: ServiceView,
  gateways: ReadonlySet<string>,
): VirtualService[] {
  const out: VirtualService[] = [];
  for (const o of context.snapshot.ofKind('VirtualService')) {
    const vs = o.resource as VirtualService;
    if (!qualifiedGateways(vs, vs.spec.gateways).some((g) => gateways.has(g))) continue;
    const ns = vs.metadata.namespace ?? 'default';
    if (
      (vs.spec.hosts ?? []).some(
        (h) => context.registry.resolveHost(h, ns)?.hostname === service.hostname,
      )
    )
      out.push(vs);
  }
  return out;
}

/** True when any route in the configs carries per-route config for `filter`. */
export function usesFilter(routeConfigs: Iterable<RouteConfiguration>, filter: string): boolean {
  for (const rc of routeConfigs)
    for (const vh of rc.virtual_hosts ?? [])
      for (const r of vh.routes ?? []) {
        const per = r.typed_per_filter_config;
        if (per !== undefined && filter in per) return true;
      }
  return false;
}

/**
 * The HTTP filters an HCM needs ahead of the router for the per-route configs
 * its routes carry, in Istio's order (CORS, then fault): a filter is added
 * only when a route uses it, so proxies without the feature never see it.
 */
export function routeHttpFilters(routeConfigs: Iterable<RouteConfiguration>): Filter[] {
  const configs = [...routeConfigs];
  const filters: Filter[] = [];
  if (usesFilter(configs, 'envoy.filters.http.cors'))
    filters.push({
      name: 'envoy.filters.http.cors',
      typed_config: { '@type': EXTENSION_TYPE_URLS.cors },
    });
  if (usesFilter(configs, 'envoy.filters.http.fault'))
    filters.push({
      name: 'envoy.filters.http.fault',
      typed_config: { '@type': EXTENSION_TYPE_URLS.fault },
    });
  return filters;
}

/** Whether a port is routed as HTTP (else opaque TCP). */
export function httpPort(port: ServicePortView): boolean {
  return isHttp(port.protocol);
}

/** A gateway's L4 route: the SNI names it serves (TLS passthrough) and its tcp_proxy filter. */
export interface L4Route {
  readonly sniHosts: readonly string[];
  readonly filter: Filter;
}

/**
 * A VirtualService's `tls` (passthrough, matched on SNI) or `tcp` routes in a
 * gateway scope, as tcp_proxy filters; a route whose matches name another port
 * or gateway is skipped, as in Istio.
 */
export function translateL4Routes(
  context: CompileContext,
  vs: VirtualService,
  scope: RouteScope,
  kind: 'tls' | 'tcp',
): L4Route[] {
  const routes =
    kind === 'tls'
      ? (vs.spec.tls ?? [])
      : (vs.spec.tcp ?? []).map((r) => ({ ...r, match: r.match ?? [] }));
  const out: L4Route[] = [];
  for (const route of routes) {
    const matches = route.match.filter((m) => matchApplies(vs, m, scope));
    if (route.match.length > 0 && matches.length === 0) continue;
    const destinations = (route.route ?? []).map((d) => ({
      name: destinationClusterName(context, vs, d.destination, scope),
      weight: d.weight ?? (route.route?.length === 1 ? 100 : 0),
    }));
    const first = destinations[0];
    if (first === undefined) continue;
    out.push({
      sniHosts: [
        ...new Set(matches.flatMap((m) => (m as { sniHosts?: readonly string[] }).sniHosts ?? [])),
      ],
      filter: {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: {
          '@type': EXTENSION_TYPE_URLS.tcpProxy,
          stat_prefix: first.name,
          ...(destinations.length === 1
            ? { cluster: first.name }
            : {
                weighted_clusters: {
                  clusters: destinations
                    .filter((d) => d.weight > 0)
                    .map((d) => ({ name: d.name, weight: d.weight })),
                },
              }),
        },
      },
    });
  }
  return out;
}
