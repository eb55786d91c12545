// The NetworkPolicy cases of the Kubernetes netpol e2e suite
// (kubernetes/kubernetes test/e2e/network/netpol/network_policy.go), on its
// classic model: namespaces x, y, z, each with pods a, b, c serving ports 80
// and 81 over TCP, UDP and SCTP (named serve-<port>-<proto>). Each case
// states the expected reachability the way the e2e suite does (its
// Reachability DSL): start from "all allowed", switch peers off, allow
// loopback. Shared by the engine's truth tables
// (src/kubernetes/netpol/network-policy-engine.test.ts) and the differential
// test of the compiled sidecar rules (src/control/compiler/network-policy.test.ts).
import type { Protocol } from '../../src/kubernetes/index.js';

export const NS = ['x', 'y', 'z'];
export const PODS = ['a', 'b', 'c'];
export const ALL = NS.flatMap((n) => PODS.map((p) => `${n}/${p}`));

export function ip(ns: string, pod: string): string {
  return `10.0.${String(NS.indexOf(ns) + 1)}.${String(PODS.indexOf(pod) + 1)}`;
}

export function model(): unknown[] {
  const out: unknown[] = [];
  for (const n of NS) {
    out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels: { ns: n } } });
    for (const p of PODS) {
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p, namespace: n, labels: { pod: p } },
        spec: {
          containers: [80, 81].flatMap((port) =>
            ['TCP', 'UDP', 'SCTP'].map((proto) => ({
              name: `cont-${String(port)}-${proto.toLowerCase()}`,
              image: 'agnhost',
              ports: [
                {
                  containerPort: port,
                  name: `serve-${String(port)}-${proto.toLowerCase()}`,
                  protocol: proto,
                },
              ],
            })),
          ),
        },
        status: { podIP: ip(n, p) },
      });
    }
  }
  return out;
}

export function netpol(ns: string, name: string, spec: Record<string, unknown>): unknown {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  };
}

/** The e2e Reachability DSL: a peer is {ns?, pod?}; unset fields match all. */
export type Peer = { ns?: string; pod?: string };
export class Reachability {
  readonly m = new Map<string, boolean>();
  constructor(dflt: boolean) {
    for (const f of ALL) for (const t of ALL) this.m.set(`${f}>${t}`, dflt);
  }
  expectPeer(from: Peer, to: Peer, v: boolean): this {
    const match = (k: string, p: Peer): boolean => {
      const [n, pod] = k.split('/');
      return (p.ns === undefined || p.ns === n) && (p.pod === undefined || p.pod === pod);
    };
    for (const f of ALL)
      for (const t of ALL) if (match(f, from) && match(t, to)) this.m.set(`${f}>${t}`, v);
    return this;
  }
  allowLoopback(): this {
    for (const p of ALL) this.m.set(`${p}>${p}`, true);
    return this;
  }
}

export interface Case {
  name: string;
  policies: unknown[];
  port: number;
  protocol?: Protocol;
  expect: Reachability;
}

