/**
 * The registry: services, workloads and endpoints, derived from the config
 * snapshot (Kubernetes Services, ServiceEntries, Palisade Workloads,
 * WorkloadEntries) and from the proxies connected right now. A workload
 * instance is an endpoint while its sidecar holds an authenticated ADS stream
 * (its health); a WorkloadEntry is an endpoint as declared.
 *
 * Host names follow Kubernetes DNS: `<name>.<namespace>.svc.<domain>`, and a
 * short host in a resource resolves in that resource's namespace (Istio).
 */
import type { Service } from '../../api/core/index.js';
import type { ServiceEntry, WorkloadEntry } from '../../api/networking/index.js';
import type { Workload } from '../../api/palisade/index.js';
import type { ConfigSnapshot } from '../config/config-snapshot.js';

/** Istio's protocol for a port: decides HTTP routing vs opaque TCP. */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS' | 'HTTPS';

/** One service port. `targetPort` is a number or a workload port name. */
export interface ServicePortView {
  readonly name: string;
  readonly port: number;
  readonly targetPort: number | string;
  readonly protocol: PortProtocol;
}

/** A service: a Kubernetes Service or a ServiceEntry host. */
export interface ServiceView {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePortView[];
  /** Pod labels selecting the backing workloads (Service selector / SE workloadSelector). */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly source: 'Service' | 'ServiceEntry';
  /** MESH_EXTERNAL ServiceEntry hosts: no sidecar, no mTLS by default. */
  readonly external: boolean;
  /** False for services whose endpoints take plaintext (the built-in gateways' HTTP ports): no auto mTLS. */
  readonly autoMtls?: boolean;
  /** ServiceEntry resolution (Services are STATIC over their instances). */
  readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  /**
   * Virtual IPs (a Service's `spec.clusterIP`, a ServiceEntry's `addresses`, or one
   * auto-allocated from 240.240.0.0/16 as Istio's DNS auto-allocation does): where captured
   * traffic to the service is recognised (virtualOutbound). Absent or empty: none.
   */
  readonly addresses?: readonly string[];
  /** Inline ServiceEntry endpoints. */
  readonly staticEndpoints: readonly {
    address: string;
    ports: Record<string, number>;
    labels: Record<string, string>;
  }[];
}

/** A workload as configured (a Workload resource). */
export interface WorkloadView {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly ports: readonly { name: string | undefined; port: number; protocol: PortProtocol }[];
}

/** A running instance: a connected proxy or a WorkloadEntry. */
export interface InstanceView {
  readonly id: string;
  readonly address: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly workload: string;
  /** Named ports (WorkloadEntry `ports`, or the Workload's port names). */
  readonly portNames: Readonly<Record<string, number>>;
  readonly healthy: boolean;
}

/** One endpoint of a service port. */
export interface EndpointView {
  readonly instance: InstanceView;
  readonly port: number;
}

/** The registry view the compiler reads. */
export interface Registry {
  readonly services: readonly ServiceView[];
  readonly workloads: readonly WorkloadView[];
  readonly instances: readonly InstanceView[];
  /** The service for a host as written in `namespace` (short names resolve there). */
  resolveHost(host: string, namespace: string): ServiceView | undefined;
  /** Endpoints of a service port, optionally narrowed by subset labels. */
  endpoints(
    service: ServiceView,
    port: ServicePortView,
    subsetLabels?: Readonly<Record<string, string>>,
  ): EndpointView[];
  /** Workloads a service selects (configured, not only running). */
  workloadsOf(service: ServiceView): WorkloadView[];
}

export const DNS_DOMAIN = 'cluster.local';

/** Where the built-in gateways run (Istio's root namespace). */
export const GATEWAY_NAMESPACE = 'istio-system';

