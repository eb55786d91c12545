// NetworkPolicy truth tables on the classic model of the Kubernetes netpol
// e2e suite (test/e2e/network/netpol); the cases live in
// test/helpers/netpol-e2e.ts, shared with the differential test of the
// compiled sidecar rules.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Manifest } from '../../api/index.js';
import { clusterObjectsFrom } from '../cluster-objects.js';
import { selectorMatches } from '../labels/label-selector.js';
import { ALL, cases, denyIngress, model, netpol } from '../../../test/helpers/netpol-e2e.js';
import {
  compileIpBlock,
  createNetworkPolicyEngine,
  type Protocol,
} from './network-policy-engine.js';

function engineFor(policies: unknown[]) {
  const manifests: Manifest[] = [...model(), ...policies].map((object, index) => ({
    file: 'test.yaml',
    index,
    object,
  }));
  return createNetworkPolicyEngine(clusterObjectsFrom(manifests));
}

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
