// AdminNetworkPolicy / BaselineAdminNetworkPolicy in the engine behind
// `check netpol`: every upstream conformance probe (test/helpers/anp-conformance.ts,
// restated from kubernetes-sigs/network-policy-api v0.1.7 conformance/tests)
// must get the upstream answer, the matrix must agree with pairwise
// evaluation, and the verdicts must name the deciding tier and rule.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Manifest } from '../../api/index.js';
import { ValidationError } from '../../api/index.js';
import {
  CONFORMANCE_CASES,
  conformanceCluster,
  pod,
} from '../../../test/helpers/anp-conformance.js';
import { clusterObjectsFrom } from '../cluster-objects.js';
import { createNetworkPolicyEngine } from './network-policy-engine.js';

function objectsOf(objects: readonly unknown[]) {
  const manifests: Manifest[] = [...conformanceCluster(), ...objects].map((object, index) => ({
    file: 'cluster.yaml',
    index,
    object,
  }));
  return clusterObjectsFrom(manifests, { validatePods: false });
}

function engineOf(objects: readonly unknown[]) {
  return createNetworkPolicyEngine(objectsOf(objects));
}

for (const c of CONFORMANCE_CASES) {
  test(`ANP conformance: ${c.name}`, () => {
    const engine = engineOf(c.objects);
    for (const [from, to, port, protocol, want] of c.probes) {
      const f = engine.pod(from);
      const t = engine.pod(to);
      assert.ok(f !== undefined && t !== undefined, `${from} ${to}`);
      const v = engine.evaluate({ from: f, to: t, port, protocol });
      assert.equal(
        v.allowed,
        want,
        `${from} -> ${to} ${protocol}/${String(port)}: ${v.egress.reason} | ${v.ingress.reason}`,
      );
    }
    // The matrix (pairwise when admin tiers exist) agrees with evaluate.
    for (const protocol of ['TCP', 'UDP'] as const) {
      const m = engine.matrix(80, protocol);
      m.pods.forEach((from, i) => {
        m.pods.forEach((to, j) => {
          const f = engine.pod(from);
          const t = engine.pod(to);
          assert.ok(f !== undefined && t !== undefined);
          assert.equal(
            m.matrix[i]?.[j],
            engine.evaluate({ from: f, to: t, port: 80, protocol }).allowed,
          );
        });
      });
    }
  });
}

test('verdicts name the tier and rule that decided', () => {
  const [first, , , , , , , passNp] = CONFORMANCE_CASES;
  assert.ok(first !== undefined && passNp !== undefined);
  const engine = engineOf(first.objects);
  const get = (k: string) => {
    const p = engine.pod(k);
    assert.ok(p !== undefined, k);
    return p;
  };
  const deny = engine.evaluate({
    from: get(pod('slytherin', 0)),
    to: get(pod('gryffindor', 0)),
    port: 80,
  });
  assert.equal(deny.ingress.tier, 'AdminNetworkPolicy');
  const rule = deny.ingress.admin;
  assert.ok(rule !== undefined);
  assert.equal(rule.rule, 'deny-from-slytherin-at-port-80');
  assert.equal(rule.index, 3);
  assert.match(
    deny.ingress.reason,
    /^denied by AdminNetworkPolicy "ingress-tcp" \(priority 3\) rule "deny-from-slytherin-at-port-80"/,
  );
  const open = engine.evaluate({
    from: get(pod('slytherin', 1)),
    to: get(pod('gryffindor', 0)),
    port: 8080,
  });
  assert.equal(open.ingress.tier, 'none');

  const e2 = engineOf(passNp.objects);
  const p = (k: string) => {
    const x = e2.pod(k);
    assert.ok(x !== undefined, k);
    return x;
  };
  const passed = e2.evaluate({
    from: p(pod('slytherin', 0)),
    to: p(pod('gryffindor', 0)),
    port: 80,
  });
  assert.equal(passed.ingress.tier, 'NetworkPolicy');
  assert.match(
    passed.ingress.reason,
    /AdminNetworkPolicy "pass-example" \(priority 10\) rule "deny-all-ingress-from-slytherin" passed it on; allowed by NetworkPolicy/,
  );
});

