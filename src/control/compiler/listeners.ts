/**
 * Sidecar listeners (docs/xds-contract.md "Sidecar listeners"):
 * - `inbound|<port>` per workload port at `<instance-ip>:<port>`, with filter
 *   chains per PeerAuthentication mode (STRICT: TLS only; PERMISSIVE: TLS and
 *   plaintext, told apart by the tls_inspector; DISABLE: plaintext only) and
 *   the policy filters: jwt_authn, RBAC (CUSTOM-as-deny, DENY, ALLOW), router
 *   for HTTP ports; network RBAC and tcp_proxy for TCP ports.
 * - `outbound` at `<instance-ip>:15001`, the explicit HTTP proxy, one filter
 *   chain per service port naming RDS route config `<port>`, and a last
 *   catch-all chain for traffic to ports the mesh does not know.
 */
import type {
  AuthorizationPolicy,
  PeerAuthentication,
  RequestAuthentication,
} from '../../api/security/index.js';
import {
  applicablePolicies,
  resolvePeerAuthentication,
  EXT_AUTHZ_MATCH_PREFIX,
  EXT_AUTHZ_STAT_PREFIX,
  translateAuthorizationPolicies,
  translateRequestAuthentications,
  type AuthorizationFilters,
  type AuthorizationTranslationOptions,
  type ExtAuthzGrpcProvider,
  type ExtAuthzHttpProvider,
  type ExtensionProvider,
  type JwtAuthenticationConfig,
  type PathNormalization,
} from '../../policy/index.js';
import {
  EXTENSION_TYPE_URLS,
  TYPE_URLS,
  type Filter,
  type FilterChain,
  type HttpConnectionManager,
  type Listener,
  type TransportSocket,
} from '../../xds/index.js';
import type { PortProtocol } from '../registry/service-registry.js';
import { isHttp } from '../registry/service-registry.js';
import type { CompileContext } from './clusters.js';
import { networkPolicyFilter } from './network-policy.js';
import {
  inboundClusterName,
  ROUTER_FILTER,
  SECRET_DEFAULT,
  SECRET_ROOTCA,
  sdsSecret,
} from './envoy-values.js';
import type { ProxyNode } from './proxy-node.js';

/** Port of the outbound explicit proxy (Istio's outbound capture port). */
export const OUTBOUND_PORT = 15001;

/** The route config name of the outbound catch-all chain. */
export const CATCH_ALL_ROUTE = 'allow_any';

/**
 * The fields Istio's pilot sets on every HttpConnectionManager it builds
 * (pilot/pkg/networking/core/listener_builder.go, buildHTTPConnectionManager):
 * the path normalisation of meshConfig.pathNormalization — escaped slashes
 * KEEP_UNCHANGED, then NONE: normalize_path false; BASE (and DEFAULT):
 * normalize_path; MERGE_SLASHES: and merge_slashes; DECODE_AND_MERGE_SLASHES:
 * and `%2F`/`%5C` UNESCAPE_AND_FORWARD — and websocket as the one upgrade type.
 */
export function hcmMeshFields(normalization: PathNormalization | undefined): HttpConnectionManager {
  const level = normalization ?? 'BASE';
  return {
    normalize_path: { value: level !== 'NONE' },
    ...(level === 'MERGE_SLASHES' || level === 'DECODE_AND_MERGE_SLASHES'
      ? { merge_slashes: true }
      : {}),
    path_with_escaped_slashes_action:
      level === 'DECODE_AND_MERGE_SLASHES' ? 'UNESCAPE_AND_FORWARD' : 'KEEP_UNCHANGED',
    upgrade_configs: [{ upgrade_type: 'websocket' }],
  };
}

function securityObjects<T>(context: CompileContext, kind: string): T[] {
  return context.snapshot.ofKind(kind).map((o) => o.resource as T);
}

/** DownstreamTlsContext requiring a client certificate from the mesh CA (mTLS). */
export function meshDownstreamTls(): TransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.downstreamTls,
      require_client_certificate: { value: true },
      common_tls_context: {
        alpn_protocols: ['h2', 'http/1.1'],
        tls_certificate_sds_secret_configs: [sdsSecret(SECRET_DEFAULT)],
        validation_context_sds_secret_config: sdsSecret(SECRET_ROOTCA),
      },
    },
  };
}

