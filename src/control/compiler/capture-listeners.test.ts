// The capture listeners a REDIRECT-mode sidecar gets (virtualOutbound,
// virtualInbound, hand-off inbound listeners), checked as compiled: they
// survive the Envoy codec and the proxy's validation, chains match what Istio's
// listeners match (HTTP ports by any address with detection, TCP ports by VIP,
// pod IPs, then Passthrough/BlackHole), VIPs come from spec.clusterIP and
// ServiceEntry auto-allocation, and an explicit-mode sidecar is unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../../api/index.js';
import { validateResource } from '../../proxy/index.js';
import { compileCaptureListener } from '../../proxy/capture/capture-config.js';
import { egressDenied } from '../../proxy/capture/egress-filter.js';
import { compileDnsTable } from '../../proxy/dns/index.js';
import { TYPE_URLS, type ResourceKind } from '../../xds/index.js';
import { adsServiceDefinition } from '../../xds/protos.js';
import { createSnapshot, validateManifests } from '../config/config-snapshot.js';
import { buildRegistry } from '../registry/service-registry.js';
import { compileProxy } from './compile-proxy.js';
import type { ProxyNode } from './proxy-node.js';

const MESH = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.10
  selector: { app: web }
  ports: [{ name: http, port: 9080 }, { name: tcp-echo, port: 9000 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: default }
spec:
  serviceAccount: web
  labels: { app: web }
  command: node
  ports: [{ name: http, port: 9080 }, { name: tcp-echo, port: 9000 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: default }
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP }]
`;

function setup(extra = '') {
  const validated = validateManifests(parseManifests(MESH + extra, 'mesh.yaml'));
  assert.ok(validated.ok, JSON.stringify(validated.ok ? [] : validated.problems));
  const snapshot = createSnapshot(1, validated.objects);
  const registry = buildRegistry(snapshot, [
    {
      id: 'web-0',
      address: '10.234.0.3',
      namespace: 'default',
      labels: { app: 'web' },
      serviceAccount: 'web',
      workload: 'web',
      portNames: { http: 9080 },
      healthy: true,
    },
  ]);
  const web = registry.workloads.find((w) => w.name === 'web');
  assert.ok(web);
  const node: ProxyNode = {
    id: 'sidecar~10.234.0.3~web-0.default~default.svc.cluster.local',
    type: 'sidecar',
    ip: '10.234.0.3',
    appAddress: '10.234.0.3',
    namespace: 'default',
    serviceAccount: 'web',
    labels: web.labels,
    workload: web,
    interception: 'REDIRECT',
  };
  const inputs = {
    snapshot,
    registry,
    trustDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    mesh: { outboundTrafficPolicy: 'ALLOW_ANY' as const },
    trustBundlePem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
    credentials: new Map(),
  };
  return { inputs, node, registry };
}

type R = Record<string, unknown>;
const chainsOf = (listener: R | undefined): R[] => (listener?.['filter_chains'] ?? []) as R[];

test('a REDIRECT sidecar gets virtualOutbound/virtualInbound that encode and validate', () => {
  const { inputs, node } = setup();
  const resources = compileProxy(inputs, node);
  const codec = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(codec);
  for (const kind of Object.keys(resources) as ResourceKind[])
    for (const [name, resource] of resources[kind]) {
      const bytes = codec.responseSerialize({
        version_info: '1',
        type_url: TYPE_URLS[kind],
        nonce: '1',
        resources: [resource],
      });
      const decoded = codec.responseDeserialize(bytes) as { resources: R[] };
      const back: R | undefined = decoded.resources[0];
      assert.ok(back, `${kind} ${name} lost in encoding`);
      assert.deepEqual(validateResource(kind, back), [], `${kind} ${name}`);
    }

  const out = resources.listener.get('virtualOutbound');
  assert.deepEqual(out?.['address'], {
    socket_address: { address: '0.0.0.0', port_value: 15001 },
  });
  assert.deepEqual(out['use_original_dst'], { value: true });
  // No detection timeout (Istio's protocolDetectionTimeout default): a slow HTTP client stays HTTP.
  assert.deepEqual(out['listener_filters_timeout'], { seconds: '0' });
  const byName = new Map(chainsOf(out).map((c) => [c['name'] as string, c]));
  // HTTP port: any address, with detection; what is not HTTP goes to its original destination,
  // never to a service that happens to share the port.
  assert.deepEqual(byName.get('outbound|9080|http')?.['filter_chain_match'], {
    destination_port: { value: 9080 },
    application_protocols: ['http/1.0', 'http/1.1', 'h2c'],
  });
  assert.equal(byName.has('outbound|9080|tcp'), false);
  assert.match(JSON.stringify(byName.get('PassthroughFilterChain|9080')), /PassthroughCluster/);
  assert.doesNotMatch(JSON.stringify(byName.get('PassthroughFilterChain|9080')), /outbound\|/);
  // The HTTP service's VIP: HTTP by Host, and its own TCP fallback.
  const vip = [{ address_prefix: '10.96.0.10', prefix_len: { value: 32 } }];
  assert.deepEqual(
    byName.get('outbound|9080||web.default.svc.cluster.local|vip|http')?.['filter_chain_match'],
    {
      destination_port: { value: 9080 },
      prefix_ranges: vip,
      application_protocols: ['http/1.0', 'http/1.1', 'h2c'],
    },
  );
  assert.match(
    JSON.stringify(byName.get('outbound|9080||web.default.svc.cluster.local|vip')),
    /"cluster":"outbound\|9080\|\|web\.default\.svc\.cluster\.local"/,
  );
  // TCP port: the VIP only.
  assert.deepEqual(
    byName.get('outbound|9000||web.default.svc.cluster.local|vip')?.['filter_chain_match'],
    {
      destination_port: { value: 9000 },
      prefix_ranges: [{ address_prefix: '10.96.0.10', prefix_len: { value: 32 } }],
    },
  );
  // The ServiceEntry host got an auto-allocated VIP (Istio's 240.240.0.0/16).
  assert.deepEqual(
    (byName.get('outbound|5432||db.example.com|vip')?.['filter_chain_match'] as R)['prefix_ranges'],
    [{ address_prefix: '240.240.0.1', prefix_len: { value: 32 } }],
  );
  // The pod IP of the endpoint, per port: still the service cluster (mTLS).
  assert.ok(byName.has('outbound|9080||web.default.svc.cluster.local|endpoint|10.234.0.3:9080'));
  // A TCP port's other addresses fall through to Passthrough for that port (Envoy matches port first).
  assert.match(JSON.stringify(byName.get('PassthroughFilterChain|9000')), /PassthroughCluster/);
  const last = chainsOf(out).at(-1);
  assert.equal(last?.['name'], 'PassthroughFilterChain');
  assert.match(JSON.stringify(last), /"cluster":"PassthroughCluster"/);

  // Inbound: hand-off listeners (not bound) + virtualInbound on 15006.
  const inbound = resources.listener.get('inbound|9080');
  assert.deepEqual(inbound?.['bind_to_port'], { value: false });
  const vin = resources.listener.get('virtualInbound');
  assert.deepEqual(vin?.['address'], { socket_address: { address: '0.0.0.0', port_value: 15006 } });
  assert.match(JSON.stringify(vin), /BlackHoleCluster/);

  // The VIP is a domain of the service's virtual host (Host: 10.96.0.10:9080 routes).
  assert.match(JSON.stringify(resources.route.get('9080')), /"10\.96\.0\.10:9080"/);
});

test('REGISTRY_ONLY sends unknown captured destinations to BlackHoleCluster', () => {
  const { inputs, node } = setup();
  const resources = compileProxy(
    { ...inputs, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } },
    node,
  );
  const last = chainsOf(resources.listener.get('virtualOutbound')).at(-1);
  assert.match(JSON.stringify(last), /"cluster":"BlackHoleCluster"/);
});

test('an explicit-proxy sidecar (no INTERCEPTION_MODE) gets no capture listeners', () => {
  const { inputs, node } = setup();
  const { interception: _, ...explicit } = node;
  const resources = compileProxy(inputs, explicit);
  assert.equal(resources.listener.has('virtualOutbound'), false);
  assert.equal(resources.listener.has('virtualInbound'), false);
  assert.equal(resources.listener.get('inbound|9080')?.['bind_to_port'], undefined);
  assert.ok(resources.listener.has('outbound'));
});

test('spec.clusterIP must be an address or None', () => {
  const bad = validateManifests(
    parseManifests(
      `apiVersion: v1