test('same priority: ordered by name; a peer of an unknown type fails closed', () => {
  const subject = { namespaces: { matchLabels: { 'conformance-house': 'gryffindor' } } };
  const from = [{ namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } }];
  const engine = engineOf([
    {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'b-allow' },
      spec: { priority: 7, subject, ingress: [{ action: 'Allow', from }] },
    },
    {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'a-deny' },
      spec: { priority: 7, subject, ingress: [{ action: 'Deny', from }] },
    },
  ]);
  const s0 = engine.pod(pod('slytherin', 0));
  const g0 = engine.pod(pod('gryffindor', 0));
  assert.ok(s0 !== undefined && g0 !== undefined);
  assert.equal(engine.evaluate({ from: s0, to: g0, port: 80 }).ingress.admin?.policy, 'a-deny');

  // Engine-level: a peer with none of the known fields (a newer CRD's field).
  const objects = objectsOf([]);
  const failClosed = createNetworkPolicyEngine({
    ...objects,
    adminPolicies: [
      {
        name: 'future',
        priority: 1,
        subject: { namespaces: {} },
        ingress: [
          { name: 'allow-future', action: 'Allow', peers: [{}] },
          { name: 'deny-future', action: 'Deny', peers: [{}] },
        ],
        egress: [],
      },
    ],
  });
  const v = failClosed.evaluate({ from: s0, to: g0, port: 80 });
  assert.equal(v.allowed, false);
  assert.equal(v.ingress.admin?.rule, 'deny-future');
});

test('a pod talking to itself stays allowed under an ANP Deny, and the verdict says why', () => {
  const engine = engineOf([
    {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'deny-all' },
      spec: {
        priority: 1,
        subject: { namespaces: {} },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      },
    },
  ]);
  const g0 = engine.pod(pod('gryffindor', 0));
  const g1 = engine.pod(pod('gryffindor', 1));
  assert.ok(g0 !== undefined && g1 !== undefined);
  assert.equal(engine.evaluate({ from: g1, to: g0, port: 80 }).allowed, false);
  const self = engine.evaluate({ from: g0, to: g0, port: 80 });
  assert.equal(self.allowed, true);
  assert.equal(self.loopback, true);
  assert.match(self.ingress.reason, /to itself is always allowed.*without that, denied by/);
});

test('ANP / BANP validation: the CRD rules, with the field path', () => {
  const bad = (spec: Record<string, unknown>, kind = 'AdminNetworkPolicy', name = 'x') => {
    try {
      objectsOf([
        {
          apiVersion: 'policy.networking.k8s.io/v1alpha1',
          kind,
          metadata: { name },
          spec,
        },
      ]);
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      return e.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    }
    return '';
  };
  const subject = { namespaces: {} };
  assert.match(bad({ priority: 1001, subject }), /spec\.priority: Invalid value: 1001/);
  assert.match(bad({ priority: 1, subject: {} }), /spec\.subject: .*exactly one of/);
  assert.match(
    bad({ priority: 1, subject, ingress: [{ action: 'Allow', from: [] }] }),
    /spec\.ingress\[0\]\.from: Required value/,
  );
  assert.match(
    bad({ priority: 1, subject, ingress: [{ action: 'Drop', from: [{ namespaces: {} }] }] }),
    /spec\.ingress\[0\]\.action/,
  );
  assert.match(
    bad({
      priority: 1,
      subject,
      egress: [
        {
          action: 'Deny',
          to: [{ networks: ['10.0.0.0/8'], namespaces: {} }],
          ports: [{ portRange: { start: 90, end: 80 } }],
        },
      ],
    }),
    /spec\.egress\[0\]\.to\[0\]: .*only one of[\s\S]*portRange: .*Start port must be less than End port/,
  );
  assert.match(
    bad({
      priority: 1,
      subject,
      egress: [{ action: 'Deny', to: [{ networks: ['10.0.0.300/8'] }] }],
    }),
    /networks\[0\]: Invalid value: "10\.0\.0\.300\/8": Invalid CIDR format provided/,
  );
  assert.match(
    bad({ subject }, 'BaselineAdminNetworkPolicy', 'not-default'),
    /metadata\.name: .*metadata\.name="default"/,
  );
  assert.match(
    bad(
      { subject, ingress: [{ action: 'Pass', from: [{ namespaces: {} }] }] },
      'BaselineAdminNetworkPolicy',
      'default',
    ),
    /spec\.ingress\[0\]\.action/,
  );
});

test('kinds no engine reads are listed for a warning', () => {
  const objects = objectsOf([
    {
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: 'future' },
      spec: {},
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'x' }, spec: {} },
  ]);
  assert.deepEqual(objects.ignored, [
    'cluster.yaml: policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy "future"',
    'cluster.yaml: v1 Service "web"',
  ]);
});