export const denyIngress = netpol('x', 'deny-ingress', { podSelector: {}, ingress: [] });
export const cases: Case[] = [
  {
    name: 'no policies: everything reachable',
    policies: [],
    port: 80,
    expect: new Reachability(true),
  },
  {
    name: 'default-deny-ingress',
    policies: [denyIngress],
    port: 80,
    expect: new Reachability(true).expectPeer({}, { ns: 'x' }, false).allowLoopback(),
  },
  {
    name: 'default-deny-all (ingress and egress)',
    policies: [netpol('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x' }, false)
      .expectPeer({ ns: 'x' }, {}, false)
      .allowLoopback(),
  },
  {
    name: 'allow ingress from the same namespace',
    policies: [
      netpol('x', 'allow-same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'y' }, { ns: 'x' }, false)
      .expectPeer({ ns: 'z' }, { ns: 'x' }, false),
  },
  {
    name: 'allow ingress to x/a from namespace y by label (matchExpressions In)',
    policies: [
      netpol('x', 'allow-ns-y', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [{ key: 'ns', operator: 'In', values: ['y'] }],
                },
              },
            ],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true)
      .allowLoopback(),
  },
  {
    name: 'allow ingress by the kubernetes.io/metadata.name label every namespace has',
    policies: [
      netpol('x', 'allow-z', {
        podSelector: {},
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x' }, { ns: 'x' }, false)
      .expectPeer({ ns: 'y' }, { ns: 'x' }, false)
      .allowLoopback(),
  },
  {
    name: 'namespaceSelector NotIn',
    policies: [
      netpol('x', 'not-y', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['y'] }],
                },
              },
            ],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, false),
  },
  {
    name: 'podSelector and namespaceSelector combined in one peer (AND)',
    policies: [
      netpol('x', 'and', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { ns: 'y' } },
                podSelector: { matchLabels: { pod: 'b' } },
              },
            ],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ ns: 'y', pod: 'b' }, { ns: 'x', pod: 'a' }, true)
      .allowLoopback(),
  },
  {
    name: 'podSelector and namespaceSelector as two peers (OR)',
    policies: [
      netpol('x', 'or', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: 'y' } } },
              { podSelector: { matchLabels: { pod: 'b' } } },
            ],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true)
      .expectPeer({ ns: 'x', pod: 'b' }, { ns: 'x', pod: 'a' }, true)
      .allowLoopback(),
  },
  {
    name: 'podSelector Exists / DoesNotExist',
    policies: [
      netpol('x', 'exists', {
        podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] },
        ingress: [
          {
            from: [
              { podSelector: { matchExpressions: [{ key: 'nope', operator: 'DoesNotExist' }] } },
            ],
          },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'y' }, { ns: 'x' }, false)
      .expectPeer({ ns: 'z' }, { ns: 'x' }, false),
  },
  {
    name: 'egress deny from x/a',
    policies: [
      netpol('x', 'deny-egress-a', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({ ns: 'x', pod: 'a' }, {}, false).allowLoopback(),
  },
  {
    // Without policyTypes, a policy with egress rules gets ["Ingress", "Egress"]:
    // its empty ingress then isolates x/a for ingress as well.
    name: 'egress allowed only to namespace y (policyTypes defaulted to Ingress+Egress)',
    policies: [
      netpol('x', 'egress-to-y', {
        podSelector: { matchLabels: { pod: 'a' } },
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x', pod: 'a' }, {}, false)
      .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y' }, true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .allowLoopback(),
  },
  {
    name: 'policyTypes Egress only leaves ingress open',
    policies: [
      netpol('x', 'egress-only', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] }),
    ],
    port: 80,
    expect: new Reachability(true),
  },
  {
    name: 'ingress on port 81 only: port 80 denied',
    policies: [
      netpol('x', 'port-81', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ ports: [{ port: 81 }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({}, { ns: 'x', pod: 'a' }, false).allowLoopback(),
  },
  {
    name: 'ingress on port 81 only: port 81 allowed',
    policies: [
      netpol('x', 'port-81', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ ports: [{ port: 81 }] }],
      }),
    ],
    port: 81,
    expect: new Reachability(true),
  },
  {
    name: 'port range with endPort includes its ends',
    policies: [
      netpol('x', 'range', {
        podSelector: {},
        ingress: [{ ports: [{ port: 79, endPort: 80, protocol: 'TCP' }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true),
  },
  {
    name: 'port range with endPort excludes ports above it',
    policies: [
      netpol('x', 'range', {
        podSelector: {},
        ingress: [{ ports: [{ port: 79, endPort: 80, protocol: 'TCP' }] }],
      }),
    ],
    port: 81,
    expect: new Reachability(true).expectPeer({}, { ns: 'x' }, false).allowLoopback(),
  },
  {
    name: 'named port resolves on the destination pod (serve-81-tcp = 81)',
    policies: [
      netpol('x', 'named', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ ports: [{ port: 'serve-81-tcp' }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({}, { ns: 'x', pod: 'a' }, false).allowLoopback(),
  },
  {
    name: 'named port allows the port it names',
    policies: [
      netpol('x', 'named', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ ports: [{ port: 'serve-81-tcp' }] }],
      }),
    ],
    port: 81,
    expect: new Reachability(true),
  },
  {
    name: 'named egress port resolves on the destination pod',
    policies: [
      netpol('x', 'named-egress', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'serve-80-tcp' }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true),
  },
  {
    name: 'named egress port does not allow another port',
    policies: [
      netpol('x', 'named-egress', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'serve-80-tcp' }] }],
      }),
    ],
    port: 81,
    expect: new Reachability(true).expectPeer({ ns: 'x', pod: 'a' }, {}, false).allowLoopback(),
  },
  {
    name: 'TCP rule does not allow UDP',
    policies: [
      netpol('x', 'tcp-80', {
        podSelector: {},
        ingress: [{ ports: [{ port: 80, protocol: 'TCP' }] }],
      }),
    ],
    port: 80,
    protocol: 'UDP',
    expect: new Reachability(true).expectPeer({}, { ns: 'x' }, false).allowLoopback(),
  },
  {
    name: 'SCTP rule allows SCTP',
    policies: [
      netpol('x', 'sctp-80', {
        podSelector: {},
        ingress: [{ ports: [{ port: 80, protocol: 'SCTP' }] }],
      }),
    ],
    port: 80,
    protocol: 'SCTP',
    expect: new Reachability(true),
  },
  {
    name: 'ipBlock with except (ingress)',
    policies: [
      netpol('x', 'ipblock', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.2.0/24', except: [`${ip('y', 'b')}/32`] } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true)
      .expectPeer({ ns: 'y', pod: 'b' }, { ns: 'x', pod: 'a' }, false)
      .allowLoopback(),
  },
  {
    name: 'ipBlock egress to z only',
    policies: [
      netpol('x', 'egress-ipblock', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.3.0/24' } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x' }, {}, false)
      .expectPeer({ ns: 'x' }, { ns: 'z' }, true)
      .allowLoopback(),
  },
  {
    name: 'policies are additive: deny-all plus allow from y',
    policies: [
      denyIngress,
      netpol('x', 'allow-y', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x' }, { ns: 'x' }, false)
      .expectPeer({ ns: 'z' }, { ns: 'x' }, false)
      .allowLoopback(),
  },
  {
    name: 'egress and ingress are both required',
    policies: [
      netpol('x', 'egress-to-y-only', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
      netpol('y', 'deny-ingress', { podSelector: {}, ingress: [] }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x' }, {}, false)
      .expectPeer({}, { ns: 'y' }, false)
      .allowLoopback(),
  },
  {
    name: 'namespaceSelector {} allows pods from all namespaces',
    policies: [
      netpol('x', 'all-ns', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ pod: 'b' }, { ns: 'x', pod: 'a' }, true)
      .allowLoopback(),
  },
  {
    name: 'client-side egress deny wins even when the server allows the traffic',
    policies: [
      netpol('x', 'deny-egress-to-y', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }],
      }),
      netpol('y', 'allow-all-ingress', { podSelector: {}, ingress: [{}] }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x', pod: 'a' }, {}, false)
      .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'z' }, true)
      .allowLoopback(),
  },
  {
    name: 'Ingress and Egress in one policy with an egress port range',
    policies: [
      netpol('x', 'both', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
        egress: [{ ports: [{ port: 80, endPort: 81 }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({}, { ns: 'x', pod: 'a' }, false)
      .expectPeer({ ns: 'x', pod: 'b' }, { ns: 'x', pod: 'a' }, true)
      .allowLoopback(),
  },
  {
    name: 'ingress rule on a protocol without a port allows every port of that protocol',
    policies: [
      netpol('x', 'udp-any', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] }),
    ],
    port: 81,
    protocol: 'UDP',
    expect: new Reachability(true),
  },
  // network_policy.go "should allow egress access to server in CIDR block":
  // x/a may reach only y/b's /32.
  {
    name: 'upstream: egress access to server in CIDR block',
    policies: [
      netpol('x', 'allow-client-a-via-cidr-egress-rule', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: `${ip('y', 'b')}/32` } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x', pod: 'a' }, {}, false)
      .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y', pod: 'b' }, true)
      .allowLoopback(),
  },
  // network_policy.go "should enforce except clause while egress access to
  // server in CIDR block": cidr `<x/a IP>/4` (host bits set, as upstream
  // writes it) except x/b's /32.
  {
    name: 'upstream: except clause while egress access to server in CIDR block',
    policies: [
      netpol('x', 'allow-client-a-via-cidr-egress-rule', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [
          { to: [{ ipBlock: { cidr: `${ip('x', 'a')}/4`, except: [`${ip('x', 'b')}/32`] } }] },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({ ns: 'x', pod: 'a' }, { ns: 'x', pod: 'b' }, false),
  },
  // network_policy.go "should ensure an IP overlapping both IPBlock.CIDR and
  // IPBlock.Except is allowed": a second policy allowing x/b's /32 wins.
  {
    name: 'upstream: an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed',
    policies: [
      netpol('x', 'allow-client-a-via-cidr-egress-rule', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [
          { to: [{ ipBlock: { cidr: `${ip('x', 'a')}/4`, except: [`${ip('x', 'b')}/32`] } }] },
        ],
      }),
      netpol('x', 'allow-client-a-via-cidr-egress-rule-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: `${ip('x', 'b')}/32` } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true),
  },
  // The same three ipBlock cases on the ingress side (the side a sidecar
  // enforces): x/a accepts `<x/a IP>/4` except y/b; base-address except.
  {
    name: 'ingress mirror: except clause in a CIDR block',
    policies: [
      netpol('x', 'allow-cidr-except-ingress', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          { from: [{ ipBlock: { cidr: `${ip('x', 'a')}/4`, except: [`${ip('y', 'b')}/32`] } }] },
        ],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({ ns: 'y', pod: 'b' }, { ns: 'x', pod: 'a' }, false),
  },
  {
    name: 'ingress mirror: an IP overlapping CIDR and except is allowed by another policy',
    policies: [
      netpol('x', 'allow-cidr-except-ingress', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`${ip('y', 'b')}/32`] } }] }],
      }),
      netpol('x', 'allow-y-b-ingress', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: `${ip('y', 'b')}/32` } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true),
  },
  {
    // The except covers the block's base address (10.0.0.0/23 holds x's
    // pods): the rest of the block (y, z) is still allowed.
    name: 'ingress: except covering the base address keeps the rest of the block',
    policies: [
      netpol('x', 'except-base', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/23'] } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true)
      .expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false)
      .allowLoopback(),
  },
  {
    // ipBlock on port 81 only plus a narrower block on every port: port 80
    // must not inherit the wide block (rules are per port).
    name: 'ingress: an ipBlock rule limited to one port does not open another',
    policies: [
      netpol('x', 'wide-81', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 81 }] }],
      }),
      netpol('x', 'narrow-all', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/24' } }] }],
      }),
    ],
    port: 80,
    expect: new Reachability(true).expectPeer({}, { ns: 'x', pod: 'a' }, false).allowLoopback(),
  },
  {
    name: 'empty ingress rule {} allows everything into selected pods',
    policies: [denyIngress, netpol('x', 'allow-all', { podSelector: {}, ingress: [{}] })],
    port: 80,
    expect: new Reachability(true),
  },
];
