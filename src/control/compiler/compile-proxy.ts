/**
 * The compiler: for one proxy, every Listener, RouteConfiguration, Cluster,
 * ClusterLoadAssignment and Secret it needs — its own inbound listeners and
 * the outbound view of the services its Sidecar scope lets it see (sidecars),
 * or the listeners of the Gateways that select it (gateways). Pure: config
 * snapshot + registry + proxy in, resources out.
 */
import type { Gateway, Sidecar } from '../../api/networking/index.js';
import {
  EXTENSION_TYPE_URLS,
  TYPE_URLS,
  HCM_FILTER,
  type Filter,
  type FilterChain,
  type HttpConnectionManager,
  type Listener,
  type ResourceKind,
  type TransportSocket,
  type Route,
  type RouteConfiguration,
  type VirtualHost,
} from '../../xds/index.js';
import { labelsMatch, type ServiceView } from '../registry/service-registry.js';
import {
  buildInboundCluster,
  buildServiceClusters,
  buildSpecialClusters,
  type CompileContext,
} from './clusters.js';
import { ROUTER_FILTER, sdsSecret } from './envoy-values.js';
import {
  buildInboundListener,
  buildOutboundListener,
  hcmMeshFields,
  CATCH_ALL_ROUTE,
  policyHttpFilters,
} from './listeners.js';
import type { ProxyNode } from './proxy-node.js';
import {
  buildVirtualInbound,
  buildVirtualOutbound,
  capturing,
  handOffInbound,
} from './capture-listeners.js';
import { compileProxyless } from './proxyless.js';
import { buildDnsListener } from './dns-listener.js';
import {
  egressPolicyFor,
  withAllowedEndpoints,
  withEgressFilter,
  type EgressPolicy,
} from './egress-network-policy.js';

function withEgress(listener: Listener, egress: EgressPolicy | undefined): Listener {
  return egress === undefined ? listener : withEgressFilter(listener, egress);
}
import {
  defaultRoute,
  qualifiedGateways,
  serviceDomains,
  translateHttpRoutes,
  translateL4Routes,
  routeHttpFilters,
  virtualServicesFor,
} from './routes.js';

export type { CompileContext } from './clusters.js';

/** Shared route configs per registry generation and route key (see compileSidecar). */
const routeCaches = new WeakMap<
  object,
  Map<string, { configs: RouteConfiguration[]; routeFilters: Map<number, Filter[]> }>
>();

/** Resources for one proxy, by kind and name. */
export type ProxyResources = Record<ResourceKind, Map<string, Record<string, unknown>>>;

/** Mesh-wide settings (Istio's MeshConfig subset). */
export interface MeshSettings {
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** `defaultConfig.gatewayTopology.numTrustedProxies`: gateways' xff_num_trusted_hops. */
  readonly numTrustedProxies?: number;
}

/** Inputs of {@link compileProxy} besides the proxy. */
export interface CompileInputs extends CompileContext {
  readonly mesh: MeshSettings;
  /** PEM bundle of every trusted root (sent as SDS `ROOTCA`). */
  readonly trustBundlePem: string;
  /** Gateway credentials by `kubernetes://<name>` (from TLS Secrets). */
  readonly credentials: ReadonlyMap<string, Record<string, unknown>>;
}

function emptyResources(): ProxyResources {
  return {
    listener: new Map(),
    route: new Map(),
    cluster: new Map(),
    endpoint: new Map(),
    secret: new Map(),
  };
}

function add(
  resources: ProxyResources,
  kind: ResourceKind,
  // A typed resource (src/xds's Cluster, ClusterLoadAssignment) or a plain one: opaque from
  // here on, encoded as an Any by the ADS server.
  typed: object,
): void {
  const resource = typed as Record<string, unknown>;
  const name = (resource['name'] ?? resource['cluster_name']) as string;
  resources[kind].set(name, resource);
}

