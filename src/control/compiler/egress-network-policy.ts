/**
 * Kubernetes NetworkPolicy egress, enforced at the source for pods whose
 * traffic iptables captures (netns mode). Kubernetes decides egress on the
 * connection's destination after kube-proxy's DNAT (the backend pod, never the
 * ClusterIP), so a connection is allowed when the source pod's egress allows
 * the pod it reaches (https://kubernetes.io/docs/concepts/services-networking/network-policies/,
 * "What you can't do with network policies" / the e2e suite's service tests).
 * The NetworkPolicy engine (src/kubernetes, the one `palisade netpol` uses)
 * decides every (source, destination pod, port); the answer is sent two ways:
 *
 * - an `envoy.filters.network.rbac` ALLOW filter ahead of every virtualOutbound
 *   chain, on the original destination (Envoy's `destination_ip` /
 *   `destination_port` / `destination_port_range` permissions, which behind
 *   the original_dst listener filter see where the app was connecting): pod
 *   IP:port pairs the engine allows, a service VIP:port when some backend is
 *   allowed, and for other addresses the ipBlock / peer-less rules (each CIDR
 *   minus its `except`). A denied connection is reset before any upstream is
 *   dialled (the app sees what a dropped/rejected connection looks like: no
 *   response).
 * - the service clusters' endpoints sent to that sidecar keep only the pods
 *   its egress allows: an HTTP request routed by Host to another service than
 *   the one dialled cannot reach a denied pod (no healthy upstream, 503).
 *
 * Ingress stays enforced at the destination (network-policy.ts).
 */
import { isIP } from 'node:net';
import type { NetpolPod, NetworkPolicyPort } from '../../kubernetes/index.js';
import { EXTENSION_TYPE_URLS, type Filter, type Listener } from '../../xds/index.js';
import type { ServicePortView, ServiceView } from '../registry/service-registry.js';
import type { CompileContext } from './clusters.js';
import { ipBlockPrincipal, modelOf, selfPod, type Model } from './network-policy.js';
import type { ProxyNode } from './proxy-node.js';

type R = Record<string, unknown>;

/** Stat prefix of the egress filter (the proxy reports its denials under it). */
export const EGRESS_STAT_PREFIX = 'netpol_egress.';

export interface EgressPolicy {
  /** The network RBAC filter for virtualOutbound chains (ALLOW by original destination). */
  readonly filter: Filter;
  /** Does the source's egress allow the pod at `address` on TCP `port`? */
  allowsEndpoint(address: string, port: number): boolean;
}

const OUTSIDE: NetpolPod = { namespace: '', name: '', labels: {}, ports: [], external: true };

function hostCidr(address: string): R {
  return { address_prefix: address, prefix_len: { value: isIP(address) === 6 ? 128 : 32 } };
}

function anyOf(rules: R[]): R | undefined {
  if (rules.length === 0) return undefined;
  return rules.length === 1 ? rules[0] : { or_rules: { rules } };
}

/** A policy port as a permission on the destination port; undefined: matches nothing here. */
function portPermission(p: NetworkPolicyPort): R | undefined {
  if ((p.protocol ?? 'TCP') !== 'TCP') return undefined;
  if (p.port === undefined) return { any: true };
  // A named port names a container port of a pod: an address outside the pods has none.
  if (typeof p.port !== 'number') return undefined;
  if (p.endPort === undefined || p.endPort === p.port) return { destination_port: p.port };
  // Int32Range is half-open: [start, end).
  return { destination_port_range: { start: p.port, end: p.endPort + 1 } };
}

/** ipBlock principal (CidrRange shape) → the same shape as a destination_ip permission. */
function asDestination(principal: unknown): R {
  const p = principal as R;
  if (p['direct_remote_ip'] !== undefined) return { destination_ip: p['direct_remote_ip'] };
  const and = p['and_ids'] as { ids: unknown[] } | undefined;
  if (and !== undefined) return { and_rules: { rules: and.ids.map(asDestination) } };
  const or = p['or_ids'] as { ids: unknown[] } | undefined;
  if (or !== undefined) return { or_rules: { rules: or.ids.map(asDestination) } };
  const not = p['not_id'];
  if (not !== undefined) return { not_rule: asDestination(not) };
  return { any: true };
}