/** The RBAC filters (HTTP or network) in Envoy's order, as the listeners carry them. */
export function rbacFilters(filters: AuthorizationFilters, http: boolean): Filter[] {
  const out: Filter[] = [];
  for (const config of [filters.custom, filters.deny, filters.allow, filters.audit]) {
    if (config === undefined) continue;
    out.push(
      http
        ? {
            name: 'envoy.filters.http.rbac',
            typed_config: { '@type': EXTENSION_TYPE_URLS.httpRbac, ...config },
          }
        : {
            name: 'envoy.filters.network.rbac',
            typed_config: {
              '@type': EXTENSION_TYPE_URLS.networkRbac,
              stat_prefix: 'tcp.',
              ...config,
            },
          },
    );
  }
  return out;
}

/**
 * The envoy.filters.http.ext_authz filter of an envoyExtAuthzHttp provider, as Istio's
 * extauthz builder (pilot/pkg/security/authz/builder/extauthz.go) emits it: enabled only
 * when the preceding RBAC filter's shadow rules (stat prefix `istio_ext_authz_`) matched a
 * CUSTOM rule, i.e. when `istio_ext_authz_shadow_effective_policy_id` starts with
 * `istio-ext-authz`.
 */
export function extAuthzHttpFilter(p: ExtAuthzHttpProvider): Filter {
  const host = providerHost(p.service);
  const headers = (names: readonly string[]) =>
    names.length === 0 ? undefined : { patterns: names.map((exact) => ({ exact })) };
  const request = headers(p.includeRequestHeadersInCheck);
  const upstream = headers(p.headersToUpstreamOnAllow);
  const client = headers(p.headersToDownstreamOnDeny);
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.httpExtAuthz,
      status_on_error: { code: p.statusOnError },
      failure_mode_allow: p.failOpen,
      transport_api_version: 'V3',
      http_service: {
        path_prefix: p.pathPrefix,
        server_uri: {
          uri: `http://${host}:${String(p.port)}`,
          cluster: `outbound|${String(p.port)}||${host}`,
          timeout: { seconds: Math.floor(p.timeoutMs / 1000), nanos: (p.timeoutMs % 1000) * 1e6 },
        },
        ...(request === undefined ? {} : { authorization_request: { allowed_headers: request } }),
        ...(upstream === undefined && client === undefined
          ? {}
          : {
              authorization_response: {
                ...(upstream === undefined ? {} : { allowed_upstream_headers: upstream }),
                ...(client === undefined ? {} : { allowed_client_headers: client }),
              },
            }),
      },
      filter_enabled_metadata: enabledMetadata(),
    },
  };
}

/**
 * The ext_authz filter of an envoyExtAuthzGrpc provider (Istio's generateGRPCConfig): the
 * `envoy.service.auth.v3.Authorization/Check` service at the provider's cluster, with `|`
 * in the authority replaced by `_.` as Istio does.
 */
export function extAuthzGrpcFilter(p: ExtAuthzGrpcProvider): Filter {
  const host = providerHost(p.service);
  const cluster = `outbound|${String(p.port)}||${host}`;
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.httpExtAuthz,
      status_on_error: { code: p.statusOnError },
      failure_mode_allow: p.failOpen,
      transport_api_version: 'V3',
      grpc_service: {
        envoy_grpc: { cluster_name: cluster, authority: cluster.replaceAll('|', '_.') },
        timeout: { seconds: Math.floor(p.timeoutMs / 1000), nanos: (p.timeoutMs % 1000) * 1e6 },
      },
      filter_enabled_metadata: enabledMetadata(),
    },
  };
}

/**
 * The envoy.filters.network.ext_authz filter of an envoyExtAuthzGrpc provider, as Istio's
 * generateGRPCConfig builds it for TCP: the same gRPC service, stat prefix `tcp.`, enabled by
 * the preceding network RBAC filter's `istio_ext_authz_` shadow rules. Istio builds no TCP
 * filter for an envoyExtAuthzHttp provider (an HTTP check needs an HTTP request).
 */
export function extAuthzNetworkFilter(p: ExtAuthzGrpcProvider): Filter {
  const http = extAuthzGrpcFilter(p);
  return {
    name: 'envoy.filters.network.ext_authz',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.networkExtAuthz,
      stat_prefix: 'tcp.',
      failure_mode_allow: p.failOpen,
      transport_api_version: 'V3',
      grpc_service: http.typed_config?.['grpc_service'],
      filter_enabled_metadata: enabledMetadata('envoy.filters.network.rbac'),
    },
  };
}

function enabledMetadata(filter = 'envoy.filters.http.rbac'): object {
  return {
    filter,
    path: [{ key: `${EXT_AUTHZ_STAT_PREFIX}shadow_effective_policy_id` }],
    value: { string_match: { prefix: EXT_AUTHZ_MATCH_PREFIX } },
  };
}