/** The Sidecar resource that scopes this proxy (workload > namespace > root), Istio's precedence. */
function sidecarFor(inputs: CompileInputs, proxy: ProxyNode): Sidecar | undefined {
  const all = inputs.snapshot.ofKind('Sidecar').map((o) => o.resource as Sidecar);
  const inNs = all.filter((s) => (s.metadata.namespace ?? 'default') === proxy.namespace);
  return (
    inNs.find(
      (s) =>
        s.spec.workloadSelector !== undefined &&
        labelsMatch(s.spec.workloadSelector.labels, proxy.labels),
    ) ??
    inNs.find((s) => s.spec.workloadSelector === undefined) ??
    all.find(
      (s) =>
        (s.metadata.namespace ?? 'default') === inputs.rootNamespace &&
        s.spec.workloadSelector === undefined,
    )
  );
}

/** Sidecar egress host match: `ns/dnsName` with `*`, `.` (own namespace) and `~` (none). */
function egressAllows(sidecar: Sidecar | undefined, service: ServiceView): boolean {
  if (sidecar === undefined || sidecar.spec.egress === undefined) return true;
  const sidecarNs = sidecar.metadata.namespace ?? 'default';
  for (const egress of sidecar.spec.egress)
    for (const entry of egress.hosts) {
      const [nsPart, hostPart] = entry.includes('/')
        ? (entry.split('/', 2) as [string, string])
        : ['*', entry];
      const ns = nsPart === '.' ? sidecarNs : nsPart;
      if (ns === '~') continue;
      if (ns !== '*' && ns !== service.namespace) continue;
      if (hostPart === '*') return true;
      if (hostPart.startsWith('*.') && service.hostname.endsWith(hostPart.slice(1))) return true;
      if (hostPart === service.hostname) return true;
    }
  return false;
}

function rootCaSecret(pem: string): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.secret,
    name: 'ROOTCA',
    validation_context: { trusted_ca: { inline_string: pem } },
  };
}

function fallbackVirtualHost(policy: MeshSettings['outboundTrafficPolicy']): VirtualHost {
  return policy === 'REGISTRY_ONLY'
    ? {
        name: 'block_all',
        domains: ['*'],
        routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }],
      }
    : {
        name: 'allow_any',
        domains: ['*'],
        routes: [
          {
            name: 'allow_any',
            match: { prefix: '/' },
            route: { cluster: 'PassthroughCluster', timeout: { seconds: '0', nanos: 0 } },
          },
        ],
      };
}

/** Outbound clusters/endpoints for every visible service port. */
function addServiceClusters(
  inputs: CompileInputs,
  proxy: ProxyNode,
  services: readonly ServiceView[],
  out: ProxyResources,
): void {
  for (const service of services)
    for (const port of service.ports)
      for (const built of buildServiceClusters(inputs, proxy, service, port)) {
        add(out, 'cluster', built.cluster);
        if (built.assignment !== undefined) add(out, 'endpoint', built.assignment);
      }
  for (const c of buildSpecialClusters()) add(out, 'cluster', c);
}

