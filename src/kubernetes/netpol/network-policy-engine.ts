/**
 * Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), evaluated on a
 * snapshot of namespaces, pods and policies. Pure: no I/O.
 *
 * https://kubernetes.io/docs/concepts/services-networking/network-policies/
 * - A pod is isolated for ingress (egress) only if some policy selecting it
 *   has that policy type; a non-isolated direction allows everything.
 * - Policies are additive: an isolated direction allows a connection if any
 *   rule of any policy selecting the pod for that direction allows it.
 * - A connection needs both the source's egress and the destination's ingress.
 * - policyTypes defaults to ["Ingress"], plus "Egress" when the policy has
 *   egress rules.
 * - A rule with no peers allows all peers; with no ports, all ports. A peer
 *   with only podSelector selects pods in the policy's namespace; only
 *   namespaceSelector, every pod in matching namespaces; both, pods matching
 *   both. ipBlock matches the peer pod's IP (minus `except`).
 * - Ports: protocol defaults to TCP; a named port is resolved on the
 *   destination pod's container ports; `endPort` makes a range.
 * - Traffic from a pod to itself is always allowed (the Kubernetes netpol
 *   e2e suite's `AllowLoopback`).
 * - AdminNetworkPolicy and BaselineAdminNetworkPolicy (admin-network-policy.ts)
 *   wrap NetworkPolicy in tiers: ANP → NetworkPolicy → BANP → allow.
 * - An external address (`external: true`, no namespace) is matched only by
 *   ipBlock (and ANP `networks`), never by a pod or namespace selector.
 */
import { BlockList, isIP } from 'node:net';
import { selectorMatches, type LabelSelector, type Labels } from '../labels/label-selector.js';
import {
  compileAdminTiers,
  describeAdminMatch,
  type AdminMatch,
  type AdminNetworkPolicy,
  type BaselineAdminNetworkPolicy,
} from './admin-network-policy.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NetpolNamespace {
  readonly name: string;
  readonly labels: Labels;
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

export interface NetpolPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** status.podIP; pods without one never match an ipBlock. */
  readonly ip?: string;
  readonly ports: readonly ContainerPort[];
  /** An address outside the cluster's pods: only ipBlock / networks peers match it. */
  readonly external?: boolean;
}

export interface NetworkPolicyPort {
  readonly protocol?: string;
  readonly port?: number | string;
  readonly endPort?: number;
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: { readonly cidr: string; readonly except?: readonly string[] };
}

export interface NetworkPolicyRule {
  /** `from` (ingress) or `to` (egress); undefined or empty allows all peers. */
  readonly peers?: readonly NetworkPolicyPeer[] | null;
  readonly ports?: readonly NetworkPolicyPort[] | null;
}

export interface NetworkPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: LabelSelector;
  readonly policyTypes?: readonly string[];
  readonly ingress?: readonly NetworkPolicyRule[] | null;
  readonly egress?: readonly NetworkPolicyRule[] | null;
}

/** The verdict for one direction, naming the policies that decided it. */
export interface DirectionVerdict {
  readonly allowed: boolean;
  /** True when some policy selects the pod for this direction. */
  readonly isolated: boolean;
  /** Policies (`ns/name`) that select the pod for this direction. */
  readonly policies: readonly string[];
  /** Policies with a rule allowing this connection. */
  readonly allowedBy: readonly string[];
  /** The tier that decided: an admin tier's rule, NetworkPolicy, or the default (none). */
  readonly tier: 'AdminNetworkPolicy' | 'NetworkPolicy' | 'BaselineAdminNetworkPolicy' | 'none';
  /** The ANP / BANP rule that decided (or the ANP `Pass` that handed over). */
  readonly admin?: AdminMatch;
  readonly reason: string;
}

export interface ConnectionVerdict {
  readonly allowed: boolean;
  /** True when the pod talks to itself: allowed whatever the policies say. */
  readonly loopback?: boolean;
  readonly egress: DirectionVerdict;
  readonly ingress: DirectionVerdict;
}

export interface Connection {
  readonly from: NetpolPod;
  readonly to: NetpolPod;
  readonly port: number;
  readonly protocol?: Protocol;
}

