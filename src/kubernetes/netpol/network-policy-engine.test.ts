// NetworkPolicy truth tables on the classic model of the Kubernetes netpol
// e2e suite (test/e2e/network/netpol): namespaces x, y, z, each with pods
// a, b, c serving ports 80 and 81 over TCP, UDP and SCTP (named
// serve-<port>-<proto>). Each case states the expected reachability the way
// the e2e suite does: start from "all allowed", switch peers off, allow loopback.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Manifest } from '../../api/index.js';
import { clusterObjectsFrom } from '../cluster-objects.js';
import { selectorMatches } from '../labels/label-selector.js';
import {
  compileIpBlock,
  createNetworkPolicyEngine,
  type Protocol,
} from './network-policy-engine.js';

const NS = ['x', 'y', 'z'];
const PODS = ['a', 'b', 'c'];
const ALL = NS.flatMap((n) => PODS.map((p) => `${n}/${p}`));

function ip(ns: string, pod: string): string {
  return `10.0.${String(NS.indexOf(ns) + 1)}.${String(PODS.indexOf(pod) + 1)}`;
}

function model(): unknown[] {
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

function netpol(ns: string, name: string, spec: Record<string, unknown>): unknown {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  };
}

function engineFor(policies: unknown[]) {
  const manifests: Manifest[] = [...model(), ...policies].map((object, index) => ({
    file: 'test.yaml',
    index,
    object,
  }));
  return createNetworkPolicyEngine(clusterObjectsFrom(manifests));
}

/** The e2e Reachability DSL: a peer is {ns?, pod?}; unset fields match all. */
type Peer = { ns?: string; pod?: string };
class Reachability {
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

interface Case {
  name: string;
  policies: unknown[];
  port: number;
  protocol?: Protocol;
  expect: Reachability;
}

const denyIngress = netpol('x', 'deny-ingress', { podSelector: {}, ingress: [] });
const cases: Case[] = [
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
  {
    name: 'empty ingress rule {} allows everything into selected pods',
    policies: [denyIngress, netpol('x', 'allow-all', { podSelector: {}, ingress: [{}] })],
    port: 80,
    expect: new Reachability(true),
  },
];

for (const c of cases) {
  test(`netpol: ${c.name}`, () => {
    const engine = engineFor(c.policies);
    const m = engine.matrix(c.port, c.protocol ?? 'TCP');
    assert.deepEqual(m.pods, ALL);
    const wrong: string[] = [];
    m.pods.forEach((from, i) => {
      m.pods.forEach((to, j) => {
        const want = c.expect.m.get(`${from}>${to}`);
        const got = m.matrix[i]?.[j];
        if (want !== got) wrong.push(`${from} -> ${to}: want ${String(want)} got ${String(got)}`);
        // The explained single-pair evaluation must agree with the matrix.
        const f = engine.pod(from);
        const t = engine.pod(to);
        assert.ok(f !== undefined && t !== undefined);
        assert.equal(
          engine.evaluate({ from: f, to: t, port: c.port, protocol: c.protocol ?? 'TCP' }).allowed,
          got,
          `${from} -> ${to}`,
        );
      });
    });
    assert.deepEqual(wrong, []);
  });
}

test('evaluate names the policies that decided', () => {
  const engine = engineFor([
    denyIngress,
    netpol('x', 'allow-y', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    }),
  ]);
  const pod = (k: string) => {
    const p = engine.pod(k);
    assert.ok(p !== undefined);
    return p;
  };
  const ok = engine.evaluate({ from: pod('y/a'), to: pod('x/b'), port: 80 });
  assert.equal(ok.allowed, true);
  assert.deepEqual(ok.ingress.policies, ['x/deny-ingress', 'x/allow-y']);
  assert.deepEqual(ok.ingress.allowedBy, ['x/allow-y']);
  assert.equal(ok.egress.isolated, false);
  const no = engine.evaluate({ from: pod('z/a'), to: pod('x/b'), port: 80 });
  assert.equal(no.allowed, false);
  assert.equal(no.ingress.isolated, true);
  assert.deepEqual(no.ingress.allowedBy, []);
  assert.match(
    no.ingress.reason,
    /x\/b is isolated for ingress by NetworkPolicy "x\/deny-ingress", NetworkPolicy "x\/allow-y"/,
  );
});