function compileSidecar(inputs: CompileInputs, proxy: ProxyNode): ProxyResources {
  const out = emptyResources();
  const sidecar = sidecarFor(inputs, proxy);
  const policy = (sidecar?.spec.outboundTrafficPolicy?.mode ??
    inputs.mesh.outboundTrafficPolicy) as MeshSettings['outboundTrafficPolicy'];
  const captured = capturing(proxy);
  for (const port of proxy.workload?.ports ?? []) {
    const inbound = buildInboundListener(inputs, proxy, port.port, port.protocol);
    add(out, 'listener', captured ? handOffInbound(inbound, port.port) : inbound);
    add(out, 'cluster', buildInboundCluster(proxy, port.port, port.protocol));
  }
  const services = inputs.registry.services.filter((s) => egressAllows(sidecar, s));
  addServiceClusters(inputs, proxy, services, out);
  // Egress NetworkPolicy at the source, for captured pods (egress-network-policy.ts).
  const egress = captured ? egressPolicyFor(inputs, proxy, services) : undefined;
  if (egress !== undefined)
    for (const [name, cla] of out.endpoint)
      out.endpoint.set(name, withAllowedEndpoints(cla, egress));
  const byPort = new Map<number, ServiceView[]>();
  for (const s of services)
    for (const p of s.ports) byPort.set(p.port, [...(byPort.get(p.port) ?? []), s]);
  // Route configs depend on the proxy only through its namespace, labels
  // (sourceLabels) and Sidecar scope: proxies of one workload share them.
  const routeKey = `${proxy.namespace}|${JSON.stringify(proxy.labels)}|${sidecar === undefined ? '' : `${sidecar.metadata.namespace ?? 'default'}/${sidecar.metadata.name}`}|${policy}`;
  let routeCache = routeCaches.get(inputs.registry);
  if (routeCache === undefined) {
    routeCache = new Map();
    routeCaches.set(inputs.registry, routeCache);
  }
  let routeSet = routeCache.get(routeKey);
  if (routeSet === undefined) {
    const mesh = new Set(['mesh']);
    const configs: RouteConfiguration[] = [];
    const filters = new Map<number, Filter[]>();
    for (const [port, list] of [...byPort].sort((a, b) => a[0] - b[0])) {
      const virtualHosts: VirtualHost[] = [];
      for (const service of list) {
        const routes: Route[] = [];
        for (const vs of virtualServicesFor(inputs, service, mesh))
          routes.push(...translateHttpRoutes(inputs, vs, { proxy, gateways: mesh, port }));
        if (routes.length === 0) routes.push(defaultRoute(inputs, service, port, proxy.namespace));
        virtualHosts.push({
          name: `${service.hostname}:${String(port)}`,
          domains: serviceDomains(service, port, proxy.namespace),
          routes,
        });
      }
      virtualHosts.push(fallbackVirtualHost(policy));
      const rc: RouteConfiguration = {
        '@type': TYPE_URLS.route,
        name: String(port),
        virtual_hosts: virtualHosts,
      };
      filters.set(port, routeHttpFilters([rc]));
      configs.push(rc);
    }
    routeSet = { configs, routeFilters: filters };
    routeCache.set(routeKey, routeSet);
  }
  const routeFilters = routeSet.routeFilters;
  for (const rc of routeSet.configs) add(out, 'route', rc);
  const catchAll: RouteConfiguration = {
    '@type': TYPE_URLS.route,
    name: CATCH_ALL_ROUTE,
    virtual_hosts: [fallbackVirtualHost(policy)],
  };
  add(out, 'route', catchAll);
  add(
    out,
    'listener',
    buildOutboundListener(
      proxy,
      [...byPort.keys()].sort((a, b) => a - b),
      routeFilters,
      inputs.pathNormalization,
    ),
  );
  if (captured) {
    add(
      out,
      'listener',
      withEgress(
        buildVirtualOutbound(
          inputs.registry,
          services,
          routeFilters,
          policy,
          inputs.pathNormalization,
        ),
        egress,
      ),
    );
    add(out, 'listener', buildVirtualInbound());
    add(out, 'listener', buildDnsListener(proxy, services));
  }
  add(out, 'secret', rootCaSecret(inputs.trustBundlePem));
  return out;
}

type GatewayServer = Gateway['spec']['servers'][number];

/**
 * The port a gateway proxy binds for a Gateway server port. Istio's gateway
 * charts map privileged Service ports to unprivileged container ports
 * (80 → 8080, 443 → 8443) so the proxy never needs root; Palisade does the same.
 */
export function gatewayBindPort(port: number): number {
  return port < 1024 ? port + 8000 : port;
}

function gatewayTls(server: GatewayServer): TransportSocket | undefined {
  const tls = server.tls;
  if (tls === undefined || tls.mode === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH')
    return undefined;
  const common: Record<string, unknown> = { alpn_protocols: ['h2', 'http/1.1'] };
  // Istio ServerTLSSettings.cipherSuites → Envoy TlsParameters.cipher_suites (TLS 1.2 suites;
  // the default is the AEAD list, see identity/tls-policy.ts).
  if (tls.cipherSuites !== undefined && tls.cipherSuites.length > 0)
    common['tls_params'] = { cipher_suites: [...tls.cipherSuites] };
  if (tls.credentialName !== undefined) {
    common['tls_certificate_sds_secret_configs'] = [
      sdsSecret(`kubernetes://${tls.credentialName}`),
    ];
    if (tls.mode === 'MUTUAL')
      common['validation_context_sds_secret_config'] = sdsSecret(
        `kubernetes://${tls.credentialName}-cacert`,
      );
  } else {
    common['tls_certificates'] = [
      {
        certificate_chain: { filename: tls.serverCertificate ?? '' },
        private_key: { filename: tls.privateKey ?? '' },
      },
    ];
    if (tls.mode === 'MUTUAL' && tls.caCertificates !== undefined)
      common['validation_context'] = { trusted_ca: { filename: tls.caCertificates } };
  }
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.downstreamTls,
      require_client_certificate: { value: tls.mode === 'MUTUAL' },
      common_tls_context: common,
    },
  };
}

