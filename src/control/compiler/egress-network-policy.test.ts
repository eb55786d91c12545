// Differential test for egress at the source: the NetworkPolicy cases of the
// Kubernetes netpol e2e suite (test/helpers/netpol-e2e.ts) run through BOTH
// the engine behind `palisade check netpol` and the network RBAC filter the
// control plane puts ahead of a captured sidecar's virtualOutbound chains,
// evaluated by the proxy's own evaluator on the original destination. Every
// (source, destination, port) must agree with the engine's egress verdict;
// ipBlock/endPort rules are checked on addresses outside the mesh, and the
// endpoints sent to the sidecar keep only the pods its egress allows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../../api/index.js';
import {
  clusterObjectsFrom,
  compileIpBlock,
  createNetworkPolicyEngine,
  type NetpolPod,
} from '../../kubernetes/index.js';
import { tcpPolicyEvaluator } from '../../proxy/filters/authz/index.js';
import { cases, ip, netpol, NS, PODS } from '../../../test/helpers/netpol-e2e.js';
import { createSnapshot, validateManifests } from '../config/config-snapshot.js';
import { buildRegistry, type InstanceView } from '../registry/service-registry.js';
import type { CompileContext } from './clusters.js';
import {
  egressPolicyFor,
  withAllowedEndpoints,
  withEgressFilter,
  type EgressPolicy,
} from './egress-network-policy.js';
import type { ProxyNode } from './proxy-node.js';

const PORT_NAMES: Record<string, number> = { 'serve-80-tcp': 80, 'serve-81-tcp': 81 };

function instances(): InstanceView[] {
  return NS.flatMap((ns) =>
    PODS.map((pod) => ({
      id: pod,
      address: ip(ns, pod),
      namespace: ns,
      labels: { pod },
      serviceAccount: 'default',
      workload: pod,
      portNames: PORT_NAMES,
      healthy: true,
    })),
  );
}

function namespaces(): unknown[] {
  return NS.map((n) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: n, labels: { ns: n } },
  }));
}

function contextFor(policies: readonly unknown[]): CompileContext {
  const manifests = parseManifests(
    [...namespaces(), ...policies].map((o) => JSON.stringify(o)).join('\n---\n'),
    'cluster.yaml',
  );
  const validated = validateManifests(manifests);
  assert.ok(validated.ok, JSON.stringify(validated.ok ? [] : validated.problems));
  const snapshot = createSnapshot(1, validated.objects);
  return {
    snapshot,
    registry: buildRegistry(snapshot, instances()),
    trustDomain: 'cluster.local',
    rootNamespace: 'istio-system',
  };
}

function proxyOf(i: InstanceView): ProxyNode {
  return {
    id: i.id,
    type: 'sidecar',
    ip: i.address,
    appAddress: i.address,
    namespace: i.namespace,
    serviceAccount: i.serviceAccount,
    labels: i.labels,
    interception: 'REDIRECT',
    workload: {
      name: i.workload,
      namespace: i.namespace,
      labels: i.labels,
      serviceAccount: i.serviceAccount,
      ports: Object.entries(i.portNames).map(([name, port]) => ({
        name,
        port,
        protocol: 'TCP' as const,
      })),
    },
  };
}

function engineFor(policies: readonly unknown[]) {
  const manifests = parseManifests(
    [...namespaces(), ...policies].map((o) => JSON.stringify(o)).join('\n---\n'),
    'cluster.yaml',
  );
  const objects = clusterObjectsFrom(manifests, { validatePods: false });
  const pods: NetpolPod[] = instances().map((i) => ({
    namespace: i.namespace,
    name: i.id,
    labels: i.labels,
    ip: i.address,
    ports: Object.entries(i.portNames).map(([name, containerPort]) => ({
      name,
      containerPort,
      protocol: 'TCP',
    })),
  }));
  return { engine: createNetworkPolicyEngine({ ...objects, pods }), pods };
}

/** What the source sidecar does with a captured connection to `address`:`port`. */
async function sourceAllows(
  policy: EgressPolicy | undefined,
  address: string,
  port: number,
): Promise<boolean> {
  if (policy === undefined) return true;
  const decision = await tcpPolicyEvaluator([policy.filter]).decide({
    principal: null,
    destinationIp: address,
    destinationPort: port,
    protocol: 'tcp',
  });
  return decision.decision === 'ALLOW';
}