/** `ns/name` → the service's hostname; a hostname or IP as is. */
function providerHost(service: string): string {
  const [ns, name] = service.split('/');
  return name === undefined ? service : `${name}.${ns ?? ''}.svc.cluster.local`;
}

/** The HTTP filters of the CUSTOM policies with an enforceable provider: the trigger RBAC, then ext_authz. */
export function extAuthzHttpFilters(
  filters: AuthorizationFilters,
  providers: readonly ExtensionProvider[] | undefined,
): Filter[] {
  const ext = filters.extAuthz;
  const provider = providers?.find((p) => p.name === ext?.provider);
  if (ext === undefined || provider === undefined) return [];
  const filter =
    provider.envoyExtAuthzHttp !== undefined
      ? extAuthzHttpFilter(provider.envoyExtAuthzHttp)
      : provider.envoyExtAuthzGrpc !== undefined
        ? extAuthzGrpcFilter(provider.envoyExtAuthzGrpc)
        : undefined;
  if (filter === undefined) return [];
  return [
    {
      name: 'envoy.filters.http.rbac',
      typed_config: { '@type': EXTENSION_TYPE_URLS.httpRbac, ...ext.rbac },
    },
    filter,
  ];
}

/**
 * The network filters of the CUSTOM policies on a TCP port with a gRPC provider: the trigger
 * network RBAC (shadow rules only), then the network ext_authz filter. Nothing for any other
 * provider: the translation then enforced its CUSTOM rules as DENY (fail closed).
 */
export function extAuthzNetworkFilters(
  filters: AuthorizationFilters,
  providers: readonly ExtensionProvider[] | undefined,
): Filter[] {
  const ext = filters.extAuthz;
  const grpc = providers?.find((p) => p.name === ext?.provider)?.envoyExtAuthzGrpc;
  if (ext === undefined || grpc === undefined) return [];
  return [
    {
      name: 'envoy.filters.network.rbac',
      typed_config: { '@type': EXTENSION_TYPE_URLS.networkRbac, stat_prefix: 'tcp.', ...ext.rbac },
    },
    extAuthzNetworkFilter(grpc),
  ];
}

/** The jwt_authn HTTP filter as the listeners carry it. */
export function jwtAuthnFilter(jwt: JwtAuthenticationConfig): Filter {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: { '@type': EXTENSION_TYPE_URLS.jwtAuthn, ...jwt },
  };
}

/**
 * The security HTTP filters for a proxy's workload, in Envoy's order:
 * jwt_authn (RequestAuthentications), then RBAC (CUSTOM-as-deny, DENY, ALLOW,
 * AUDIT). Sidecars run them on inbound ports; gateways (selected by their
 * labels, as Istio's ingress policies are) before routing.
 */
export function policyHttpFilters(context: CompileContext, proxy: ProxyNode): Filter[] {
  const workload = { namespace: proxy.namespace, labels: proxy.labels };
  const out: Filter[] = [];
  const jwt = translateRequestAuthentications(
    applicablePolicies(
      securityObjects<RequestAuthentication>(context, 'RequestAuthentication'),
      workload,
      context.rootNamespace,
    ),
  );
  if (jwt !== undefined) out.push(jwtAuthnFilter(jwt));
  const authz = applicablePolicies(
    securityObjects<AuthorizationPolicy>(context, 'AuthorizationPolicy'),
    workload,
    context.rootNamespace,
  );
  const filters = translateAuthorizationPolicies(authz, 'http', trustDomains(context));
  out.push(
    ...extAuthzHttpFilters(filters, context.extensionProviders),
    ...rbacFilters(filters, true),
  );
  return out;
}

/**
 * The names of the providers the proxy enforces: on HTTP envoyExtAuthzHttp and
 * envoyExtAuthzGrpc (the HTTP ext_authz filter); on TCP both too — a gRPC provider through
 * the network ext_authz filter, while for an HTTP provider Istio builds no TCP filter at all,
 * so its CUSTOM policies do nothing on a TCP port (Istio's documented behaviour).
 */
export function enforcedProviders(providers: readonly ExtensionProvider[] | undefined): string[] {
  return (providers ?? [])
    .filter((p) => p.envoyExtAuthzHttp !== undefined || p.envoyExtAuthzGrpc !== undefined)
    .map((p) => p.name);
}

/** The trust domain and its aliases, for principals in policies (Istio's trust-domain bundle). */
function trustDomains(context: CompileContext): AuthorizationTranslationOptions {
  return {
    knownProviders: enforcedProviders(context.extensionProviders),
    trustDomain: context.trustDomain,
    ...(context.trustDomainAliases === undefined
      ? {}
      : { trustDomainAliases: context.trustDomainAliases }),
  };
}

