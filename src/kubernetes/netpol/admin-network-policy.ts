/**
 * AdminNetworkPolicy and BaselineAdminNetworkPolicy
 * (policy.networking.k8s.io/v1alpha1, the Kubernetes network-policy-api
 * project): the cluster-admin tiers around NetworkPolicy. Pure: no I/O.
 *
 * https://network-policy-api.sigs.k8s.io/api-overview/ and the v1alpha1 API
 * types (apis/v1alpha1 in kubernetes-sigs/network-policy-api):
 * - Tiers: AdminNetworkPolicy → NetworkPolicy → BaselineAdminNetworkPolicy →
 *   default allow. Each direction (the destination's ingress, the source's
 *   egress) is decided on its own.
 * - ANPs that select the pod are checked by `priority`, lowest value first
 *   (0 … 1000); rules of one ANP in the order written; the first rule whose
 *   peers and ports match decides: `Allow` and `Deny` are final, `Pass` skips
 *   every remaining ANP rule and hands the connection to NetworkPolicy (and,
 *   if no NetworkPolicy isolates the pod, to the BANP). Policies with the
 *   same priority are ambiguous upstream; here they are ordered by name.
 * - The BANP (singleton `default`): first matching rule, `Allow` or `Deny`.
 * - subject / peers: `namespaces` (every pod in matching namespaces) or
 *   `pods` (namespaceSelector AND podSelector; an empty selector selects
 *   all). Egress peers also take `networks` (CIDRs, which match pod
 *   addresses as well), `nodes` and `domainNames` (experimental; no nodes or
 *   DNS names are known here, so they match no address).
 * - A peer with none of the known fields (a newer CRD) fails closed as the
 *   API documents: for `Allow` it matches nothing, for `Deny` and `Pass` it
 *   matches everything.
 * - ports: `portNumber` (protocol defaults to TCP), `portRange` (inclusive),
 *   `namedPort` (resolved on the destination pod's container ports); no
 *   ports means every port.
 */
import { BlockList, isIP } from 'node:net';
import { selectorMatches, type LabelSelector, type Labels } from '../labels/label-selector.js';

export type AdminAction = 'Allow' | 'Deny' | 'Pass';

export interface NamespacedPodSelector {
  readonly namespaceSelector: LabelSelector;
  readonly podSelector: LabelSelector;
}

/** `subject`: exactly one of the two. */
export interface AdminSubject {
  readonly namespaces?: LabelSelector;
  readonly pods?: NamespacedPodSelector;
}

export interface AdminPeer {
  readonly namespaces?: LabelSelector;
  readonly pods?: NamespacedPodSelector;
  /** Egress only. */
  readonly networks?: readonly string[];
  /** Egress only (experimental): no node addresses are known, so it matches none. */
  readonly nodes?: LabelSelector;
  /** Egress only (experimental): names are not addresses, so it matches none. */
  readonly domainNames?: readonly string[];
}

export interface AdminPort {
  readonly portNumber?: { readonly protocol: string; readonly port: number };
  readonly namedPort?: string;
  readonly portRange?: { readonly protocol: string; readonly start: number; readonly end: number };
}

export interface AdminRule {
  readonly name: string;
  readonly action: AdminAction;
  /** `from` (ingress) or `to` (egress). */
  readonly peers: readonly AdminPeer[];
  /** Undefined: every port. */
  readonly ports?: readonly AdminPort[];
}

export interface AdminNetworkPolicy {
  readonly name: string;
  readonly priority: number;
  readonly subject: AdminSubject;
  readonly ingress: readonly AdminRule[];
  readonly egress: readonly AdminRule[];
}

/** Rules carry only `Allow` and `Deny`. */
export interface BaselineAdminNetworkPolicy {
  readonly name: string;
  readonly subject: AdminSubject;
  readonly ingress: readonly AdminRule[];
  readonly egress: readonly AdminRule[];
}

/** What an admin tier needs to know of a pod (a NetpolPod fits). */
export interface AdminPodView {
  readonly namespace: string;
  readonly labels: Labels;
  readonly ip?: string;
  /** An address outside the cluster's pods: only `networks` can match it. */
  readonly external?: boolean;
  readonly ports: readonly { name?: string; containerPort: number; protocol?: string }[];
}

/** The rule that decided a direction in an admin tier. */
export interface AdminMatch {
  readonly kind: 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy';
  readonly policy: string;
  readonly priority?: number;
  readonly rule: string;
  readonly index: number;
  readonly action: AdminAction;
}