/** `name.ns.svc.cluster.local` for a Service. */
export function serviceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${DNS_DOMAIN}`;
}

/** Istio's protocol selection: appProtocol, then the port name prefix (`http-…`), else TCP. */
export function portProtocol(name: string | undefined, appProtocol?: string): PortProtocol {
  const p = (appProtocol ?? name ?? '').toLowerCase().split('-')[0] ?? '';
  switch (p) {
    case 'http':
      return 'HTTP';
    case 'http2':
    case 'h2c':
      return 'HTTP2';
    case 'grpc':
    case 'grpc-web':
      return 'GRPC';
    case 'https':
      return 'HTTPS';
    case 'tls':
      return 'TLS';
    default:
      return 'TCP';
  }
}

/** True for protocols the proxy routes as HTTP. */
export function isHttp(protocol: PortProtocol): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC';
}

/** True when every label of `selector` is on `labels`. */
export function labelsMatch(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function fromService(s: Service): ServiceView {
  const namespace = s.metadata.namespace ?? 'default';
  return {
    hostname: serviceHostname(s.metadata.name, namespace),
    name: s.metadata.name,
    namespace,
    ports: s.spec.ports.map((p) => ({
      name: p.name ?? '',
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: portProtocol(p.name, p.appProtocol),
    })),
    selector: s.spec.selector,
    source: 'Service',
    external: false,
    resolution: 'STATIC',
    // Headless (`None`) and unset cluster IPs have no VIP: pod IPs only.
    addresses:
      s.spec.clusterIP === undefined || s.spec.clusterIP === '' || s.spec.clusterIP === 'None'
        ? []
        : [s.spec.clusterIP],
    staticEndpoints: [],
  };
}

function fromServiceEntry(se: ServiceEntry): ServiceView[] {
  const namespace = se.metadata.namespace ?? 'default';
  return se.spec.hosts.map((host) => ({
    hostname: host,
    name: se.metadata.name,
    namespace,
    ports: (se.spec.ports ?? []).map((p) => ({
      name: p.name ?? '',
      port: p.number,
      targetPort: p.targetPort ?? p.number,
      protocol: portProtocol(p.protocol ?? p.name),
    })),
    selector: se.spec.workloadSelector?.labels,
    source: 'ServiceEntry',
    external: (se.spec.location ?? 'MESH_EXTERNAL') === 'MESH_EXTERNAL',
    resolution: (se.spec.resolution ?? 'NONE') as ServiceView['resolution'],
    addresses: se.spec.addresses ?? [],
    staticEndpoints: (se.spec.endpoints ?? []).map((e) => ({
      address: e.address ?? host,
      ports: e.ports ?? {},
      labels: e.labels ?? {},
    })),
  }));
}

function fromWorkload(w: Workload): WorkloadView {
  return {
    name: w.metadata.name,
    namespace: w.metadata.namespace ?? 'default',
    labels: w.spec.labels ?? {},
    serviceAccount: w.spec.serviceAccount ?? 'default',
    ports: w.spec.ports.map((p) => ({
      name: p.name,
      port: p.port,
      protocol: (p.protocol as PortProtocol | undefined) ?? portProtocol(p.name),
    })),
  };
}

function fromWorkloadEntry(we: WorkloadEntry): InstanceView | undefined {
  if (we.spec.address === undefined) return undefined;
  return {
    id: `WorkloadEntry/${we.metadata.namespace ?? 'default'}/${we.metadata.name}`,
    address: we.spec.address,
    namespace: we.metadata.namespace ?? 'default',
    labels: we.spec.labels ?? {},
    serviceAccount: we.spec.serviceAccount ?? 'default',
    workload: we.metadata.name,
    portNames: we.spec.ports ?? {},
    healthy: true,
  };
}

/** Builds the registry from the snapshot and the connected instances. */
/** Istio's auto-allocation range for ServiceEntries without `addresses` (Class E, never routed). */
export const AUTO_ALLOCATED_CIDR = '240.240.0.0/16';

/**
 * Gives every ServiceEntry host without addresses a VIP from 240.240.0.0/16, as Istio does
 * with DNS auto-allocation (`ISTIO_META_DNS_AUTO_ALLOCATE`): so an app resolving the host
 * gets an address its sidecar's capture can tell apart. Wildcard hosts get none (they name
 * no single destination). Allocation is by sorted host name, like Istio's, so every proxy
 * sees the same VIPs for the same config; adding an entry can move later ones.
 */
function allocateServiceEntryAddresses(services: ServiceView[]): void {
  const hosts = [
    ...new Set(
      services
        .filter(
          (s) =>
            s.source === 'ServiceEntry' &&
            (s.addresses ?? []).length === 0 &&
            !s.hostname.startsWith('*'),
        )
        .map((s) => s.hostname),
    ),
  ].sort();
  const vip = new Map<string, string>();
  // 240.240.0.1 … 240.240.255.254: index i → third and fourth octet.
  hosts.slice(0, 65_534).forEach((host, i) => {
    const n = i + 1;
    vip.set(host, `240.240.${String(n >> 8)}.${String(n & 255)}`);
  });
  for (const [i, s] of services.entries()) {
    const address = vip.get(s.hostname);
    if (s.source === 'ServiceEntry' && address !== undefined && (s.addresses ?? []).length === 0)
      services[i] = { ...s, addresses: [address] };
  }
}

export function buildRegistry(
  snapshot: ConfigSnapshot,
  connected: readonly InstanceView[],
): Registry {
  const services: ServiceView[] = [];
  for (const o of snapshot.ofKind('Service')) services.push(fromService(o.resource as Service));
  for (const o of snapshot.ofKind('ServiceEntry'))
    services.push(...fromServiceEntry(o.resource as ServiceEntry));
  // The built-in gateways' Services, as Istio's charts install them (80 → 8080, 443 → 8443),
  // unless the config defines its own.
  for (const [name, label] of [
    ['istio-ingressgateway', 'ingressgateway'],
    ['istio-egressgateway', 'egressgateway'],
  ] as const) {
    if (services.some((s) => s.name === name && s.namespace === GATEWAY_NAMESPACE)) continue;
    services.push({
      hostname: serviceHostname(name, GATEWAY_NAMESPACE),
      name,
      namespace: GATEWAY_NAMESPACE,
      ports: [
        { name: 'http2', port: 80, targetPort: 8080, protocol: 'HTTP' },
        { name: 'https', port: 443, targetPort: 8443, protocol: 'HTTPS' },
      ],
      selector: { istio: label },
      source: 'Service',
      external: false,
      autoMtls: false,
      resolution: 'STATIC',
      staticEndpoints: [],
    });
  }
  allocateServiceEntryAddresses(services);
  const workloads = snapshot.ofKind('Workload').map((o) => fromWorkload(o.resource as Workload));
  const instances: InstanceView[] = [...connected];
  for (const o of snapshot.ofKind('WorkloadEntry')) {
    const instance = fromWorkloadEntry(o.resource as WorkloadEntry);
    if (instance !== undefined) instances.push(instance);
  }
  const byHost = new Map<string, ServiceView>();
  // The registry is immutable: endpoint lists are computed once per service port and subset.
  const endpointCache = new Map<string, EndpointView[]>();
  for (const s of services) if (!byHost.has(s.hostname)) byHost.set(s.hostname, s);

  return {
    services,
    workloads,
    instances,
    resolveHost(host, namespace) {
      const direct = byHost.get(host);
      if (direct !== undefined) return direct;
      const parts = host.split('.');
      if (parts.length === 1) return byHost.get(serviceHostname(host, namespace));
      if (parts.length === 2) return byHost.get(`${host}.svc.${DNS_DOMAIN}`);
      if (parts.length === 3 && parts[2] === 'svc') return byHost.get(`${host}.${DNS_DOMAIN}`);
      return undefined;
    },
    endpoints(service, port, subsetLabels) {
      const key = `${service.hostname}|${String(port.port)}|${JSON.stringify(subsetLabels ?? {})}`;
      const hit = endpointCache.get(key);
      if (hit !== undefined) return hit;
      const out: EndpointView[] = [];
      endpointCache.set(key, out);
      if (service.selector === undefined) return out;
      for (const instance of instances) {
        if (instance.namespace !== service.namespace && service.source === 'Service') continue;
        if (!labelsMatch(service.selector, instance.labels)) continue;
        if (!labelsMatch(subsetLabels, instance.labels)) continue;
        const target =
          typeof port.targetPort === 'number'
            ? port.targetPort
            : instance.portNames[port.targetPort];
        if (target === undefined) continue;
        out.push({ instance, port: target });
      }
      return out;
    },
    workloadsOf(service) {
      if (service.selector === undefined) return [];
      return workloads.filter(
        (w) =>
          (service.source !== 'Service' || w.namespace === service.namespace) &&
          labelsMatch(service.selector, w.labels),
      );
    },
  };
}