kind: Service
metadata: { name: x }
spec: { clusterIP: "not-an-ip", ports: [{ port: 80 }] }
`,
      'bad.yaml',
    ),
  );
  assert.ok(!bad.ok);
  assert.match(JSON.stringify(bad.problems), /clusterIP/);
});

test('a REDIRECT sidecar gets the DNS table and, under an egress policy, RBAC ahead of every chain', async () => {
  const { inputs, node } = setup(`
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-egress, namespace: default }
spec:
  podSelector: { matchLabels: { app: web } }
  policyTypes: [Egress]
  egress:
    - to: [{ ipBlock: { cidr: 192.0.2.0/24, except: [192.0.2.9/32] } }]
      ports: [{ port: 7000, endPort: 7010 }]
    - ports: [{ port: 5432 }]
`);
  const resources = compileProxy(inputs, node);
  const codec = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(codec);
  const decode = (kind: ResourceKind, resource: R): R => {
    const bytes = codec.responseSerialize({
      version_info: '1',
      type_url: TYPE_URLS[kind],
      nonce: '1',
      resources: [resource],
    });
    const back = (codec.responseDeserialize(bytes) as { resources: R[] }).resources[0];
    assert.ok(back);
    assert.deepEqual(validateResource(kind, back), [], `${kind} ${String(resource['name'])}`);
    return back;
  };
  const dns = resources.listener.get('dns');
  assert.ok(dns, 'the dns listener');
  const table = compileDnsTable(decode('listener', dns));
  for (const name of ['web', 'web.default', 'web.default.svc', 'WEB.default.svc.cluster.local.'])
    assert.deepEqual(table.lookup(name)?.v4, ['10.96.0.10'], name);
  assert.deepEqual(table.lookup('db.example.com')?.v4, ['240.240.0.1'], 'auto-allocated VIP');
  assert.equal(table.lookup('example.org'), undefined);

  const out = decode('listener', resources.listener.get('virtualOutbound') ?? {});
  const chains = chainsOf(out);
  assert.ok(chains.length > 3);
  for (const chain of chains)
    assert.equal((chain['filters'] as R[])[0]?.['name'], 'envoy.filters.network.rbac');
  // The decoded filter, compiled as the proxy compiles it before the ACK, decides as the
  // engine: the ipBlock's ports, minus except, nothing else.
  const problems: string[] = [];
  const compiled = compileCaptureListener(out, problems);
  assert.deepEqual(problems, []);
  const first = compiled.chains[0];
  assert.ok(first?.egress);
  const allows = async (address: string, port: number): Promise<boolean> =>
    (await egressDenied([first], { address, port, family: 4 })) === undefined;
  assert.equal(await allows('192.0.2.1', 7000), true);
  assert.equal(await allows('192.0.2.1', 7010), true);
  assert.equal(await allows('192.0.2.1', 7011), false);
  assert.equal(await allows('192.0.2.9', 7000), false, 'except');
  assert.equal(await allows('10.96.0.10', 9080), false, 'web VIP: no rule allows it');
  // A rule without peers allows any destination on its port: the DNS ServiceEntry's VIP too.
  assert.equal(await allows('240.240.0.1', 5432), true, 'db.example.com on 5432');
  assert.equal(await allows('198.51.100.7', 5432), true);
  assert.equal(await allows('198.51.100.7', 5433), false);
});
