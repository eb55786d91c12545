/**
 * Kubernetes NetworkPolicy in the local mesh: for each inbound port of a
 * workload instance the control plane asks the NetworkPolicy engine
 * (src/kubernetes) which pods may connect — Kubernetes semantics: a pod
 * selected by an Ingress policy is isolated and accepts only what some rule
 * allows — and sends the answer as a network RBAC filter (ALLOW by the
 * peer's address) ahead of the port's other filters. Sidecars and gateways
 * connect from their own instance addresses, so the address names the pod.
 * Egress policies are not enforced yet (they would be checked at the source).
 */
import { rec, str } from '../../xds/index.js';
import {
  clusterObjectsFrom,
  createNetworkPolicyEngine,
  type NetpolPod,
  type NetworkPolicyEngine,
} from '../../kubernetes/index.js';
import { EXTENSION_TYPE_URLS } from '../../xds/index.js';
import type { CompileContext } from './clusters.js';
import type { ProxyNode } from './proxy-node.js';

interface Model {
  readonly engine: NetworkPolicyEngine;
  readonly pods: readonly NetpolPod[];
  readonly cidrs: readonly string[];
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
function modelOf(context: CompileContext): Model | null {
  const hit = models.get(context.registry);
  if (hit !== undefined) return hit;
  const policies = context.snapshot.ofKind('NetworkPolicy');
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
  const cidrs: string[] = [];
  for (const p of policies) {
    const spec = rec(rec(p.resource)['spec']);
    for (const rule of Array.isArray(spec['ingress']) ? (spec['ingress'] as unknown[]) : [])
      for (const peer of Array.isArray(rec(rule)['from']) ? (rec(rule)['from'] as unknown[]) : []) {
        const cidr = str(rec(rec(peer)['ipBlock'])['cidr']);
        if (cidr !== '') cidrs.push(cidr);
      }
  }
  const model = {
    engine: createNetworkPolicyEngine({
      namespaces: objects.namespaces,
      pods,
      policies: objects.policies,
    }),
    pods,
    cidrs,
  };
  models.set(context.registry, model);
  return model;
}

function cidrPrincipal(cidr: string): object {
  const [address, bits] = cidr.split('/');
  const v6 = (address ?? '').includes(':');
  return {
    direct_remote_ip: {
      address_prefix: address,
      prefix_len: { value: bits === undefined ? (v6 ? 128 : 32) : Number(bits) },
    },
  };
}

/**
 * The network RBAC filter enforcing NetworkPolicy ingress on `port` of this
 * proxy's pod, or undefined when no policy isolates it.
 */
export function networkPolicyFilter(
  context: CompileContext,
  proxy: ProxyNode,
  port: number,
): object | undefined {
  const model = modelOf(context);
  if (model === null || proxy.workload === undefined) return undefined;
  const self = model.pods.find((p) => p.name === proxy.id) ?? {
    namespace: proxy.namespace,
    name: proxy.id,
    labels: { ...proxy.labels },
    ip: proxy.ip,
    ports: proxy.workload.ports.map((p) => ({
      containerPort: p.port,
      protocol: 'TCP',
      ...(p.name === undefined ? {} : { name: p.name }),
    })),
  };
  if (model.engine.selecting(self).ingress.length === 0) return undefined;
  const principals: object[] = [];
  for (const source of model.pods) {
    if (source.name === self.name || source.ip === undefined) continue;
    const verdict = model.engine.evaluate({ from: source, to: self, port, protocol: 'TCP' });
    if (verdict.ingress.allowed) principals.push(cidrPrincipal(`${source.ip}/32`));
  }
  // ipBlock peers (addresses outside the mesh): allowed when the engine allows a pod-less source there.
  for (const cidr of model.cidrs) {
    const probe = cidr.split('/')[0] ?? '';
    const verdict = model.engine.evaluate({
      from: { namespace: '', name: `ipblock:${cidr}`, labels: {}, ip: probe, ports: [] },
      to: self,
      port,
      protocol: 'TCP',
    });
    if (verdict.ingress.allowed) principals.push(cidrPrincipal(cidr));
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
