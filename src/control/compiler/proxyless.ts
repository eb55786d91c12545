/**
 * Config for proxyless gRPC clients (`@grpc/grpc-js-xds` and the other gRPC
 * xDS implementations, gRFCs A27/A28/A31/A33/A44): the client asks for the
 * Listener named by its target (`xds:///reviews.default.svc.cluster.local:9080`
 * → `reviews.default.svc.cluster.local:9080`), follows its `api_listener`
 * HttpConnectionManager to a RouteConfiguration over RDS, then to EDS
 * clusters. Istio's `grpc` generator serves the same shape.
 *
 * What gRPC does not implement is adapted the way Istio adapts it, never sent
 * as-is (gRPC NACKs whole resources for it): redirect and direct-response
 * routes are left out, the route `timeout` becomes `max_stream_duration`,
 * load balancing other than ROUND_ROBIN/RING_HASH becomes ROUND_ROBIN, and
 * clusters carry no transport socket (the client's own channel credentials
 * decide TLS; mesh mTLS for proxyless clients needs certificate providers in
 * their bootstrap, which Palisade does not hand out yet).
 */
import { asResource, EXTENSION_TYPE_URLS, TYPE_URLS, type Cluster } from '../../xds/index.js';
import type { ServiceView } from '../registry/service-registry.js';
import { buildServiceClusters, type CompileContext } from './clusters.js';
import { ROUTER_FILTER } from './envoy-values.js';
import type { ProxyNode } from './proxy-node.js';
import {
  defaultRoute,
  httpPort,
  serviceDomains,
  translateHttpRoutes,
  virtualServicesFor,
} from './routes.js';

/** Resources of one proxyless client, by kind and name (no secrets: it holds no SVID from us). */
export interface ProxylessResources {
  readonly listener: Map<string, Record<string, unknown>>;
  readonly route: Map<string, Record<string, unknown>>;
  readonly cluster: Map<string, Record<string, unknown>>;
  readonly endpoint: Map<string, Record<string, unknown>>;
}

const GRPC_LB_POLICIES = new Set(['ROUND_ROBIN', 'RING_HASH']);

/** Cluster copies with what gRPC cannot take removed; shared like the originals. */
const adaptedClusters = new WeakMap<object, Cluster>();

function adaptCluster(cluster: Cluster): Cluster {
  let out = adaptedClusters.get(cluster);
  if (out === undefined) {
    const {
      transport_socket: _socket,
      ring_hash_lb_config: _ring,
      // gRPC clients speak HTTP/2 to every backend; the Envoy upstream-protocol option is not theirs.
      typed_extension_protocol_options: _options,
      ...rest
    } = cluster;
    out = rest;
    if (!GRPC_LB_POLICIES.has(String(out.lb_policy))) out.lb_policy = 'ROUND_ROBIN';
    adaptedClusters.set(cluster, out);
  }
  return out;
}

/** A route gRPC can take: forwarding only, timeout as max_stream_duration. */
function adaptRoute(route: Record<string, unknown>): Record<string, unknown> | undefined {
  const action = route['route'];
  if (typeof action !== 'object' || action === null) return undefined;
  const {
    timeout,
    prefix_rewrite: _p,
    regex_rewrite: _r,
    host_rewrite_literal: _h,
    request_mirror_policies: _m,
    ...rest
  } = action as Record<string, unknown>;
  const out: Record<string, unknown> = { ...rest };
  const t = timeout as { seconds?: string; nanos?: number } | undefined;
  if (t !== undefined && (Number(t.seconds ?? 0) > 0 || (t.nanos ?? 0) > 0))
    out['max_stream_duration'] = { max_stream_duration: t };
  const {
    request_headers_to_add: _a,
    request_headers_to_remove: _b,
    response_headers_to_add: _c,
    response_headers_to_remove: _d,
    typed_per_filter_config: perFilter,
    ...routeRest
  } = route;
  const fault = (perFilter as Record<string, unknown> | undefined)?.['envoy.filters.http.fault'];
  return {
    ...routeRest,
    route: out,
    ...(fault === undefined
      ? {}
      : { typed_per_filter_config: { 'envoy.filters.http.fault': fault } }),
  };
}

/** The listener name a gRPC client asks for: `<host>:<port>`. */
export function proxylessListenerName(hostname: string, port: number): string {
  return `${hostname}:${String(port)}`;
}

function apiListener(name: string): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.listener,
    name,
    api_listener: {
      api_listener: {
        '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
        stat_prefix: name,
        rds: { route_config_name: name, config_source: { ads: {} } },
        http_filters: [
          {
            name: 'envoy.filters.http.fault',
            typed_config: { '@type': EXTENSION_TYPE_URLS.fault },
          },
          ROUTER_FILTER,
        ],
      },
    },
  };
}

/**
 * Everything a proxyless client in `proxy.namespace` may resolve: one api
 * listener and route config per visible HTTP/gRPC service port, and their
 * clusters and endpoints. `visible` is the Sidecar-scoped service list.
 */
export function compileProxyless(
  context: CompileContext,
  proxy: ProxyNode,
  visible: readonly ServiceView[],
): ProxylessResources {
  const out: ProxylessResources = {
    listener: new Map(),
    route: new Map(),
    cluster: new Map(),
    endpoint: new Map(),
  };
  const mesh = new Set(['mesh']);
  for (const service of visible)
    for (const port of service.ports) {
      if (!httpPort(port)) continue;
      for (const built of buildServiceClusters(context, proxy, service, port)) {
        const cluster = adaptCluster(built.cluster);
        // Opaque from here on: encoded as an Any by the ADS server.
        out.cluster.set(cluster.name, asResource(cluster));
        if (built.assignment !== undefined)
          out.endpoint.set(String(built.assignment.cluster_name), asResource(built.assignment));
      }
      const name = proxylessListenerName(service.hostname, port.port);
      const routes: Record<string, unknown>[] = [];
      for (const vs of virtualServicesFor(context, service, mesh))
        for (const r of translateHttpRoutes(context, vs, {
          proxy,
          gateways: mesh,
          port: port.port,
        })) {
          const adapted = adaptRoute(r);
          if (adapted !== undefined) routes.push(adapted);
        }
      if (routes.length === 0) {
        const adapted = adaptRoute(defaultRoute(context, service, port.port, proxy.namespace));
        if (adapted !== undefined) routes.push(adapted);
      }
      out.listener.set(name, apiListener(name));
      out.route.set(name, {
        '@type': TYPE_URLS.route,
        name,
        virtual_hosts: [
          {
            name,
            domains: [...serviceDomains(service, port.port, proxy.namespace), '*'],
            routes,
          },
        ],
      });
    }
  return out;
}