/** The label every namespace carries since Kubernetes 1.21. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** policyTypes after API defaulting. */
export function effectivePolicyTypes(p: NetworkPolicy): Set<'Ingress' | 'Egress'> {
  const types = p.policyTypes ?? [];
  if (types.length > 0) {
    return new Set(
      types.filter((t): t is 'Ingress' | 'Egress' => t === 'Ingress' || t === 'Egress'),
    );
  }
  const out = new Set<'Ingress' | 'Egress'>(['Ingress']);
  if ((p.egress ?? []).length > 0) out.add('Egress');
  return out;
}

function parseCidr(
  cidr: string,
): { ip: string; prefix: number; type: 'ipv4' | 'ipv6' } | undefined {
  const slash = cidr.indexOf('/');
  if (slash < 0) return undefined;
  const ip = cidr.slice(0, slash);
  const prefix = Number(cidr.slice(slash + 1));
  const fam = isIP(ip);
  if (fam === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (fam === 4 ? 32 : 128)) {
    return undefined;
  }
  return { ip, prefix, type: fam === 4 ? 'ipv4' : 'ipv6' };
}

/** An ipBlock compiled for lookups; a malformed CIDR matches nothing (fail closed). */
export interface CompiledIpBlock {
  matches(ip: string | undefined): boolean;
}

export function compileIpBlock(block: {
  cidr: string;
  except?: readonly string[];
}): CompiledIpBlock {
  const c = parseCidr(block.cidr);
  if (c === undefined) return { matches: () => false };
  const allow = new BlockList();
  allow.addSubnet(c.ip, c.prefix, c.type);
  const deny = new BlockList();
  for (const e of block.except ?? []) {
    const x = parseCidr(e);
    if (x !== undefined) deny.addSubnet(x.ip, x.prefix, x.type);
  }
  return {
    matches(ip) {
      if (ip === undefined || ip === '') return false;
      const fam = isIP(ip);
      if (fam === 0) return false;
      const type = fam === 4 ? 'ipv4' : 'ipv6';
      return allow.check(ip, type) && !deny.check(ip, type);
    },
  };
}

/** Does a policy port entry allow `port`/`protocol` on `dest`? */
export function portMatches(
  p: NetworkPolicyPort,
  port: number,
  protocol: Protocol,
  dest: NetpolPod,
): boolean {
  if ((p.protocol ?? 'TCP') !== protocol) return false;
  if (p.port === undefined) return true;
  if (typeof p.port === 'number') {
    const end = p.endPort ?? p.port;
    return port >= p.port && port <= end;
  }
  const name = p.port;
  return dest.ports.some(
    (cp) => cp.name === name && (cp.protocol ?? 'TCP') === protocol && cp.containerPort === port,
  );
}

function rulePortsMatch(
  rule: NetworkPolicyRule,
  port: number,
  protocol: Protocol,
  dest: NetpolPod,
): boolean {
  const ports = rule.ports ?? [];
  return ports.length === 0 || ports.some((p) => portMatches(p, port, protocol, dest));
}

export interface NetworkPolicyEngineOptions {
  readonly namespaces: readonly NetpolNamespace[];
  readonly pods: readonly NetpolPod[];
  readonly policies: readonly NetworkPolicy[];
  readonly adminPolicies?: readonly AdminNetworkPolicy[];
  readonly baselinePolicies?: readonly BaselineAdminNetworkPolicy[];
}

/** The whole cluster's reachability for one port: row = from, column = to. */
export interface ReachabilityMatrix {
  /** `ns/name`, sorted. */
  readonly pods: readonly string[];
  readonly matrix: readonly (readonly boolean[])[];
}

export interface NetworkPolicyEngine {
  /** Decides one connection and names the policies that decided it. */
  evaluate(connection: Connection): ConnectionVerdict;
  /** Every pod to every pod on one port, computed with per-rule pod bitsets. */
  matrix(port: number, protocol?: Protocol): ReachabilityMatrix;
  /** Finds a pod by `ns/name`. */
  pod(key: string): NetpolPod | undefined;
  /** Policies selecting a pod for each direction (for audits). */
  selecting(pod: NetpolPod): { ingress: NetworkPolicy[]; egress: NetworkPolicy[] };
  /** ANPs (by precedence) and BANPs whose subject selects a pod. */
  selectingAdmin(pod: NetpolPod): { admin: string[]; baseline: string[] };
}