/** Server hosts without their namespace part (`ns/host` → `host`). */
function serverHosts(server: GatewayServer): string[] {
  return server.hosts.map((h) => (h.includes('/') ? (h.split('/')[1] ?? h) : h));
}

/** True when a gateway host pattern (`*`, `*.example.com`, exact) covers `host`. */
function hostCovers(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern.startsWith('*.') && host.endsWith(pattern.slice(1));
}

/** Servers whose traffic is not HTTP: TLS passthrough, and TCP/TLS (+ Mongo etc.) ports. */
function l4Server(server: GatewayServer): boolean {
  if (server.tls?.mode === 'PASSTHROUGH') return true;
  const protocol = (server.port.protocol ?? 'HTTP').toUpperCase();
  return !['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB'].includes(protocol);
}

/** A chain terminating a server's TLS (SNI = its hosts) in front of `filter`. */
function tlsChain(
  port: number,
  server: GatewayServer,
  tls: TransportSocket,
  filter: Filter,
): FilterChain {
  const sni = serverHosts(server).filter((h) => h !== '*');
  return {
    name: `${String(port)}|${server.name ?? server.hosts.join(',')}`,
    filter_chain_match:
      sni.length > 0
        ? { server_names: sni, transport_protocol: 'tls' }
        : { transport_protocol: 'tls' },
    transport_socket: tls,
    filters: [filter],
  };
}