function cidrMatcher(cidrs: readonly string[]): (ip: string | undefined) => boolean {
  const list = new BlockList();
  let any = false;
  for (const c of cidrs) {
    const slash = c.indexOf('/');
    const address = slash < 0 ? c : c.slice(0, slash);
    const family = isIP(address);
    if (family === 0) continue;
    const max = family === 4 ? 32 : 128;
    const bits = slash < 0 ? max : Number(c.slice(slash + 1));
    if (!Number.isInteger(bits) || bits < 0 || bits > max) continue;
    list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
    any = true;
  }
  return (ip) => {
    if (!any || ip === undefined) return false;
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** The admin tiers compiled once over a snapshot. */
export interface AdminTiers {
  /** True when there is no ANP and no BANP at all. */
  readonly empty: boolean;
  /** The ANP tier's decision for one direction, or undefined when no rule matched. */
  admin(
    dir: 'Ingress' | 'Egress',
    subject: AdminPodView,
    peer: AdminPodView,
    dest: AdminPodView,
    port: number,
    protocol: string,
  ): AdminMatch | undefined;
  /** The BANP tier's decision, or undefined when no rule matched. */
  baseline(
    dir: 'Ingress' | 'Egress',
    subject: AdminPodView,
    peer: AdminPodView,
    dest: AdminPodView,
    port: number,
    protocol: string,
  ): AdminMatch | undefined;
  /** ANPs (by priority) and BANPs selecting a pod. */
  selecting(pod: AdminPodView): { admin: string[]; baseline: string[] };
}

export function compileAdminTiers(
  admin: readonly AdminNetworkPolicy[],
  baseline: readonly BaselineAdminNetworkPolicy[],
  labelsOfNs: (ns: string) => Labels,
): AdminTiers {
  const sorted = [...admin].sort((a, b) =>
    a.priority !== b.priority ? a.priority - b.priority : a.name < b.name ? -1 : 1,
  );
  const networks = new Map<readonly string[], (ip: string | undefined) => boolean>();
  const networksOf = (list: readonly string[]): ((ip: string | undefined) => boolean) => {
    let m = networks.get(list);
    if (m === undefined) {
      m = cidrMatcher(list);
      networks.set(list, m);
    }
    return m;
  };

  const subjectSelects = (s: AdminSubject, pod: AdminPodView): boolean => {
    if (pod.external === true) return false;
    if (s.namespaces !== undefined) return selectorMatches(s.namespaces, labelsOfNs(pod.namespace));
    if (s.pods !== undefined)
      return (
        selectorMatches(s.pods.namespaceSelector, labelsOfNs(pod.namespace)) &&
        selectorMatches(s.pods.podSelector, pod.labels)
      );
    return false;
  };

  const peerMatches = (p: AdminPeer, action: AdminAction, pod: AdminPodView): boolean => {
    const known =
      p.namespaces !== undefined ||
      p.pods !== undefined ||
      p.networks !== undefined ||
      p.nodes !== undefined ||
      p.domainNames !== undefined;
    if (!known) return action !== 'Allow';
    if (p.networks !== undefined && networksOf(p.networks)(pod.ip)) return true;
    if (pod.external === true) return false;
    if (p.namespaces !== undefined && selectorMatches(p.namespaces, labelsOfNs(pod.namespace)))
      return true;
    if (
      p.pods !== undefined &&
      selectorMatches(p.pods.namespaceSelector, labelsOfNs(pod.namespace)) &&
      selectorMatches(p.pods.podSelector, pod.labels)
    )
      return true;
    return false;
  };

  const portMatches = (p: AdminPort, port: number, protocol: string, dest: AdminPodView) => {
    if (p.portNumber !== undefined)
      return p.portNumber.protocol === protocol && p.portNumber.port === port;
    if (p.portRange !== undefined)
      return (
        p.portRange.protocol === protocol && port >= p.portRange.start && port <= p.portRange.end
      );
    if (p.namedPort !== undefined) {
      const name = p.namedPort;
      return dest.ports.some(
        (cp) =>
          cp.name === name && (cp.protocol ?? 'TCP') === protocol && cp.containerPort === port,
      );
    }
    return false;
  };

  const firstMatch = (
    rules: readonly AdminRule[],
    peer: AdminPodView,
    dest: AdminPodView,
    port: number,
    protocol: string,
  ): { rule: AdminRule; index: number } | undefined => {
    for (let index = 0; index < rules.length; index++) {
      const rule = rules[index];
      if (rule === undefined) continue;
      if (rule.ports !== undefined && !rule.ports.some((p) => portMatches(p, port, protocol, dest)))
        continue;
      if (rule.peers.some((p) => peerMatches(p, rule.action, peer))) return { rule, index };
    }
    return undefined;
  };

  return {
    empty: admin.length === 0 && baseline.length === 0,
    admin(dir, subject, peer, dest, port, protocol) {
      for (const anp of sorted) {
        if (!subjectSelects(anp.subject, subject)) continue;
        const hit = firstMatch(
          dir === 'Ingress' ? anp.ingress : anp.egress,
          peer,
          dest,
          port,
          protocol,
        );
        if (hit !== undefined)
          return {
            kind: 'AdminNetworkPolicy',
            policy: anp.name,
            priority: anp.priority,
            rule: hit.rule.name,
            index: hit.index,
            action: hit.rule.action,
          };
      }
      return undefined;
    },
    baseline(dir, subject, peer, dest, port, protocol) {
      for (const banp of baseline) {
        if (!subjectSelects(banp.subject, subject)) continue;
        const hit = firstMatch(
          dir === 'Ingress' ? banp.ingress : banp.egress,
          peer,
          dest,
          port,
          protocol,
        );
        if (hit !== undefined)
          return {
            kind: 'BaselineAdminNetworkPolicy',
            policy: banp.name,
            rule: hit.rule.name,
            index: hit.index,
            action: hit.rule.action,
          };
      }
      return undefined;
    },
    selecting(pod) {
      return {
        admin: sorted.filter((p) => subjectSelects(p.subject, pod)).map((p) => p.name),
        baseline: baseline.filter((p) => subjectSelects(p.subject, pod)).map((p) => p.name),
      };
    },
  };
}

/** `AdminNetworkPolicy "name" rule #i "rule" (priority N)` for reasons. */
export function describeAdminMatch(m: AdminMatch): string {
  const rule = m.rule === '' ? `rule ${String(m.index)}` : `rule ${JSON.stringify(m.rule)}`;
  const priority = m.priority === undefined ? '' : ` (priority ${String(m.priority)})`;
  return `${m.kind} "${m.policy}"${priority} ${rule}`;
}