interface CompiledPeer {
  readonly peer: NetworkPolicyPeer;
  readonly ipBlock: CompiledIpBlock | undefined;
}

interface CompiledPolicy {
  readonly policy: NetworkPolicy;
  readonly key: string;
  readonly types: Set<'Ingress' | 'Egress'>;
  readonly ingress: readonly { rule: NetworkPolicyRule; peers: readonly CompiledPeer[] }[];
  readonly egress: readonly { rule: NetworkPolicyRule; peers: readonly CompiledPeer[] }[];
}

/** `ns/name`; an external source (no namespace) is its name, the address. */
export function podKey(p: { namespace: string; name: string }): string {
  return p.namespace === '' ? p.name : `${p.namespace}/${p.name}`;
}

/** Builds an engine over one snapshot of the cluster. */
export function createNetworkPolicyEngine(
  options: NetworkPolicyEngineOptions,
): NetworkPolicyEngine {
  const nsLabels = new Map<string, Labels>();
  for (const ns of options.namespaces) {
    nsLabels.set(ns.name, { ...ns.labels, [NAMESPACE_NAME_LABEL]: ns.name });
  }
  const labelsOfNs = (name: string): Labels =>
    nsLabels.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  const compilePeers = (peers: readonly NetworkPolicyPeer[] | null | undefined): CompiledPeer[] =>
    (peers ?? []).map((peer) => ({
      peer,
      ipBlock: peer.ipBlock === undefined ? undefined : compileIpBlock(peer.ipBlock),
    }));
  const policies: CompiledPolicy[] = options.policies.map((policy) => ({
    policy,
    key: podKey(policy),
    types: effectivePolicyTypes(policy),
    ingress: (policy.ingress ?? []).map((rule) => ({ rule, peers: compilePeers(rule.peers) })),
    egress: (policy.egress ?? []).map((rule) => ({ rule, peers: compilePeers(rule.peers) })),
  }));
  const pods = [...options.pods].sort((a, b) => {
    const ka = podKey(a);
    const kb = podKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const byKey = new Map(pods.map((p) => [podKey(p), p]));
  const tiers = compileAdminTiers(
    options.adminPolicies ?? [],
    options.baselinePolicies ?? [],
    labelsOfNs,
  );

  const selects = (c: CompiledPolicy, pod: NetpolPod): boolean =>
    pod.external !== true &&
    c.policy.namespace === pod.namespace &&
    selectorMatches(c.policy.podSelector, pod.labels);

  /** Does one peer of a policy in `policyNs` match `pod`? */
  const peerMatches = (cp: CompiledPeer, policyNs: string, pod: NetpolPod): boolean => {
    if (cp.ipBlock !== undefined) return cp.ipBlock.matches(pod.ip);
    if (pod.external === true) return false;
    const { podSelector, namespaceSelector } = cp.peer;
    if (podSelector === undefined && namespaceSelector === undefined) return false;
    if (namespaceSelector === undefined) {
      if (pod.namespace !== policyNs) return false;
    } else if (!selectorMatches(namespaceSelector, labelsOfNs(pod.namespace))) return false;
    return podSelector === undefined || selectorMatches(podSelector, pod.labels);
  };

  const rulePeersMatch = (
    peers: readonly CompiledPeer[],
    policyNs: string,
    pod: NetpolPod,
  ): boolean => peers.length === 0 || peers.some((cp) => peerMatches(cp, policyNs, pod));

  const direction = (
    dir: 'Ingress' | 'Egress',
    subject: NetpolPod,
    peer: NetpolPod,
    dest: NetpolPod,
    port: number,
    protocol: Protocol,
  ): DirectionVerdict => {
    const what = dir === 'Ingress' ? 'ingress' : 'egress';
    const admin = tiers.empty ? undefined : tiers.admin(dir, subject, peer, dest, port, protocol);
    const np = networkPolicyTier(dir, subject, peer, dest, port, protocol);
    if (admin !== undefined && admin.action !== 'Pass') {
      return {
        allowed: admin.action === 'Allow',
        isolated: np.isolated,
        policies: np.policies,
        allowedBy: [],
        tier: 'AdminNetworkPolicy',
        admin,
        reason: `${admin.action === 'Allow' ? 'allowed' : 'denied'} by ${describeAdminMatch(admin)}, before any NetworkPolicy`,
      };
    }
    const passed = admin === undefined ? '' : `${describeAdminMatch(admin)} passed it on; `;
    const via = admin === undefined ? {} : { admin };
    if (np.isolated) return { ...np, ...via, reason: `${passed}${np.reason}` };
    const base = tiers.empty ? undefined : tiers.baseline(dir, subject, peer, dest, port, protocol);
    if (base !== undefined) {
      return {
        ...np,
        allowed: base.action === 'Allow',
        tier: 'BaselineAdminNetworkPolicy',
        admin: base,
        reason: `${passed}no NetworkPolicy isolates ${podKey(subject)} for ${what}; ${base.action === 'Allow' ? 'allowed' : 'denied'} by ${describeAdminMatch(base)}`,
      };
    }
    return { ...np, ...via, reason: `${passed}${np.reason}` };
  };

  const networkPolicyTier = (
    dir: 'Ingress' | 'Egress',
    subject: NetpolPod,
    peer: NetpolPod,
    dest: NetpolPod,
    port: number,
    protocol: Protocol,
  ): DirectionVerdict => {
    const selecting: string[] = [];
    const allowedBy: string[] = [];
    for (const c of policies) {
      if (!c.types.has(dir) || !selects(c, subject)) continue;
      selecting.push(c.key);
      const rules = dir === 'Ingress' ? c.ingress : c.egress;
      if (
        rules.some(
          (r) =>
            rulePortsMatch(r.rule, port, protocol, dest) &&
            rulePeersMatch(r.peers, c.policy.namespace, peer),
        )
      ) {
        allowedBy.push(c.key);
      }
    }
    const what = dir === 'Ingress' ? 'ingress' : 'egress';
    if (selecting.length === 0) {
      return {
        allowed: true,
        isolated: false,
        policies: [],
        allowedBy: [],
        tier: 'none',
        reason:
          subject.external === true
            ? `${podKey(subject)} is outside the cluster's pods: no policy selects it`
            : `${podKey(subject)} is not isolated for ${what}`,
      };
    }
    if (allowedBy.length > 0) {
      return {
        allowed: true,
        isolated: true,
        policies: selecting,
        allowedBy,
        tier: 'NetworkPolicy',
        reason: `allowed by ${allowedBy.map((k) => `NetworkPolicy "${k}"`).join(', ')}`,
      };
    }
    return {
      allowed: false,
      isolated: true,
      policies: selecting,
      allowedBy: [],
      tier: 'NetworkPolicy',
      reason: `${podKey(subject)} is isolated for ${what} by ${selecting.map((k) => `NetworkPolicy "${k}"`).join(', ')} and no rule allows ${podKey(dir === 'Ingress' ? peer : dest)} on ${protocol}/${String(port)}`,
    };
  };

  /** A pod's traffic to itself: allowed whatever the policies say, and the verdict says why. */
  const loopback = (d: DirectionVerdict, p: NetpolPod): DirectionVerdict => ({
    ...d,
    allowed: true,
    reason: `traffic from ${podKey(p)} to itself is always allowed: Kubernetes never isolates a pod from itself (loopback)${
      d.allowed ? '' : `; without that, ${d.reason}`
    }`,
  });

  const engine: NetworkPolicyEngine = {
    pod: (key) => byKey.get(key),
    selectingAdmin: (pod) => tiers.selecting(pod),
    selecting(pod) {
      return {
        ingress: policies
          .filter((c) => c.types.has('Ingress') && selects(c, pod))
          .map((c) => c.policy),
        egress: policies
          .filter((c) => c.types.has('Egress') && selects(c, pod))
          .map((c) => c.policy),
      };
    },
    evaluate({ from, to, port, protocol = 'TCP' }) {
      if (podKey(from) === podKey(to)) {
        return {
          allowed: true,
          loopback: true,
          egress: loopback(direction('Egress', from, to, to, port, protocol), from),
          ingress: loopback(direction('Ingress', to, from, to, port, protocol), to),
        };
      }
      const egress = direction('Egress', from, to, to, port, protocol);
      const ingress = direction('Ingress', to, from, to, port, protocol);
      return { allowed: egress.allowed && ingress.allowed, egress, ingress };
    },
    matrix(port, protocol = 'TCP') {
      if (!tiers.empty) {
        // Admin tiers order rules per pair: evaluate each pair.
        return {
          pods: pods.map(podKey),
          matrix: pods.map((from) =>
            pods.map((to) => engine.evaluate({ from, to, port, protocol }).allowed),
          ),
        };
      }
      const n = pods.length;
      const words = Math.ceil(n / 32);
      const index = new Map(pods.map((p, i) => [p, i]));
      const bitsetOf = (pred: (p: NetpolPod) => boolean): Uint32Array => {
        const b = new Uint32Array(words);
        for (let i = 0; i < n; i++) {
          const p = pods[i];
          if (p !== undefined && pred(p)) b[i >>> 5] = (b[i >>> 5] ?? 0) | (1 << (i & 31));
        }
        return b;
      };
      const ALL = bitsetOf(() => true);
      // Per pod: whether isolated, and the union of what its policies allow.
      const egressIsolated = new Uint8Array(n);
      const ingressIsolated = new Uint8Array(n);
      const egressAllow: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(n);
      const ingressAllow: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(n);
      const or = (into: Uint32Array, from: Uint32Array): void => {
        for (let w = 0; w < words; w++) into[w] = (into[w] ?? 0) | (from[w] ?? 0);
      };
      for (const c of policies) {
        const selected = pods.filter((p) => selects(c, p));
        if (selected.length === 0) continue;
        const ns = c.policy.namespace;
        if (c.types.has('Egress')) {
          // Egress rule: peer matches the destination and ports match on it.
          const allow = new Uint32Array(words);
          for (const r of c.egress) {
            or(
              allow,
              bitsetOf(
                (d) => rulePortsMatch(r.rule, port, protocol, d) && rulePeersMatch(r.peers, ns, d),
              ),
            );
          }
          for (const s of selected) {
            const i = index.get(s) ?? 0;
            egressIsolated[i] = 1;
            const cur = egressAllow[i] ?? new Uint32Array(words);
            or(cur, allow);
            egressAllow[i] = cur;
          }
        }
        if (c.types.has('Ingress')) {
          const peerSets = c.ingress.map((r) =>
            r.peers.length === 0 ? ALL : bitsetOf((s) => rulePeersMatch(r.peers, ns, s)),
          );
          for (const d of selected) {
            const i = index.get(d) ?? 0;
            ingressIsolated[i] = 1;
            const cur = ingressAllow[i] ?? new Uint32Array(words);
            c.ingress.forEach((r, k) => {
              const ps = peerSets[k];
              if (ps !== undefined && rulePortsMatch(r.rule, port, protocol, d)) or(cur, ps);
            });
            ingressAllow[i] = cur;
          }
        }
      }
      const bit = (b: Uint32Array | undefined, j: number): boolean =>
        (((b?.[j >>> 5] ?? 0) >>> (j & 31)) & 1) === 1;
      const matrix: boolean[][] = [];
      for (let i = 0; i < n; i++) {
        const row: boolean[] = new Array<boolean>(n);
        for (let j = 0; j < n; j++) {
          row[j] =
            i === j ||
            ((egressIsolated[i] === 0 || bit(egressAllow[i], j)) &&
              (ingressIsolated[j] === 0 || bit(ingressAllow[j], i)));
        }
        matrix.push(row);
      }
      return { pods: pods.map(podKey), matrix };
    },
  };
  return engine;
}
