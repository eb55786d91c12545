/**
 * Which Pod Security check runs at which level and version — the upstream
 * check registry (k8s.io/pod-security-admission policy/registry.go). Each
 * check has versions keyed by the first Kubernetes minor version they apply
 * to; a restricted check may override baseline checks it supersedes (for
 * example `restrictedVolumes` replaces `hostPathVolumes`). Checks run in ID
 * order, baseline first, so the aggregated message matches Kubernetes'.
 */
import * as c from './checks.js';

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

/** One version of a check: applies from `minor` (v1.minor) until the next entry. */
export interface VersionedCheck {
  readonly minor: number;
  readonly fn: c.CheckFn;
  /** Baseline check IDs this restricted check replaces while it applies. */
  readonly overrides?: readonly string[];
}

export interface CheckDefinition {
  readonly id: string;
  readonly level: 'baseline' | 'restricted';
  readonly versions: readonly VersionedCheck[];
}

/** Every check Palisade knows, as upstream defines them. */
export const CHECKS: readonly CheckDefinition[] = [
  {
    id: 'allowPrivilegeEscalation',
    level: 'restricted',
    versions: [
      { minor: 8, fn: c.allowPrivilegeEscalation_1_8 },
      { minor: 25, fn: c.allowPrivilegeEscalation_1_25 },
    ],
  },
  { id: 'appArmorProfile', level: 'baseline', versions: [{ minor: 0, fn: c.appArmorProfile_1_0 }] },
  {
    id: 'capabilities_baseline',
    level: 'baseline',
    versions: [{ minor: 0, fn: c.capabilitiesBaseline_1_0 }],
  },
  {
    id: 'capabilities_restricted',
    level: 'restricted',
    versions: [
      { minor: 22, fn: c.capabilitiesRestricted_1_22, overrides: ['capabilities_baseline'] },
      { minor: 25, fn: c.capabilitiesRestricted_1_25, overrides: ['capabilities_baseline'] },
    ],
  },
  { id: 'hostNamespaces', level: 'baseline', versions: [{ minor: 0, fn: c.hostNamespaces_1_0 }] },
  { id: 'hostPathVolumes', level: 'baseline', versions: [{ minor: 0, fn: c.hostPathVolumes_1_0 }] },
  { id: 'hostPorts', level: 'baseline', versions: [{ minor: 0, fn: c.hostPorts_1_0 }] },
  {
    id: 'hostProbesAndHostLifecycle',
    level: 'baseline',
    versions: [{ minor: 34, fn: c.hostProbesAndHostLifecycle_1_34 }],
  },
  { id: 'privileged', level: 'baseline', versions: [{ minor: 0, fn: c.privileged_1_0 }] },
  {
    id: 'procMount',
    level: 'baseline',
    versions: [
      { minor: 0, fn: c.procMount_1_0 },
      { minor: 35, fn: c.procMountBaseline_1_35 },
    ],
  },
  {
    id: 'procMount_restricted',
    level: 'restricted',
    versions: [{ minor: 35, fn: c.procMount_1_0, overrides: ['procMount'] }],
  },
  {
    id: 'restrictedVolumes',
    level: 'restricted',
    versions: [{ minor: 0, fn: c.restrictedVolumes_1_0, overrides: ['hostPathVolumes'] }],
  },
  {
    id: 'runAsNonRoot',
    level: 'restricted',
    versions: [
      { minor: 0, fn: c.runAsNonRoot_1_0 },
      { minor: 35, fn: c.runAsNonRoot_1_35 },
    ],
  },
  {
    id: 'runAsUser',
    level: 'restricted',
    versions: [
      { minor: 23, fn: c.runAsUser_1_23 },
      { minor: 35, fn: c.runAsUser_1_35 },
    ],
  },
  {
    id: 'seLinuxOptions',
    level: 'baseline',
    versions: [
      { minor: 0, fn: c.seLinuxOptions_1_0 },
      { minor: 31, fn: c.seLinuxOptions_1_31 },
    ],
  },
  {
    id: 'seccompProfile_baseline',
    level: 'baseline',
    versions: [
      { minor: 0, fn: c.seccompProfileBaseline_1_0 },
      { minor: 19, fn: c.seccompProfileBaseline_1_19 },
    ],
  },
  {
    id: 'seccompProfile_restricted',
    level: 'restricted',
    versions: [
      { minor: 19, fn: c.seccompProfileRestricted_1_19, overrides: ['seccompProfile_baseline'] },
      { minor: 25, fn: c.seccompProfileRestricted_1_25, overrides: ['seccompProfile_baseline'] },
    ],
  },
  {
    id: 'sysctls',
    level: 'baseline',
    versions: [
      { minor: 0, fn: c.sysctls_1_0 },
      { minor: 27, fn: c.sysctls_1_27 },
      { minor: 29, fn: c.sysctls_1_29 },
      { minor: 32, fn: c.sysctls_1_32 },
      { minor: 37, fn: c.sysctls_1_37 },
    ],
  },
  {
    id: 'windowsHostProcess',
    level: 'baseline',
    versions: [{ minor: 0, fn: c.windowsHostProcess_1_0 }],
  },
];

/** The newest minor version any check defines; `latest` and anything newer evaluate as this. */
export const LATEST_CHECK_MINOR = Math.max(
  ...CHECKS.flatMap((d) => d.versions.map((v) => v.minor)),
);

/** A check as it applies at one level and version. */
export interface ActiveCheck {
  readonly id: string;
  readonly fn: c.CheckFn;
}

function versionAt(def: CheckDefinition, minor: number): VersionedCheck | undefined {
  let found: VersionedCheck | undefined;
  for (const v of def.versions) if (v.minor <= minor) found = v;
  return found;
}

const byId = (a: CheckDefinition, b: CheckDefinition): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
const ORDERED = [
  ...CHECKS.filter((d) => d.level === 'baseline').sort(byId),
  ...CHECKS.filter((d) => d.level === 'restricted').sort(byId),
];

const cache = new Map<string, readonly ActiveCheck[]>();

/** The checks that run for `level` at v1.`minor` (capped at the latest known version). */
export function checksFor(level: PodSecurityLevel, minor: number): readonly ActiveCheck[] {
  if (level === 'privileged') return [];
  const m = Math.min(minor, LATEST_CHECK_MINOR);
  const key = `${level}:${String(m)}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const overridden = new Set<string>();
  if (level === 'restricted') {
    for (const d of ORDERED) {
      if (d.level !== 'restricted') continue;
      for (const o of versionAt(d, m)?.overrides ?? []) overridden.add(o);
    }
  }
  const out: ActiveCheck[] = [];
  for (const d of ORDERED) {
    if (level === 'baseline' && d.level !== 'baseline') continue;
    if (overridden.has(d.id)) continue;
    const v = versionAt(d, m);
    if (v !== undefined) out.push({ id: d.id, fn: v.fn });
  }
  cache.set(key, out);
  return out;
}
