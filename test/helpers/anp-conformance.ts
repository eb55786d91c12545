// The AdminNetworkPolicy / BaselineAdminNetworkPolicy conformance cases of
// kubernetes-sigs/network-policy-api (release v0.1.7, the last with the
// v1alpha1 API: conformance/tests/*.go over conformance/base/*.yaml),
// restated here: the same cluster model (conformance/base/manifests.yaml:
// five "house" namespaces labelled conformance-house=<house>, two pods each,
// serving TCP 80 (named "web") and 8080, UDP 53 (named "dns") and 5353, SCTP
// 9003 and 9005), the same policies, and each PokeServer call of the tests
// as a probe with the expected answer. Shared by the engine test
// (src/kubernetes/netpol/admin-network-policy.test.ts), the differential
// test of the compiled sidecar rules and the CLI test.
import type { Protocol } from '../../src/kubernetes/index.js';

export const HOUSES: Readonly<Record<string, string>> = {
  gryffindor: 'harry-potter',
  slytherin: 'draco-malfoy',
  hufflepuff: 'cedric-diggory',
  ravenclaw: 'luna-lovegood',
  'forbidden-forrest': 'centaur',
};

export const nsOf = (house: string): string => `network-policy-conformance-${house}`;

/** `house/pod-N` → the pod's `ns/name` key. */
export function pod(house: string, n: 0 | 1): string {
  return `${nsOf(house)}/${HOUSES[house] ?? house}-${String(n)}`;
}

export function podIp(house: string, n: 0 | 1): string {
  return `10.9.${String(Object.keys(HOUSES).indexOf(house) + 1)}.${String(n + 1)}`;
}

