// Differential test: the NetworkPolicy cases of the Kubernetes netpol e2e
// suite (kubernetes/kubernetes test/e2e/network/netpol/network_policy.go,
// shared in test/helpers/netpol-e2e.ts) run through BOTH the engine behind
// `palisade check netpol` and the network RBAC filter the control plane
// compiles for each destination sidecar, evaluated by the proxy's own
// evaluator (tcpPolicyEvaluator, what the inbound listener runs on a TCP
// chain). The sidecar enforces the destination's ingress, so every cell must
// agree with the engine's ingress verdict; the e2e expectation is checked
// on the same cells for pairs the source's egress does not decide.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseManifests } from '../../api/index.js';
import {
  clusterObjectsFrom,
  compileIpBlock,
  createNetworkPolicyEngine,
  type NetpolPod,
} from '../../kubernetes/index.js';
import { tcpPolicyEvaluator } from '../../proxy/filters/authz/index.js';
import { ALL, cases, ip, netpol, NS, PODS } from '../../../test/helpers/netpol-e2e.js';
import { CONFORMANCE_CASES, conformanceCluster } from '../../../test/helpers/anp-conformance.js';
import { createSnapshot, validateManifests } from '../config/config-snapshot.js';
import { buildRegistry, type InstanceView } from '../registry/service-registry.js';
import type { CompileContext } from './clusters.js';
import { networkPolicyFilter } from './network-policy.js';
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

function contextFor(
  policies: readonly unknown[],
  pods = instances(),
  withNamespaces = true,
): CompileContext {
  const manifests = parseManifests(
    [
      ...(withNamespaces
        ? NS.map((n) => ({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: n, labels: { ns: n } },
          }))
        : []),
      ...policies,
    ]
      .map((o) => JSON.stringify(o))
      .join('\n---\n'),
    'cluster.yaml',
  );
  const validated = validateManifests(manifests);
  assert.ok(validated.ok, JSON.stringify(validated.ok ? [] : validated.problems));
  const snapshot = createSnapshot(1, validated.objects);
  return {
    snapshot,
    registry: buildRegistry(snapshot, pods),
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

/** The sidecar's answer for a TCP connection from `sourceIp` to `dest`:`port`. */
async function sidecarAllows(
  context: CompileContext,
  dest: InstanceView,
  port: number,
  sourceIp: string,
): Promise<boolean> {
  const filter = networkPolicyFilter(context, proxyOf(dest), port);
  if (filter === undefined) return true;
  const decision = await tcpPolicyEvaluator([filter]).decide({
    principal: null,
    sourceIp,
    destinationIp: dest.address,
    destinationPort: port,
    protocol: 'tcp',
  });
  return decision.decision === 'ALLOW';
}

function engineFor(policies: readonly unknown[]) {
  const manifests = parseManifests(
    [
      ...NS.map((n) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: n, labels: { ns: n } },
      })),
      ...policies,
    ]
      .map((o) => JSON.stringify(o))
      .join('\n---\n'),
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

/** A source that is no pod (the engine's `external`), at the addresses probed. */
const OUTSIDE: NetpolPod = { namespace: '', name: '', labels: {}, ports: [], external: true };
const OUTSIDE_ADDRESSES = ['10.0.2.200', '10.0.0.1', '10.1.2.3', '10.200.0.1', '192.168.7.7'];

for (const c of cases) {
  if ((c.protocol ?? 'TCP') !== 'TCP') continue;
  test(`engine and compiled sidecar rules agree: ${c.name}`, async () => {
    const context = contextFor(c.policies);
    const { engine, pods } = engineFor(c.policies);
    const wrong: string[] = [];
    const all = instances();
    for (const dest of all) {
      const to = pods.find((p) => p.namespace === dest.namespace && p.name === dest.id);
      assert.ok(to !== undefined);
      for (const from of pods) {
        const key = `${from.namespace}/${from.name}`;
        const verdict = engine.evaluate({ from, to, port: c.port, protocol: 'TCP' });
        const sidecar = await sidecarAllows(context, dest, c.port, from.ip ?? '');
        if (sidecar !== verdict.ingress.allowed)
          wrong.push(
            `${key} -> ${dest.namespace}/${dest.id}: engine ingress ${String(verdict.ingress.allowed)}, sidecar ${String(sidecar)}`,
          );
        // Where egress is open the e2e expectation is the sidecar's answer too.
        const want = c.expect.m.get(`${key}>${dest.namespace}/${dest.id}`);
        if (verdict.egress.allowed && want !== sidecar)
          wrong.push(`${key} -> ${dest.namespace}/${dest.id}: e2e expects ${String(want)}`);
      }
      // Addresses outside the mesh's pods.
      for (const address of OUTSIDE_ADDRESSES) {
        const from = { ...OUTSIDE, ip: address };
        const want = engine.evaluate({ from, to, port: c.port, protocol: 'TCP' }).ingress.allowed;
        const sidecar = await sidecarAllows(context, dest, c.port, address);
        if (sidecar !== want)
          wrong.push(
            `${address} -> ${dest.namespace}/${dest.id}: engine ${String(want)}, sidecar ${String(sidecar)}`,
          );
      }
    }
    assert.equal(all.length * pods.length, ALL.length * ALL.length);
    assert.deepEqual(wrong, []);
  });
}

