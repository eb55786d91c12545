/**
 * Which security policies apply to a workload (Istio): a policy in the root
 * namespace (default `istio-system`) without a selector applies mesh-wide; a
 * policy without a selector applies to its namespace; a policy with a
 * selector applies to matching workloads in its own namespace. For
 * AuthorizationPolicy and RequestAuthentication, root-namespace policies with
 * a selector apply to matching workloads in every namespace.
 */
import type {
  AuthorizationPolicy,
  MtlsMode,
  PeerAuthentication,
  RequestAuthentication,
} from '../api/security/index.js';

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

export interface Workload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export function selectorMatches(
  selector: { matchLabels: Record<string, string> } | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  return Object.entries(selector.matchLabels).every(([k, v]) => labels[k] === v);
}

const nsOf = (m: { namespace?: string }): string => m.namespace ?? 'default';

/** AuthorizationPolicies or RequestAuthentications that apply to the workload. */
export function applicablePolicies<T extends AuthorizationPolicy | RequestAuthentication>(
  policies: readonly T[],
  workload: Workload,
  rootNamespace = DEFAULT_ROOT_NAMESPACE,
): T[] {
  return policies.filter((p) => {
    const ns = nsOf(p.metadata);
    if (ns !== rootNamespace && ns !== workload.namespace) return false;
    return selectorMatches(p.spec?.selector, workload.labels);
  });
}

export interface PeerAuthenticationDecision {
  readonly mode: Exclude<MtlsMode, 'UNSET'>;
  /** `ns/name` of the policy that decided, or null for the built-in default. */
  readonly policy: string | null;
  readonly reason: string;
}

function oldest<T extends PeerAuthentication>(ps: readonly T[]): T | undefined {
  // Istio: among several at one level the oldest creationTimestamp wins (then name).
  return [...ps].sort((a, b) => {
    const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
    return ta !== tb ? ta - tb : a.metadata.name.localeCompare(b.metadata.name);
  })[0];
}

/**
 * The effective mTLS mode on a workload's container port: workload policy
 * (port level, then workload level) > namespace policy > mesh policy >
 * PERMISSIVE. UNSET inherits from the next level up.
 */
export function resolvePeerAuthentication(
  policies: readonly PeerAuthentication[],
  workload: Workload,
  port: number | undefined,
  rootNamespace = DEFAULT_ROOT_NAMESPACE,
): PeerAuthenticationDecision {
  const mesh = oldest(
    policies.filter((p) => nsOf(p.metadata) === rootNamespace && p.spec?.selector === undefined),
  );
  const namespace = oldest(
    policies.filter(
      (p) =>
        nsOf(p.metadata) === workload.namespace &&
        p.spec?.selector === undefined &&
        workload.namespace !== rootNamespace,
    ),
  );
  const wl = oldest(
    policies.filter(
      (p) =>
        nsOf(p.metadata) === workload.namespace &&
        p.spec?.selector !== undefined &&
        selectorMatches(p.spec.selector, workload.labels),
    ),
  );
  const id = (p: PeerAuthentication): string => `${nsOf(p.metadata)}/${p.metadata.name}`;
  const steps: [PeerAuthentication | undefined, MtlsMode | undefined, string][] = [];
  if (wl !== undefined && port !== undefined)
    steps.push([
      wl,
      wl.spec?.portLevelMtls?.[String(port)]?.mode,
      `port ${port} of workload policy`,
    ]);
  if (wl !== undefined) steps.push([wl, wl.spec?.mtls?.mode, 'workload policy']);
  if (namespace !== undefined)
    steps.push([namespace, namespace.spec?.mtls?.mode, 'namespace policy']);
  if (mesh !== undefined) steps.push([mesh, mesh.spec?.mtls?.mode, 'mesh-wide policy']);
  for (const [p, mode, level] of steps) {
    if (p !== undefined && mode !== undefined && mode !== 'UNSET') {
      return { mode, policy: id(p), reason: `${mode} from the ${level} ${id(p)}` };
    }
  }
  return {
    mode: 'PERMISSIVE',
    policy: null,
    reason: 'PERMISSIVE: no PeerAuthentication sets a mode (Istio default)',
  };
}