function compileGateway(inputs: CompileInputs, proxy: ProxyNode): ProxyResources {
  const out = emptyResources();
  const gateways = inputs.snapshot
    .ofKind('Gateway')
    .map((o) => o.resource as Gateway)
    .filter((g) => g.spec.selector !== undefined && labelsMatch(g.spec.selector, proxy.labels));
  addServiceClusters(inputs, proxy, inputs.registry.services, out);
  const ports = new Map<number, { gateway: Gateway; server: GatewayServer }[]>();
  for (const gateway of gateways)
    for (const server of gateway.spec.servers)
      ports.set(server.port.number, [
        ...(ports.get(server.port.number) ?? []),
        { gateway, server },
      ]);
  for (const [port, servers] of [...ports].sort((a, b) => a[0] - b[0])) {
    const routeName = `http.${String(port)}`;
    const names = new Set(
      servers.map((s) => `${s.gateway.metadata.namespace ?? 'default'}/${s.gateway.metadata.name}`),
    );
    const scope = { proxy, gateways: names, port };
    const bound = inputs.snapshot
      .ofKind('VirtualService')
      .map((o) => o.resource as Parameters<typeof translateHttpRoutes>[1])
      .filter((vs) => qualifiedGateways(vs, vs.spec.gateways).some((g) => names.has(g)));
    const chains: FilterChain[] = [];
    const httpServers = servers.filter(({ server }) => !l4Server(server));
    if (httpServers.length > 0) {
      const virtualHosts = new Map<string, { domains: Set<string>; routes: Route[] }>();
      for (const vs of bound) {
        const routes = translateHttpRoutes(inputs, vs, scope);
        if (routes.length === 0) continue;
        for (const host of vs.spec.hosts ?? []) {
          const vh = virtualHosts.get(host) ?? { domains: new Set<string>(), routes: [] };
          vh.domains.add(host);
          // Istio lets a gateway host match any port in the Host header (`host:*`).
          if (host !== '*') vh.domains.add(`${host}:*`);
          vh.routes.push(...routes);
          virtualHosts.set(host, vh);
        }
      }
      const gatewayRoutes: RouteConfiguration = {
        '@type': TYPE_URLS.route,
        name: routeName,
        virtual_hosts: [...virtualHosts].map(([host, vh]) => ({
          name: `${host}:${String(port)}`,
          domains: [...vh.domains],
          routes: vh.routes,
        })),
      };
      add(out, 'route', gatewayRoutes);
      const routeFilters = routeHttpFilters([gatewayRoutes]);
      const hcmConfig: HttpConnectionManager = {
        '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
        stat_prefix: `outbound_0.0.0.0_${String(port)}`,
        codec_type: 'AUTO',
        ...hcmMeshFields(inputs.pathNormalization),
        rds: { route_config_name: routeName, config_source: { ads: {} } },
        // Istio's gateways: the client address is the peer's, or from X-Forwarded-For past
        // numTrustedProxies trusted hops (what remoteIpBlocks and remote.ip match).
        use_remote_address: { value: true },
        ...(inputs.mesh.numTrustedProxies === undefined
          ? {}
          : { xff_num_trusted_hops: inputs.mesh.numTrustedProxies }),
        http_filters: [...policyHttpFilters(inputs, proxy), ...routeFilters, ROUTER_FILTER],
      };
      const hcm: Filter = { name: HCM_FILTER, typed_config: hcmConfig };
      for (const { server } of httpServers) {
        const tls = gatewayTls(server);
        if (tls === undefined) continue;
        chains.push(tlsChain(port, server, tls, hcm));
      }
      if (httpServers.some(({ server }) => server.tls === undefined))
        chains.push({ name: `${String(port)}|plaintext`, filters: [hcm] });
    }
    // TLS passthrough: one chain per SNI-matched `tls` route, the client's TLS relayed untouched.
    const usedNames = new Set<string>();
    for (const { server } of servers.filter((s) => s.server.tls?.mode === 'PASSTHROUGH'))
      for (const vs of bound)
        for (const route of translateL4Routes(inputs, vs, scope, 'tls')) {
          const sni = route.sniHosts.filter(
            (h) => !usedNames.has(h) && serverHosts(server).some((p) => hostCovers(p, h)),
          );
          if (sni.length === 0) continue;
          for (const h of sni) usedNames.add(h);
          chains.push({
            name: `${String(port)}|passthrough|${sni.join(',')}`,
            filter_chain_match: { server_names: sni, transport_protocol: 'tls' },
            filters: [route.filter],
          });
        }
    // TCP servers (plaintext, or TLS terminated here): the first applicable `tcp` route.
    for (const { server } of servers.filter(
      (s) => l4Server(s.server) && s.server.tls?.mode !== 'PASSTHROUGH',
    )) {
      const route = bound.flatMap((vs) => translateL4Routes(inputs, vs, scope, 'tcp'))[0];
      if (route === undefined) continue;
      const tls = gatewayTls(server);
      chains.push(
        tls === undefined
          ? { name: `${String(port)}|tcp`, filters: [route.filter] }
          : tlsChain(port, server, tls, route.filter),
      );
    }
    add(out, 'listener', {
      '@type': TYPE_URLS.listener,
      name: `0.0.0.0_${String(port)}`,
      address: { socket_address: { address: proxy.ip, port_value: gatewayBindPort(port) } },
      traffic_direction: 'OUTBOUND',
      ...(chains.some((c) => 'filter_chain_match' in c)
        ? {
            listener_filters: [
              {
                name: 'envoy.filters.listener.tls_inspector',
                typed_config: { '@type': EXTENSION_TYPE_URLS.tlsInspector },
              },
            ],
          }
        : {}),
      filter_chains: chains,
    });
    for (const { server } of servers) {
      const credential = server.tls?.credentialName;
      if (credential === undefined) continue;
      for (const name of [`kubernetes://${credential}`, `kubernetes://${credential}-cacert`]) {
        const secret = inputs.credentials.get(name);
        if (secret !== undefined) add(out, 'secret', secret);
      }
    }
  }
  add(out, 'secret', rootCaSecret(inputs.trustBundlePem));
  return out;
}

/** Compiles the full resource set for one proxy. */
export function compileProxy(inputs: CompileInputs, proxy: ProxyNode): ProxyResources {
  if (proxy.type === 'proxyless') {
    const sidecar = sidecarFor(inputs, proxy);
    const visible = inputs.registry.services.filter((s) => egressAllows(sidecar, s));
    return { ...compileProxyless(inputs, proxy, visible), secret: new Map() };
  }
  return proxy.type === 'sidecar' ? compileSidecar(inputs, proxy) : compileGateway(inputs, proxy);
}