function inboundFilters(
  context: CompileContext,
  proxy: ProxyNode,
  port: number,
  protocol: PortProtocol,
): Filter[] {
  const workload = { namespace: proxy.namespace, labels: proxy.labels };
  const authz = applicablePolicies(
    securityObjects<AuthorizationPolicy>(context, 'AuthorizationPolicy'),
    workload,
    context.rootNamespace,
  );
  const cluster = inboundClusterName(port);
  if (!isHttp(protocol)) {
    const tcp = translateAuthorizationPolicies(authz, 'tcp', trustDomains(context));
    return [
      ...extAuthzNetworkFilters(tcp, context.extensionProviders),
      ...rbacFilters(tcp, false),
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: { '@type': EXTENSION_TYPE_URLS.tcpProxy, stat_prefix: cluster, cluster },
      },
    ];
  }
  const httpFilters: Filter[] = [...policyHttpFilters(context, proxy), ROUTER_FILTER];
  return [
    {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
        stat_prefix: `inbound_${String(port)}`,
        codec_type: 'AUTO',
        ...hcmMeshFields(context.pathNormalization),
        route_config: {
          name: `inbound|${String(port)}`,
          virtual_hosts: [
            {
              name: `inbound|http|${String(port)}`,
              domains: ['*'],
              routes: [
                {
                  name: 'default',
                  match: { prefix: '/' },
                  route: { cluster, timeout: { seconds: '0', nanos: 0 } },
                },
              ],
            },
          ],
        },
        http_filters: httpFilters,
      },
    },
  ];
}

/** The inbound listener for one workload port. */
export function buildInboundListener(
  context: CompileContext,
  proxy: ProxyNode,
  port: number,
  protocol: PortProtocol,
): Listener {
  const mode = resolvePeerAuthentication(
    securityObjects<PeerAuthentication>(context, 'PeerAuthentication'),
    { namespace: proxy.namespace, labels: proxy.labels },
    port,
    context.rootNamespace,
  ).mode;
  const netpol = networkPolicyFilter(context, proxy, port);
  const filters = [
    ...(netpol === undefined ? [] : [netpol]),
    ...inboundFilters(context, proxy, port, protocol),
  ];
  const chains: FilterChain[] = [];
  if (mode !== 'DISABLE')
    chains.push({
      name: `inbound|${String(port)}|mtls`,
      filter_chain_match: { transport_protocol: 'tls' },
      transport_socket: meshDownstreamTls(),
      filters,
    });
  if (mode !== 'STRICT')
    chains.push({
      name: `inbound|${String(port)}|plaintext`,
      filter_chain_match: { transport_protocol: 'raw_buffer' },
      filters,
    });
  return {
    '@type': TYPE_URLS.listener,
    name: `inbound|${String(port)}`,
    address: { socket_address: { address: proxy.ip, port_value: port } },
    traffic_direction: 'INBOUND',
    listener_filters: [
      {
        name: 'envoy.filters.listener.tls_inspector',
        typed_config: { '@type': EXTENSION_TYPE_URLS.tlsInspector },
      },
    ],
    filter_chains: chains,
  };
}

/** The outbound HCM for a port's chain: the route filters its routes need (CORS, fault), then router. */
export function outboundHcm(
  routeName: string,
  routeFilters: readonly Filter[],
  normalization?: PathNormalization,
): Filter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
      stat_prefix: `outbound_0.0.0.0_${routeName}`,
      codec_type: 'AUTO',
      ...hcmMeshFields(normalization),
      rds: { route_config_name: routeName, config_source: { ads: {} } },
      http_filters: [...routeFilters, ROUTER_FILTER],
    },
  };
}

/** The `outbound` listener: one chain per port (with the route filters its routes need), then the catch-all. */
export function buildOutboundListener(
  proxy: ProxyNode,
  ports: readonly number[],
  routeFilters: ReadonlyMap<number, readonly Filter[]>,
  normalization?: PathNormalization,
): Listener {
  return {
    '@type': TYPE_URLS.listener,
    name: 'outbound',
    address: { socket_address: { address: proxy.ip, port_value: OUTBOUND_PORT } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [
      ...ports.map((port) => ({
        name: `outbound|${String(port)}`,
        filter_chain_match: { destination_port: { value: port } },
        filters: [outboundHcm(String(port), routeFilters.get(port) ?? [], normalization)],
      })),
      {
        name: 'outbound|catch-all',
        filters: [outboundHcm(CATCH_ALL_ROUTE, [], normalization)],
      },
    ],
  };
}