/** Endpoint ports by instance address, over every service (built once per policy). */
function endpointPorts(context: CompileContext): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const service of context.registry.services)
    for (const port of service.ports)
      for (const e of context.registry.endpoints(service, port)) {
        const set = out.get(e.instance.address) ?? new Set<number>();
        set.add(e.port);
        out.set(e.instance.address, set);
      }
  return out;
}

/** Ports a pod is reached on: its workload's declared ports and its service endpoints'. */
function podPorts(pod: NetpolPod, endpoints: ReadonlyMap<string, Set<number>>): number[] {
  const ports = new Set(pod.ports.map((p) => p.containerPort));
  for (const port of endpoints.get(pod.ip ?? '') ?? []) ports.add(port);
  return [...ports].sort((a, b) => a - b);
}

/** Where a service port's connections end up, as its cluster's endpoints (clusters.ts). */
function serviceTargets(
  context: CompileContext,
  service: ServiceView,
  port: ServicePortView,
): { address: string; port: number }[] {
  if (service.source === 'ServiceEntry' && service.staticEndpoints.length > 0)
    return service.staticEndpoints.map((e) => ({
      address: e.address,
      port: e.ports[port.name] ?? port.port,
    }));
  if (service.source === 'ServiceEntry' && service.selector === undefined)
    return service.resolution === 'DNS' ? [{ address: service.hostname, port: port.port }] : [];
  return context.registry
    .endpoints(service, port)
    .map((e) => ({ address: e.instance.address, port: e.port }));
}

/**
 * The egress policy of a captured sidecar's pod, or undefined when its pod is
 * not isolated for egress (no NetworkPolicy with Egress and no admin tier
 * selects it): then everything is allowed, as in Kubernetes.
 */