// The issue's own example: `cidr 10.0.0.0/8, except [10.1.0.0/16]` — the
// sidecar once allowed all of 10.0.0.0/8 (except dropped), and dropped the
// whole block when an except covered its base address. Addresses outside the
// mesh are checked against the engine's own ipBlock matcher.
test('ipBlock except is enforced by the sidecar for addresses outside the mesh', async () => {
  const blocks = [
    { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] },
    { cidr: '172.16.0.0/12', except: ['172.16.0.0/16'] },
    { cidr: '192.168.0.0/16', except: ['192.168.0.0/24', '192.168.9.0/24'] },
  ];
  const policy = netpol('x', 'cidr-except', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: blocks.map((ipBlock) => ({ from: [{ ipBlock }], ports: [{ port: 80 }] })),
  });
  const context = contextFor([policy]);
  const dest = instances().find((i) => i.namespace === 'x' && i.id === 'a');
  assert.ok(dest !== undefined);
  const matchers = blocks.map(compileIpBlock);
  const probes = [
    '10.1.2.3',
    '10.1.0.0',
    '10.2.0.1',
    '10.0.0.1',
    '10.0.1.9',
    '10.255.255.255',
    '11.0.0.1',
    '172.16.0.0',
    '172.16.0.5',
    '172.16.255.255',
    '172.17.0.1',
    '172.31.255.255',
    '172.32.0.1',
    '192.168.0.7',
    '192.168.1.7',
    '192.168.9.1',
    '192.168.10.1',
  ];
  for (const probe of probes) {
    const want = matchers.some((m) => m.matches(probe));
    assert.equal(await sidecarAllows(context, dest, 80, probe), want, `${probe} on port 80`);
    assert.equal(await sidecarAllows(context, dest, 81, probe), false, `${probe} on port 81`);
  }
  assert.equal(await sidecarAllows(context, dest, 80, '10.1.2.3'), false, 'the issue example');
  assert.equal(await sidecarAllows(context, dest, 80, '10.0.200.1'), true);
  assert.equal(await sidecarAllows(context, dest, 80, '172.16.0.5'), false, 'except at the base');
  assert.equal(await sidecarAllows(context, dest, 80, '172.17.0.1'), true, 'rest of that block');
});

test('a rule without peers allows any source address on its ports, including outside the mesh', async () => {
  const context = contextFor([
    netpol('x', 'open-81', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ port: 81 }] }],
    }),
  ]);
  const dest = instances().find((i) => i.namespace === 'x' && i.id === 'a');
  assert.ok(dest !== undefined);
  assert.equal(await sidecarAllows(context, dest, 81, '203.0.113.9'), true);
  assert.equal(await sidecarAllows(context, dest, 80, '203.0.113.9'), false);
  assert.equal(await sidecarAllows(context, dest, 80, dest.address), true, 'loopback');
});

