/**
 * Kubernetes NetworkPolicy (and AdminNetworkPolicy / BaselineAdminNetworkPolicy)
 * in the local mesh: for each inbound port of a
 * workload instance the control plane asks the NetworkPolicy engine
 * (src/kubernetes) which pods may connect — Kubernetes semantics: a pod
 * selected by an Ingress policy is isolated and accepts only what some rule
 * allows — and sends the answer as a network RBAC filter (ALLOW by the
 * peer's address) ahead of the port's other filters. Sidecars and gateways
 * connect from their own instance addresses, so the address names the pod.
 * Egress is enforced at the source for captured pods (egress-network-policy.ts).
 */
import { isIP } from 'node:net';
import {
  clusterObjectsFrom,
  createNetworkPolicyEngine,
  type NetpolPod,
  type NetworkPolicyEngine,
  portMatches,
} from '../../kubernetes/index.js';
import { EXTENSION_TYPE_URLS, type Filter } from '../../xds/index.js';
import type { CompileContext } from './clusters.js';
import type { ProxyNode } from './proxy-node.js';

export interface Model {
  readonly engine: NetworkPolicyEngine;
  readonly pods: readonly NetpolPod[];
}

const models = new WeakMap<object, Model | null>();

function podOf(instance: {
  id: string;
  address: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  portNames: Readonly<Record<string, number>>;
}): NetpolPod {
  return {
    namespace: instance.namespace,
    name: instance.id,
    labels: { ...instance.labels },
    ip: instance.address,
    ports: Object.entries(instance.portNames).map(([name, containerPort]) => ({
      name,
      containerPort,
      protocol: 'TCP',
    })),
  };
}

/** The engine over the current config and instances (built once per registry), or null without policies. */
export function modelOf(context: CompileContext): Model | null {
  const hit = models.get(context.registry);
  if (hit !== undefined) return hit;
  const policies = [
    ...context.snapshot.ofKind('NetworkPolicy'),
    ...context.snapshot.ofKind('AdminNetworkPolicy'),
    ...context.snapshot.ofKind('BaselineAdminNetworkPolicy'),
  ];
  if (policies.length === 0) {
    models.set(context.registry, null);
    return null;
  }
  const manifests = [...context.snapshot.ofKind('Namespace'), ...policies].map((o, index) => ({
    file: o.file,
    index,
    object: o.resource,
  }));
  const objects = clusterObjectsFrom(manifests, { validatePods: false });
  const pods = context.registry.instances.map(podOf);
  const model = {
    engine: createNetworkPolicyEngine({
      namespaces: objects.namespaces,
      pods,
      policies: objects.policies,
      adminPolicies: objects.adminPolicies,
      baselinePolicies: objects.baselinePolicies,
    }),
    pods,
  };
  models.set(context.registry, model);
  return model;
}

/** This proxy's pod as the engine knows it (its instance), or built from its node. */
export function selfPod(model: Model, proxy: ProxyNode): NetpolPod {
  return (
    model.pods.find((p) => p.name === proxy.id && p.namespace === proxy.namespace) ?? {
      namespace: proxy.namespace,
      name: proxy.id,
      labels: { ...proxy.labels },
      ip: proxy.ip,
      ports: (proxy.workload?.ports ?? []).map((p) => ({
        containerPort: p.port,
        protocol: 'TCP',
        ...(p.name === undefined ? {} : { name: p.name }),
      })),
    }
  );
}

/** `address/bits` as an Envoy CidrRange principal; undefined for a malformed CIDR. */
function cidrPrincipal(cidr: string): object | undefined {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return undefined;
  const max = family === 6 ? 128 : 32;
  const bits = slash < 0 ? max : Number(cidr.slice(slash + 1));
  if (slash >= 0 && (!/^\d+$/.test(cidr.slice(slash + 1)) || bits > max)) return undefined;
  return { direct_remote_ip: { address_prefix: address, prefix_len: { value: bits } } };
}

/**
 * An ipBlock peer as a principal: the CIDR minus every `except` range
 * (`and_ids [cidr, not_id(or_ids excepts)]`), as the engine matches it. A
 * malformed CIDR matches nothing (the engine's fail-closed reading; the API
 * validation rejects it before this).
 */