for (const c of cases) {
  if ((c.protocol ?? 'TCP') !== 'TCP') continue;
  test(`engine egress and the source sidecar's filter agree: ${c.name}`, async () => {
    const context = contextFor(c.policies);
    const { engine, pods } = engineFor(c.policies);
    const wrong: string[] = [];
    for (const source of instances()) {
      const from = pods.find((p) => p.namespace === source.namespace && p.name === source.id);
      assert.ok(from !== undefined);
      const policy = egressPolicyFor(context, proxyOf(source), []);
      for (const to of pods) {
        const want = engine.evaluate({ from, to, port: c.port, protocol: 'TCP' }).egress.allowed;
        const got = await sourceAllows(policy, to.ip ?? '', c.port);
        if (got !== want)
          wrong.push(
            `${from.namespace}/${from.name} -> ${to.namespace}/${to.name}:${String(c.port)}: engine ${String(want)}, sidecar ${String(got)}`,
          );
        if (policy !== undefined && policy.allowsEndpoint(to.ip ?? '', c.port) !== want)
          wrong.push(`endpoint filter disagrees for ${to.namespace}/${to.name}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
}

test('egress ipBlock with except and an endPort range, to addresses outside the mesh', async () => {
  const block = { cidr: '192.168.0.0/16', except: ['192.168.9.0/24'] };
  const context = contextFor([
    netpol('x', 'egress', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [
        { to: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80 }] },
        { to: [{ ipBlock: block }], ports: [{ port: 7000, endPort: 7010 }] },
      ],
    }),
  ]);
  const source = instances().find((i) => i.namespace === 'x' && i.id === 'a');
  assert.ok(source !== undefined);
  const policy = egressPolicyFor(context, proxyOf(source), []);
  assert.ok(policy !== undefined, 'x/a is isolated for egress');
  const m = compileIpBlock(block);
  for (const address of ['192.168.1.1', '192.168.9.7', '192.169.0.1', '10.9.9.9'])
    for (const port of [6999, 7000, 7005, 7010, 7011, 80]) {
      const want = m.matches(address) && port >= 7000 && port <= 7010;
      assert.equal(await sourceAllows(policy, address, port), want, `${address}:${String(port)}`);
    }
  assert.equal(await sourceAllows(policy, ip('x', 'b'), 80), true, 'x/b on 80');
  assert.equal(await sourceAllows(policy, ip('x', 'b'), 81), false, 'x/b on 81');
  assert.equal(await sourceAllows(policy, ip('x', 'c'), 80), false, 'x/c');
  // Another pod that is not isolated for egress gets no filter.
  const other = instances().find((i) => i.namespace === 'y' && i.id === 'a');
  assert.ok(other !== undefined);
  assert.equal(egressPolicyFor(context, proxyOf(other), []), undefined);

  // Every virtualOutbound chain gets the filter first; endpoints keep only allowed pods.
  const listener = withEgressFilter(
    { name: 'virtualOutbound', filter_chains: [{ name: 'a', filters: [{ name: 'tcp' }] }] },
    policy,
  );
  const chain = (listener['filter_chains'] as { filters: { name: string }[] }[])[0];
  assert.deepEqual(
    chain?.filters.map((f) => f.name),
    ['envoy.filters.network.rbac', 'tcp'],
  );
  const lb = (address: string) => ({
    endpoint: { address: { socket_address: { address, port_value: 80 } } },
  });
  const cla = withAllowedEndpoints(
    {
      cluster_name: 'outbound|80||x',
      endpoints: [{ lb_endpoints: [lb(ip('x', 'b')), lb(ip('x', 'c')), lb('svc.example.com')] }],
    },
    policy,
  );
  const kept = (cla['endpoints'] as { lb_endpoints: ReturnType<typeof lb>[] }[])[0]?.lb_endpoints;
  assert.deepEqual(
    kept?.map((e) => e.endpoint.address.socket_address.address),
    [ip('x', 'b')],
    'x/c denied; a hostname endpoint is outside every ipBlock',
  );
});