test('property: random ipBlock policies, engine and sidecar agree on every pod pair', async () => {
  const octet = fc.integer({ min: 0, max: 3 });
  // Pods live in 10.0.1.0-10.0.3.255; a CIDR of /22 or wider holds every
  // 10.0.a.b/23+ except (Kubernetes validation wants a strict subset).
  const block = fc
    .record({
      a: octet,
      b: octet,
      bits: fc.integer({ min: 8, max: 32 }),
      except: fc.array(
        fc
          .tuple(octet, octet, fc.integer({ min: 23, max: 32 }))
          .map(([a, b, bits]) => `10.0.${String(a)}.${String(b)}/${String(bits)}`),
        { maxLength: 2 },
      ),
    })
    .map(({ a, b, bits, except }) => ({
      cidr: `10.0.${String(a)}.${String(b)}/${String(bits)}`,
      except: bits <= 22 ? except : [],
    }));
  const rule = fc.record({
    from: fc.array(
      fc.oneof(
        block.map((ipBlock) => ({ ipBlock })),
        fc.constantFrom('a', 'b').map((pod) => ({ podSelector: { matchLabels: { pod } } })),
      ),
      { maxLength: 2 },
    ),
    ports: fc.array(
      fc.oneof(
        fc.constantFrom(80, 81).map((port) => ({ port })),
        fc.constant({ port: 'serve-81-tcp' }),
      ),
      { maxLength: 1 },
    ),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(rule, { maxLength: 3 }),
      fc.constantFrom(80, 81),
      async (ingress, port) => {
        const policies = [netpol('x', 'p', { podSelector: {}, ingress })];
        const context = contextFor(policies);
        const { engine, pods } = engineFor(policies);
        for (const dest of instances().filter((i) => i.namespace === 'x')) {
          const to = pods.find((p) => p.namespace === 'x' && p.name === dest.id);
          assert.ok(to !== undefined);
          for (const from of pods) {
            const want: boolean = engine.evaluate({ from, to, port }).ingress.allowed;
            const got = await sidecarAllows(context, dest, port, from.ip ?? '');
            assert.equal(
              got,
              want,
              `${from.namespace}/${from.name} -> x/${dest.id}:${String(port)}`,
            );
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});

// The same differential for AdminNetworkPolicy / BaselineAdminNetworkPolicy:
// the upstream conformance cases (test/helpers/anp-conformance.ts), every
// pod pair on TCP 80 and 8080 plus addresses outside the mesh, engine
// ingress verdict = compiled sidecar rule; and every upstream probe that the
// destination's ingress decides gets the upstream answer from the sidecar.
for (const c of CONFORMANCE_CASES) {
  test(`ANP conformance, engine and compiled sidecar rules agree: ${c.name}`, async () => {
    const docs = [...conformanceCluster(), ...c.objects];
    const manifests = parseManifests(
      docs.map((o) => JSON.stringify(o)).join('\n---\n'),
      'cluster.yaml',
    );
    const objects = clusterObjectsFrom(manifests, { validatePods: false });
    const pods: NetpolPod[] = objects.pods.map((p) => ({
      ...p,
      ports: p.ports.filter((x) => (x.protocol ?? 'TCP') === 'TCP'),
    }));
    const engine = createNetworkPolicyEngine({ ...objects, pods });
    const views: InstanceView[] = pods.map((p) => ({
      id: p.name,
      address: p.ip ?? '',
      namespace: p.namespace,
      labels: p.labels,
      serviceAccount: 'default',
      workload: p.name,
      portNames: Object.fromEntries(
        p.ports.flatMap((x) => (x.name === undefined ? [] : [[x.name, x.containerPort]])),
      ),
      healthy: true,
    }));
    const meshDocs = docs.filter((d) => (d as { kind?: string }).kind !== 'Pod');
    const context = contextFor(meshDocs, views, false);
    const wrong: string[] = [];
    for (const dest of views) {
      const to = pods.find((p) => p.namespace === dest.namespace && p.name === dest.id);
      assert.ok(to !== undefined);
      for (const port of [80, 8080]) {
        for (const from of pods) {
          const want = engine.evaluate({ from, to, port }).ingress.allowed;
          const got = await sidecarAllows(context, dest, port, from.ip ?? '');
          if (got !== want)
            wrong.push(
              `${from.namespace}/${from.name} -> ${dest.namespace}/${dest.id}:${String(port)}`,
            );
        }
        for (const address of ['203.0.113.9', '10.9.9.9']) {
          const want = engine.evaluate({ from: { ...OUTSIDE, ip: address }, to, port }).ingress
            .allowed;
          const got = await sidecarAllows(context, dest, port, address);
          if (got !== want)
            wrong.push(`${address} -> ${dest.namespace}/${dest.id}:${String(port)}`);
        }
      }
    }
    for (const [from, to, port, protocol, want] of c.probes) {
      if (protocol !== 'TCP') continue;
      const f = engine.pod(from);
      const t = engine.pod(to);
      assert.ok(f !== undefined && t !== undefined);
      const v = engine.evaluate({ from: f, to: t, port, protocol });
      // Egress is enforced at the source, not by this sidecar.
      if (!v.egress.allowed) continue;
      const dest = views.find((x) => `${x.namespace}/${x.id}` === to);
      assert.ok(dest !== undefined);
      const got = await sidecarAllows(context, dest, port, f.ip ?? '');
      if (got !== want)
        wrong.push(`upstream probe ${from} -> ${to}:${String(port)} wants ${String(want)}`);
    }
    assert.deepEqual(wrong, []);
  });
}