/** Namespaces and pods of conformance/base/manifests.yaml (StatefulSets of two replicas). */
export function conformanceCluster(): unknown[] {
  const out: unknown[] = [];
  for (const [house, name] of Object.entries(HOUSES)) {
    out.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: nsOf(house), labels: { 'conformance-house': house } },
    });
    for (const n of [0, 1] as const) {
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${name}-${String(n)}`,
          namespace: nsOf(house),
          labels: { 'conformance-house': house },
        },
        spec: {
          containers: [
            { name: `${name}-client`, image: 'agnhost' },
            {
              name: `${name}-80`,
              image: 'agnhost',
              ports: [{ containerPort: 80, protocol: 'TCP', name: 'web' }],
            },
            { name: `${name}-8080`, image: 'agnhost' },
            { name: `${name}-5353`, image: 'agnhost' },
            {
              name: `${name}-53`,
              image: 'agnhost',
              ports: [{ containerPort: 53, protocol: 'UDP', name: 'dns' }],
            },
            { name: `${name}-9003`, image: 'agnhost' },
            { name: `${name}-9005`, image: 'agnhost' },
          ],
        },
        status: { podIP: podIp(house, n) },
      });
    }
  }
  return out;
}

const byName = (house: string) => ({
  matchLabels: { 'kubernetes.io/metadata.name': nsOf(house) },
});
const byHouse = (house: string) => ({ matchLabels: { 'conformance-house': house } });
const housePods = (house: string) => ({
  pods: { namespaceSelector: byHouse(house), podSelector: byHouse(house) },
});
const tcp = (port: number) => ({ portNumber: { protocol: 'TCP', port } });

function anp(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec,
  };
}

function banp(spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'BaselineAdminNetworkPolicy',
    metadata: { name: 'default' },
    spec,
  };
}

/** One PokeServer: from, to, port, protocol, reachable. */
export type Probe = readonly [string, string, number, Protocol, boolean];

export interface ConformanceCase {
  readonly name: string;
  /** The upstream test (file and t.Run name) this restates. */
  readonly source: string;
  readonly objects: readonly unknown[];
  readonly probes: readonly Probe[];
}

function swap<T>(list: readonly T[], i: number, j: number): T[] {
  const out = [...list];
  const a = out[i];
  const b = out[j];
  if (a === undefined || b === undefined) throw new Error('swap out of range');
  out[i] = b;
  out[j] = a;
  return out;
}

// conformance/base/admin_network_policy/standard-ingress-tcp-rules.yaml
const INGRESS_TCP_RULES = [
  {
    name: 'allow-from-ravenclaw-everything',
    action: 'Allow',
    from: [{ namespaces: byName('ravenclaw') }],
  },
  {
    name: 'deny-from-ravenclaw-everything',
    action: 'Deny',
    from: [{ namespaces: byName('ravenclaw') }],
  },
  {
    name: 'pass-from-ravenclaw-everything',
    action: 'Pass',
    from: [{ namespaces: byName('ravenclaw') }],
  },
  {
    name: 'deny-from-slytherin-at-port-80',
    action: 'Deny',
    from: [{ namespaces: byName('slytherin') }],
    ports: [tcp(80)],
  },
  {
    name: 'pass-from-slytherin-at-port-80',
    action: 'Pass',
    from: [{ namespaces: byName('slytherin') }],
    ports: [tcp(80)],
  },
  {
    name: 'allow-from-hufflepuff-at-port-80',
    action: 'Allow',
    from: [{ namespaces: byName('hufflepuff') }],
    ports: [tcp(80)],
  },
  {
    name: 'deny-from-hufflepuff-everything-else',
    action: 'Deny',
    from: [{ namespaces: byName('hufflepuff') }],
  },
];

const ingressTcp = (rules: readonly unknown[]) =>
  anp('ingress-tcp', {
    priority: 3,
    subject: { namespaces: byName('gryffindor') },
    ingress: rules,
  });

// conformance/base/baseline_admin_network_policy/standard-ingress-tcp-rules.yaml
const BANP_INGRESS_TCP_RULES = INGRESS_TCP_RULES.filter((r) => r.action !== 'Pass');

// conformance/base/admin_network_policy/standard-priority-field.yaml
const priority50 = anp('priority-50-example', {
  priority: 50,
  subject: housePods('gryffindor'),
  ingress: [
    { name: 'deny-all-ingress-from-slytherin', action: 'Deny', from: [housePods('slytherin')] },
  ],
  egress: [{ name: 'deny-all-egress-to-slytherin', action: 'Deny', to: [housePods('slytherin')] }],
});
const priorityPass = (priority: number) =>
  anp('old-priority-60-new-priority-40-example', {
    priority,
    subject: housePods('gryffindor'),
    ingress: [
      { name: 'pass-all-ingress-from-slytherin', action: 'Pass', from: [housePods('slytherin')] },
    ],
    egress: [
      { name: 'pass-all-egress-to-slytherin', action: 'Pass', to: [housePods('slytherin')] },
    ],
  });
const priorityBanp = banp({
  subject: housePods('gryffindor'),
  ingress: [
    { name: 'allow-all-ingress-from-slytherin', action: 'Allow', from: [housePods('slytherin')] },
  ],
  egress: [
    { name: 'allow-all-egress-to-slytherin', action: 'Allow', to: [housePods('slytherin')] },
  ],
});

// conformance/base/api_integration/standard-anp-np-banp.yaml
const passExample = (ingress: string, egress: string) =>
  anp('pass-example', {
    priority: 10,
    subject: { namespaces: byHouse('gryffindor') },
    ingress: [
      {
        name: 'deny-all-ingress-from-slytherin',
        action: ingress,
        from: [{ namespaces: byHouse('slytherin') }],
      },
    ],
    egress: [
      {
        name: 'deny-all-egress-to-slytherin',
        action: egress,
        to: [{ namespaces: byHouse('slytherin') }],
      },
    ],
  });
const integrationNp = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: {
    name: 'allow-gress-from-to-slytherin-to-gryffindor',
    namespace: nsOf('gryffindor'),
  },
  spec: {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ namespaceSelector: byHouse('slytherin') }] }],
    egress: [{ to: [{ namespaceSelector: byHouse('slytherin') }] }],
  },
};
const integrationBanp = banp({
  subject: { namespaces: byHouse('gryffindor') },
  ingress: [
    {
      name: 'deny-all-ingress-from-slytherin',
      action: 'Deny',
      from: [{ namespaces: byHouse('slytherin') }],
    },
  ],
  egress: [
    {
      name: 'deny-all-egress-to-slytherin',
      action: 'Deny',
      to: [{ namespaces: byHouse('slytherin') }],
    },
  ],
});

// conformance/base/admin_network_policy/standard-egress-inline-cidr-rules.yaml
const inlineCidr = (extra: readonly unknown[]) =>
  anp('inline-cidr-as-peers-example', {
    priority: 85,
    subject: housePods('gryffindor'),
    egress: [
      ...extra,
      { name: 'allow-egress-to-slytherin', action: 'Allow', to: [housePods('slytherin')] },
      {
        name: 'deny-egress-to-internet',
        action: 'Deny',
        to: [{ networks: ['0.0.0.0/0', '::/0'] }],
      },
    ],
  });

const T = 'TCP' as const;
const U = 'UDP' as const;
const S = 'SCTP' as const;
const g0 = pod('gryffindor', 0);
const g1 = pod('gryffindor', 1);
const s0 = pod('slytherin', 0);
const s1 = pod('slytherin', 1);
const h0 = pod('hufflepuff', 0);
const h1 = pod('hufflepuff', 1);
const r0 = pod('ravenclaw', 0);
const r1 = pod('ravenclaw', 1);

export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  {
    name: 'ANP ingress TCP: rule order, Allow first',
    source:
      'admin-network-policy-standard-ingress-tcp-rules.go: "Should support an \'allow-ingress\' policy for TCP protocol; ensure rule ordering is respected" and "... at the specified port"; "Should support a \'deny-ingress\' policy for TCP protocol at the specified port"',
    objects: [ingressTcp(INGRESS_TCP_RULES)],
    probes: [
      [r0, g0, 80, T, true],
      [r1, g0, 8080, T, true],
      [h0, g1, 80, T, true],
      [h1, g1, 8080, T, false],
      [s0, g0, 80, T, false],
      [s1, g0, 8080, T, true],
    ],
  },
  {
    name: 'ANP ingress TCP: Deny swapped before Allow',
    source:
      'admin-network-policy-standard-ingress-tcp-rules.go: "Should support an \'deny-ingress\' policy for TCP protocol; ensure rule ordering is respected" (rules 0 and 1 swapped)',
    objects: [ingressTcp(swap(INGRESS_TCP_RULES, 0, 1))],
    probes: [
      [r0, g1, 80, T, false],
      [r1, g1, 8080, T, false],
    ],
  },
  {
    name: 'ANP ingress TCP: Pass swapped first hands over (no NetworkPolicy, no BANP: allowed)',
    source:
      'admin-network-policy-standard-ingress-tcp-rules.go: "Should support an \'pass-ingress\' policy for TCP protocol; ensure rule ordering is respected" (rules 0 and 2 swapped)',
    objects: [ingressTcp(swap(INGRESS_TCP_RULES, 0, 2))],
    probes: [
      [r0, g0, 80, T, true],
      [r1, g0, 8080, T, true],
    ],
  },
  {
    name: 'ANP ingress TCP: Pass at the specified port',
    source:
      'admin-network-policy-standard-ingress-tcp-rules.go: "Should support a \'pass-ingress\' policy for TCP protocol at the specified port" (rules 3 and 4 swapped)',
    objects: [ingressTcp(swap(INGRESS_TCP_RULES, 3, 4))],
    probes: [
      [s0, g0, 80, T, true],
      [s1, g0, 8080, T, true],
    ],
  },
  {
    name: 'ANP priority: the lower value wins (Deny at 50 before Pass at 60)',
    source:
      'admin-network-policy-standard-priority.go: "Should Deny traffic from slytherin to gryffindor respecting ANP" and "Should Deny traffic to slytherin from gryffindor respecting ANP"',
    objects: [priority50, priorityPass(60), priorityBanp],
    probes: [
      [s0, g0, 80, T, false],
      [s1, g0, 8080, T, false],
      [g0, s0, 80, T, false],
      [g1, s0, 8080, T, false],
    ],
  },
  {
    name: 'ANP priority: Pass at 40 overtakes the Deny; the BANP allows',
    source:
      'admin-network-policy-standard-priority.go: "Should respect ANP priority field; thus passing both ingress and egress traffic over to BANP"',
    objects: [priority50, priorityPass(40), priorityBanp],
    probes: [
      [s0, g0, 80, T, true],
      [s1, g0, 8080, T, true],
      [g0, s0, 80, T, true],
      [g1, s0, 8080, T, true],
    ],
  },
  {
    name: 'ANP → NetworkPolicy → BANP: ANP Deny wins over the NetworkPolicy allow',
    source:
      'admin-network-policy-standard-integration.go: "Should Deny traffic from slytherin to gryffindor respecting ANP" and "Should Deny traffic to slytherin from gryffindor respecting ANP"',
    objects: [passExample('Deny', 'Deny'), integrationNp, integrationBanp],
    probes: [
      [s0, g0, 80, T, false],
      [s1, g0, 8080, T, false],
      [g0, s0, 80, T, false],
      [g1, s0, 8080, T, false],
    ],
  },
  {
    name: 'ANP → NetworkPolicy → BANP: Pass lets the NetworkPolicy allow',
    source:
      "admin-network-policy-standard-integration.go: \"Should support a 'pass-ingress' policy for ANP and respect the match for network policy\" and the 'pass-egress' one",
    objects: [passExample('Pass', 'Pass'), integrationNp, integrationBanp],
    probes: [
      [s0, g0, 80, T, true],
      [s1, g0, 8080, T, true],
      [g0, s0, 80, T, true],
      [g1, s0, 8080, T, true],
      // The NetworkPolicy isolates gryffindor: other houses are denied.
      [h0, g0, 80, T, false],
    ],
  },
  {
    name: 'ANP → BANP: Pass without the NetworkPolicy falls to the BANP Deny',
    source:
      "admin-network-policy-standard-integration.go: \"Should support a 'pass-ingress' policy for ANP and respect the match for baseline admin network policy\" and the 'pass-egress' one (NetworkPolicy deleted)",
    objects: [passExample('Pass', 'Pass'), integrationBanp],
    probes: [
      [s0, g0, 80, T, false],
      [s1, g0, 8080, T, false],
      [g0, s0, 80, T, false],
      [g1, s0, 8080, T, false],
      [h0, g0, 80, T, true],
    ],
  },
  {
    name: 'BANP ingress TCP: rule order and ports',
    source:
      'baseline-admin-network-policy-standard-ingress-tcp-rules.go: "Should support an \'allow-ingress\' policy for TCP protocol; ensure rule ordering is respected", "... at the specified port", "Should support a \'deny-ingress\' policy for TCP protocol at the specified port"',
    objects: [
      banp({ subject: { namespaces: byName('gryffindor') }, ingress: BANP_INGRESS_TCP_RULES }),
    ],
    probes: [
      [r0, g0, 80, T, true],
      [r1, g0, 8080, T, true],
      [h0, g1, 80, T, true],
      [h1, g1, 8080, T, false],
      [s0, g0, 80, T, false],
      [s1, g0, 8080, T, true],
    ],
  },
  {
    name: 'BANP ingress TCP: Deny swapped before Allow',
    source:
      'baseline-admin-network-policy-standard-ingress-tcp-rules.go: "Should support an \'deny-ingress\' policy for TCP protocol; ensure rule ordering is respected"',
    objects: [
      banp({
        subject: { namespaces: byName('gryffindor') },
        ingress: swap(BANP_INGRESS_TCP_RULES, 0, 1),
      }),
    ],
    probes: [
      [r0, g1, 80, T, false],
      [r1, g1, 8080, T, false],
    ],
  },
  {
    name: 'ANP egress networks: deny 0.0.0.0/0 after an allow to slytherin',
    source:
      'admin-network-policy-standard-egress-inline-cidr-rules.go: "Should support a \'deny-egress\' rule policy for egress-cidr-peer"',
    objects: [inlineCidr([])],
    probes: [
      [g1, r0, 80, T, false],
      [g1, r0, 53, U, false],
      [g1, r0, 9003, S, false],
      [g1, h0, 80, T, false],
      [g1, s0, 80, T, true],
      [g1, s0, 53, U, true],
      [g1, s0, 9003, S, true],
    ],
  },
  {
    name: 'ANP egress networks: an Allow of two /32s inserted first',
    source:
      'admin-network-policy-standard-egress-inline-cidr-rules.go: "Should support an \'allow-egress\' rule policy for egress-cidr-peer"',
    objects: [
      inlineCidr([
        {
          name: 'allow-egress-to-specific-podIPs',
          action: 'Allow',
          to: [{ networks: [`${podIp('ravenclaw', 0)}/32`, `${podIp('hufflepuff', 0)}/32`] }],
        },
      ]),
    ],
    probes: [
      [g1, r0, 80, T, true],
      [g1, r0, 53, U, true],
      [g1, h0, 9003, S, true],
      [g1, r1, 80, T, false],
      [g1, h1, 80, T, false],
    ],
  },
];