export function ipBlockPrincipal(block: {
  readonly cidr: string;
  readonly except?: readonly string[];
}): object | undefined {
  const base = cidrPrincipal(block.cidr);
  if (base === undefined) return undefined;
  const excepts = (block.except ?? [])
    .map(cidrPrincipal)
    .filter((p): p is object => p !== undefined);
  if (excepts.length === 0) return base;
  return { and_ids: { ids: [base, { not_id: { or_ids: { ids: excepts } } }] } };
}

/** A source outside the mesh's pods: the engine matches it only by ipBlock / networks. */
const OUTSIDE: NetpolPod = { namespace: '', name: '', labels: {}, ports: [], external: true };

/**
 * The network RBAC filter enforcing ingress on `port` of this proxy's pod —
 * AdminNetworkPolicy, then NetworkPolicy, then BaselineAdminNetworkPolicy,
 * as the engine decides — or undefined when no policy of any tier selects it.
 *
 * - Known pods (the mesh's instances) by their address, when the engine
 *   allows them; the pod itself always (Kubernetes never isolates a pod from
 *   itself).
 * - Any other address: the admin tiers' ingress peers are pods and
 *   namespaces, so their decision for such an address does not depend on it;
 *   when the decision falls to NetworkPolicy, it is the ipBlocks of the
 *   rules whose ports match (each CIDR minus its `except`) and any rule
 *   without peers. Known pods' addresses are excluded from that part, so a
 *   CIDR never re-admits a pod the engine denies.
 */
export function networkPolicyFilter(
  context: CompileContext,
  proxy: ProxyNode,
  port: number,
): Filter | undefined {
  const model = modelOf(context);
  if (model === null || proxy.workload === undefined) return undefined;
  const self = selfPod(model, proxy);
  const isolating = model.engine.selecting(self).ingress;
  const admin = model.engine.selectingAdmin(self);
  if (isolating.length === 0 && admin.admin.length === 0 && admin.baseline.length === 0)
    return undefined;

  const principals: object[] = [];
  const known: object[] = [];
  const sources = model.pods.includes(self) ? model.pods : [...model.pods, self];
  for (const source of sources) {
    const principal = source.ip === undefined ? undefined : cidrPrincipal(source.ip);
    if (principal === undefined) continue;
    known.push(principal);
    const loopback = source.name === self.name && source.namespace === self.namespace;
    if (
      loopback ||
      model.engine.evaluate({ from: source, to: self, port, protocol: 'TCP' }).ingress.allowed
    )
      principals.push(principal);
  }

  const outside = model.engine.evaluate({ from: OUTSIDE, to: self, port, protocol: 'TCP' }).ingress;
  let external: object | undefined;
  if (outside.tier === 'NetworkPolicy') {
    let any = false;
    const blocks: object[] = [];
    for (const policy of isolating) {
      for (const rule of policy.ingress ?? []) {
        const ports = rule.ports ?? [];
        if (ports.length > 0 && !ports.some((p) => portMatches(p, port, 'TCP', self))) continue;
        const peers = rule.peers ?? [];
        if (peers.length === 0) any = true;
        for (const peer of peers) {
          if (peer.ipBlock === undefined) continue;
          const principal = ipBlockPrincipal(peer.ipBlock);
          if (principal !== undefined) blocks.push(principal);
        }
      }
    }
    external = any
      ? { any: true }
      : blocks.length === 0
        ? undefined
        : blocks.length === 1
          ? blocks[0]
          : { or_ids: { ids: blocks } };
  } else if (outside.allowed) {
    external = { any: true };
  }
  if (external !== undefined) {
    principals.push(
      known.length === 0
        ? external
        : { and_ids: { ids: [{ not_id: { or_ids: { ids: known } } }, external] } },
    );
  }
  return {
    name: 'envoy.filters.network.rbac',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.networkRbac,
      stat_prefix: 'netpol.',
      rules: {
        action: 'ALLOW',
        policies:
          principals.length === 0
            ? {}
            : { [`netpol-${proxy.namespace}`]: { permissions: [{ any: true }], principals } },
      },
    },
  };
}