test('property: the bitset matrix equals pairwise evaluation on random policies', () => {
  const sel = fc.oneof(
    fc.constant({}),
    fc.record({ matchLabels: fc.record({ pod: fc.constantFrom('a', 'b', 'c') }) }),
    fc.record({
      matchExpressions: fc.constant([{ key: 'pod', operator: 'NotIn', values: ['b'] }]),
    }),
  );
  const nsSel = fc.oneof(
    fc.constant({}),
    fc.record({ matchLabels: fc.record({ ns: fc.constantFrom('x', 'y', 'z') }) }),
  );
  const peer = fc.oneof(
    fc.record({ podSelector: sel }),
    fc.record({ namespaceSelector: nsSel }),
    fc.record({ podSelector: sel, namespaceSelector: nsSel }),
    fc.record({
      ipBlock: fc.record({
        cidr: fc.constantFrom('10.0.0.0/16', '10.0.1.0/24'),
        except: fc.constantFrom([], ['10.0.1.2/32']),
      }),
    }),
  );
  const port = fc.oneof(
    fc.record({ port: fc.constantFrom(80, 81) }),
    fc.record({ port: fc.constant(79), endPort: fc.constantFrom(80, 81) }),
    fc.record({ port: fc.constantFrom('serve-80-tcp', 'serve-81-udp') }),
    fc.record({ protocol: fc.constantFrom('UDP', 'TCP') }),
  );
  const rule = (key: 'from' | 'to') =>
    fc.record({ [key]: fc.array(peer, { maxLength: 2 }), ports: fc.array(port, { maxLength: 2 }) });
  const policy = fc.record({
    ns: fc.constantFrom('x', 'y', 'z'),
    podSelector: sel,
    policyTypes: fc.constantFrom(undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']),
    ingress: fc.array(rule('from'), { maxLength: 2 }),
    egress: fc.array(rule('to'), { maxLength: 2 }),
  });
  fc.assert(
    fc.property(
      fc.array(policy, { maxLength: 4 }),
      fc.constantFrom(80, 81),
      fc.constantFrom<Protocol>('TCP', 'UDP'),
      (ps, p, proto) => {
        const engine = engineFor(
          ps.map((x, i) =>
            netpol(x.ns, `p${String(i)}`, {
              podSelector: x.podSelector,
              ingress: x.ingress,
              egress: x.egress,
              ...(x.policyTypes === undefined ? {} : { policyTypes: x.policyTypes }),
            }),
          ),
        );
        const m = engine.matrix(p, proto);
        return m.pods.every((from, i) =>
          m.pods.every((to, j) => {
            const f = engine.pod(from);
            const t = engine.pod(to);
            return (
              f !== undefined &&
              t !== undefined &&
              engine.evaluate({ from: f, to: t, port: p, protocol: proto }).allowed ===
                m.matrix[i]?.[j]
            );
          }),
        );
      },
    ),
    { numRuns: 150 },
  );
});

/** An IP as a bigint (IPv4: 32 bits, IPv6: 128), or undefined when it is neither. */
function ipBits(ip: string): { bits: bigint; width: number } | undefined {
  if (isIP(ip) === 4)
    return { bits: ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n), width: 32 };
  if (isIP(ip) !== 6 || ip.includes('%')) return undefined;
  const [head = '', tail] = ip.split('::');
  const groups = (part: string): string[] => {
    if (part === '') return [];
    const out = part.split(':');
    const last = out.at(-1) ?? '';
    if (last.includes('.')) {
      const v4 = ipBits(last)?.bits ?? 0n;
      out.splice(-1, 1, (v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16));
    }
    return out;
  };
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { bits: all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n), width: 128 };
}

/** Reference: is `ip` inside `cidr`? undefined when either is malformed or the families differ. */
function referenceContains(cidr: string, ip: string): boolean | undefined {
  const slash = cidr.indexOf('/');
  const net = ipBits(cidr.slice(0, slash));
  const addr = ipBits(ip);
  const prefix = Number(cidr.slice(slash + 1));
  if (net === undefined || addr === undefined || net.width !== addr.width) return undefined;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > net.width) return undefined;
  const shift = BigInt(net.width - prefix);
  return net.bits >> shift === addr.bits >> shift;
}

test('property: ipBlock parsing of untrusted CIDRs never throws and fails closed', () => {
  const cidrish = fc.oneof(
    fc.string(),
    fc.tuple(fc.ipV4(), fc.integer({ min: -5, max: 40 })).map(([ip, p]) => `${ip}/${String(p)}`),
    fc.tuple(fc.ipV6(), fc.integer({ min: -5, max: 140 })).map(([ip, p]) => `${ip}/${String(p)}`),
  );
  fc.assert(
    fc.property(
      cidrish,
      fc.array(cidrish, { maxLength: 3 }),
      fc.oneof(fc.ipV4(), fc.ipV6(), fc.string()),
      (cidr, except, ip) => {
        const block = compileIpBlock({ cidr, except });
        const hit = block.matches(ip);
        // A block whose CIDR is malformed matches nothing.
        if (!/^[0-9a-fA-F:.]+\/\d+$/.test(cidr)) return !hit;
        // Kubernetes: an ipBlock allows the IPs in `cidr` except those in any `except` entry —
        // exactly the base block minus each except block (an except never adds an address).
        const inExcept = except.some((e) => compileIpBlock({ cidr: e }).matches(ip));
        if (hit !== (compileIpBlock({ cidr }).matches(ip) && !inExcept)) return false;
        // The base block against a reference model (same family, no zone ids).
        const expected = referenceContains(cidr, ip);
        return expected === undefined || compileIpBlock({ cidr }).matches(ip) === expected;
      },
    ),
    { numRuns: 1000 },
  );
  assert.equal(
    compileIpBlock({ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }).matches('10.2.3.4'),
    true,
  );
  assert.equal(
    compileIpBlock({ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }).matches('10.1.3.4'),
    false,
  );
  assert.equal(compileIpBlock({ cidr: '2001:db8::/32' }).matches('2001:db8::1'), true);
  assert.equal(compileIpBlock({ cidr: '2001:db8::/32' }).matches('10.0.0.1'), false);
});

test('property: label selectors on arbitrary labels never throw; unknown operators match nothing', () => {
  const key = fc.constantFrom('a', 'b', 'app', 'x/y');
  fc.assert(
    fc.property(
      fc.dictionary(key, fc.string({ maxLength: 3 })),
      fc.dictionary(key, fc.string({ maxLength: 3 })),
      fc.array(
        fc.record({
          key,
          operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'Bogus'),
          values: fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
        }),
        { maxLength: 3 },
      ),
      (labels, matchLabels, matchExpressions) => {
        const r = selectorMatches({ matchLabels, matchExpressions }, labels);
        if (matchExpressions.some((e) => e.operator === 'Bogus')) return !r;
        return typeof r === 'boolean';
      },
    ),
    { numRuns: 500 },
  );
});