export function egressPolicyFor(
  context: CompileContext,
  proxy: ProxyNode,
  services: readonly ServiceView[],
): EgressPolicy | undefined {
  const model: Model | null = modelOf(context);
  if (model === null || proxy.workload === undefined) return undefined;
  const self = selfPod(model, proxy);
  const isolating = model.engine.selecting(self).egress;
  const admin = model.engine.selectingAdmin(self);
  if (isolating.length === 0 && admin.admin.length === 0 && admin.baseline.length === 0)
    return undefined;

  const decisions = new Map<string, boolean>();
  const byIp = new Map(model.pods.filter((p) => p.ip !== undefined).map((p) => [p.ip, p]));
  const allowsEndpoint = (address: string, port: number): boolean => {
    const key = `${address}|${String(port)}`;
    const hit = decisions.get(key);
    if (hit !== undefined) return hit;
    const to = byIp.get(address) ?? { ...OUTSIDE, name: address, ip: address };
    const allowed =
      (to.namespace === self.namespace && to.name === self.name) ||
      model.engine.evaluate({ from: self, to, port, protocol: 'TCP' }).egress.allowed;
    decisions.set(key, allowed);
    return allowed;
  };

  const permissions: R[] = [];
  const known: R[] = [];
  // Pods: each allowed (pod IP, port), as the engine decides.
  const endpoints = endpointPorts(context);
  for (const pod of model.pods) {
    if (pod.ip === undefined || isIP(pod.ip) === 0) continue;
    known.push({ destination_ip: hostCidr(pod.ip) });
    const ports = podPorts(pod, endpoints).filter((port) => allowsEndpoint(pod.ip ?? '', port));
    const port = anyOf(ports.map((p) => ({ destination_port: p })));
    if (port !== undefined)
      permissions.push({ and_rules: { rules: [{ destination_ip: hostCidr(pod.ip) }, port] } });
  }
  // Service VIPs: allowed on a service port when some backend is (Kubernetes decides after the
  // DNAT, on the backend): a mesh Service's pods; a ServiceEntry's endpoint addresses, its host
  // (resolution DNS: only a rule without peers names it) or, with no endpoints (resolution
  // NONE), the address itself.
  for (const service of services) {
    for (const vip of service.addresses ?? []) {
      if (isIP(vip) === 0) continue;
      known.push({ destination_ip: hostCidr(vip) });
      const ports = service.ports
        .filter((port) => {
          const targets = serviceTargets(context, service, port);
          return (
            targets.length === 0 && service.external ? [{ address: vip, port: port.port }] : targets
          ).some((t) => allowsEndpoint(t.address, t.port));
        })
        .map((port) => ({ destination_port: port.port }));
      const port = anyOf(ports);
      if (port !== undefined)
        permissions.push({ and_rules: { rules: [{ destination_ip: hostCidr(vip) }, port] } });
    }
  }
  // Other addresses: what the NetworkPolicy rules allow an address outside the pods.
  const outside = model.engine.evaluate({ from: self, to: OUTSIDE, port: 1, protocol: 'TCP' });
  let external: R | undefined;
  if (outside.egress.tier === 'NetworkPolicy') {
    const rules: R[] = [];
    for (const policy of isolating)
      for (const rule of policy.egress ?? []) {
        const ports = rule.ports ?? [];
        const port =
          ports.length === 0
            ? { any: true }
            : anyOf(ports.map(portPermission).filter((p): p is R => p !== undefined));
        if (port === undefined) continue;
        const peers = rule.peers ?? [];
        if (peers.length === 0) rules.push(port);
        for (const peer of peers) {
          if (peer.ipBlock === undefined) continue;
          const principal = ipBlockPrincipal(peer.ipBlock);
          if (principal !== undefined)
            rules.push({ and_rules: { rules: [asDestination(principal), port] } });
        }
      }
    external = anyOf(rules);
  } else if (outside.egress.allowed) external = { any: true };
  if (external !== undefined)
    permissions.push(
      known.length === 0
        ? external
        : { and_rules: { rules: [{ not_rule: { or_rules: { rules: known } } }, external] } },
    );

  const filter: Filter = {
    name: 'envoy.filters.network.rbac',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.networkRbac,
      stat_prefix: EGRESS_STAT_PREFIX,
      rules: {
        action: 'ALLOW',
        policies:
          permissions.length === 0
            ? {}
            : {
                [`netpol-egress-${proxy.namespace}`]: {
                  permissions: [anyOf(permissions)],
                  principals: [{ any: true }],
                },
              },
      },
    },
  };
  return { filter, allowsEndpoint };
}

/** virtualOutbound with the egress filter ahead of every chain's filters. */
export function withEgressFilter(listener: Listener, policy: EgressPolicy): Listener {
  return {
    ...listener,
    filter_chains: (listener.filter_chains ?? []).map((chain) => ({
      ...chain,
      filters: [policy.filter, ...(chain.filters ?? [])],
    })),
  };
}

/** A ClusterLoadAssignment keeping only the endpoints the egress policy allows. */
export function withAllowedEndpoints(assignment: R, policy: EgressPolicy): R {
  const localities = (assignment['endpoints'] as R[] | undefined) ?? [];
  return {
    ...assignment,
    endpoints: localities.map((locality) => ({
      ...locality,
      lb_endpoints: ((locality['lb_endpoints'] as R[] | undefined) ?? []).filter((lb) => {
        const address = ((lb['endpoint'] as R | undefined)?.['address'] as R | undefined)?.[
          'socket_address'
        ] as R | undefined;
        const host = typeof address?.['address'] === 'string' ? address['address'] : '';
        const port = Number(address?.['port_value'] ?? 0);
        // A hostname (DNS ServiceEntry) is outside the pods and no ipBlock names it: only a
        // rule without peers allows it (fail closed).
        return policy.allowsEndpoint(host, port);
      }),
    })),
  };
}
