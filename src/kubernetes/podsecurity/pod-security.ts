/**
 * Pod Security Standards evaluation: a level and version (`restricted:v1.25`,
 * `baseline:latest`), pods and pod templates from every workload kind, the
 * namespace labels `pod-security.kubernetes.io/<enforce|audit|warn>[-version]`,
 * exemptions, and Kubernetes' aggregated messages
 * (`violates PodSecurity "restricted:latest": reason (detail), ...`).
 *
 * https://kubernetes.io/docs/concepts/security/pod-security-admission/
 */
import { readStringMap } from '../labels/label-selector.js';
import type { PodMetadataView, PodSpecView } from './checks.js';
import { checksFor, LATEST_CHECK_MINOR, type PodSecurityLevel } from './registry.js';

export type { PodSecurityLevel } from './registry.js';

/** A policy version: `v1.N` or `latest`. */
export type PodSecurityVersion = { readonly minor: number } | 'latest';

/** A level at a version, printed like Kubernetes: `restricted:latest`, `baseline:v1.23`. */
export interface LevelVersion {
  readonly level: PodSecurityLevel;
  readonly version: PodSecurityVersion;
}

/** One failed check. `message` is `reason (detail)` as Kubernetes prints it. */
export interface PodSecurityViolation {
  readonly check: string;
  readonly reason: string;
  readonly detail: string;
  readonly message: string;
}

export interface PodSecurityResult {
  readonly allowed: boolean;
  readonly violations: readonly PodSecurityViolation[];
}

export const LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];

/** Parses a level name; undefined when it is not one. */
export function parseLevel(text: string): PodSecurityLevel | undefined {
  return (LEVELS as readonly string[]).includes(text) ? (text as PodSecurityLevel) : undefined;
}

/** Parses `latest` or `v1.N` (api.ParseVersion); undefined when malformed. */
export function parseVersion(text: string): PodSecurityVersion | undefined {
  if (text === 'latest') return 'latest';
  const m = /^v1\.(0|[1-9][0-9]*)$/.exec(text);
  if (m?.[1] === undefined) return undefined;
  const minor = Number(m[1]);
  return Number.isSafeInteger(minor) ? { minor } : undefined;
}

export function formatVersion(v: PodSecurityVersion): string {
  return v === 'latest' ? 'latest' : `v1.${String(v.minor)}`;
}

export function formatLevelVersion(lv: LevelVersion): string {
  return `${lv.level}:${formatVersion(lv.version)}`;
}

/** The newest policy version Palisade implements (what `latest` means). */
export const LATEST_KNOWN_VERSION = `v1.${String(LATEST_CHECK_MINOR)}`;

function minorOf(v: PodSecurityVersion): number {
  return v === 'latest' ? Number.MAX_SAFE_INTEGER : v.minor;
}

/**
 * Evaluates a pod (metadata + spec) against a level and version. Versions
 * newer than the newest known check version evaluate as `latest`.
 */
export function evaluatePodSecurity(
  lv: LevelVersion,
  metadata: unknown,
  spec: unknown,
): PodSecurityResult {
  const meta: PodMetadataView = {
    annotations: readStringMap((metadata as { annotations?: unknown } | null)?.annotations),
  };
  const podSpec: PodSpecView =
    typeof spec === 'object' && spec !== null && !Array.isArray(spec) ? (spec as PodSpecView) : {};
  const violations: PodSecurityViolation[] = [];
  for (const check of checksFor(lv.level, minorOf(lv.version))) {
    const r = check.fn(meta, podSpec);
    if (r.allowed) continue;
    const reason =
      r.reason === undefined || r.reason === '' ? 'unknown forbidden reason' : r.reason;
    const detail = r.detail ?? '';
    violations.push({
      check: check.id,
      reason,
      detail,
      message: detail === '' ? reason : `${reason} (${detail})`,
    });
  }
  return { allowed: violations.length === 0, violations };
}

/** `violates PodSecurity "restricted:latest": a (x), b (y)` — the enforce denial text. */
export function violationMessage(
  lv: LevelVersion,
  violations: readonly PodSecurityViolation[],
): string {
  return `violates PodSecurity ${JSON.stringify(formatLevelVersion(lv))}: ${violations.map((v) => v.message).join(', ')}`;
}

/** `would violate PodSecurity "...": ...` — the warn and audit text. */
export function wouldViolateMessage(
  lv: LevelVersion,
  violations: readonly PodSecurityViolation[],
): string {
  return `would violate PodSecurity ${JSON.stringify(formatLevelVersion(lv))}: ${violations.map((v) => v.message).join(', ')}`;
}

/** A pod or pod template found in a manifest. */
export interface PodTemplateRef {
  readonly metadata: unknown;
  readonly spec: unknown;
  /** Where in the object the template sits (`spec.template`), '' for a Pod. */
  readonly path: string;
}

/** Workload kinds whose `spec.template` is a pod template. */
export const POD_TEMPLATE_KINDS = [
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'ReplicaSet',
  'ReplicationController',
] as const;

/**
 * The pod (or pod template) an object carries: Pod, the workload kinds,
 * CronJob (`spec.jobTemplate.spec.template`) and PodTemplate (`template`);
 * undefined for other kinds.
 */
export function podTemplateOf(object: unknown): PodTemplateRef | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const o = object as { kind?: unknown; metadata?: unknown; spec?: unknown; template?: unknown };
  const tmpl = (t: unknown, path: string): PodTemplateRef | undefined => {
    if (typeof t !== 'object' || t === null) return undefined;
    const x = t as { metadata?: unknown; spec?: unknown };
    return { metadata: x.metadata ?? {}, spec: x.spec ?? {}, path };
  };
  switch (o.kind) {
    case 'Pod':
      return { metadata: o.metadata ?? {}, spec: o.spec ?? {}, path: '' };
    case 'PodTemplate':
      return tmpl(o.template, 'template');
    case 'CronJob': {
      const jt = (o.spec as { jobTemplate?: { spec?: { template?: unknown } } } | undefined)
        ?.jobTemplate?.spec?.template;
      return tmpl(jt, 'spec.jobTemplate.spec.template');
    }
    default:
      if ((POD_TEMPLATE_KINDS as readonly unknown[]).includes(o.kind)) {
        return tmpl((o.spec as { template?: unknown } | undefined)?.template, 'spec.template');
      }
      return undefined;
  }
}

// --- namespace policy -------------------------------------------------------

const LABEL_PREFIX = 'pod-security.kubernetes.io/';

/** The enforce/audit/warn policy a namespace's labels select. */
export interface NamespacePolicy {
  readonly enforce: LevelVersion;
  readonly audit: LevelVersion;
  readonly warn: LevelVersion;
  /** Label problems, `metadata.labels[...]: ...`; each was resolved the way Kubernetes does. */
  readonly errors: readonly string[];
}

const PRIVILEGED_LATEST: LevelVersion = { level: 'privileged', version: 'latest' };

function levelRank(l: PodSecurityLevel): number {
  return LEVELS.indexOf(l);
}

/**
 * Reads a namespace's Pod Security labels (api.PolicyToEvaluate). Unset
 * modes take `defaults` (privileged:latest unless configured). An invalid
 * enforce level fails closed to `restricted`; invalid audit/warn levels
 * become `privileged`; an invalid version is `latest`. Without its own warn
 * label, warn is raised to the enforce level.
 */
export function namespacePolicy(
  labels: Readonly<Record<string, string>>,
  defaults: { enforce?: LevelVersion; audit?: LevelVersion; warn?: LevelVersion } = {},
): NamespacePolicy {
  const errors: string[] = [];
  const read = (mode: 'enforce' | 'audit' | 'warn', dflt: LevelVersion): LevelVersion => {
    let level = dflt.level;
    let version = dflt.version;
    const lk = `${LABEL_PREFIX}${mode}`;
    const vk = `${lk}-version`;
    const lt = labels[lk];
    if (lt !== undefined) {
      const parsed = parseLevel(lt);
      if (parsed === undefined) {
        errors.push(`metadata.labels[${lk}]: must be one of privileged, baseline, restricted`);
        level = mode === 'enforce' ? 'restricted' : 'privileged';
      } else level = parsed;
    }
    const vt = labels[vk];
    if (vt !== undefined) {
      const parsed = parseVersion(vt);
      if (parsed === undefined) {
        errors.push(`metadata.labels[${vk}]: must be "latest" or "v1.x"`);
        version = 'latest';
      } else version = parsed;
    }
    return { level, version };
  };
  const enforce = read('enforce', defaults.enforce ?? PRIVILEGED_LATEST);
  const audit = read('audit', defaults.audit ?? PRIVILEGED_LATEST);
  let warn = read('warn', defaults.warn ?? PRIVILEGED_LATEST);
  const enforceLabel = labels[`${LABEL_PREFIX}enforce`];
  if (
    labels[`${LABEL_PREFIX}warn`] === undefined &&
    enforceLabel !== undefined &&
    parseLevel(enforceLabel) !== undefined &&
    levelRank(enforce.level) > levelRank(warn.level)
  ) {
    warn = {
      level: enforce.level,
      version: labels[`${LABEL_PREFIX}warn-version`] === undefined ? enforce.version : warn.version,
    };
  }
  return { enforce, audit, warn, errors };
}

/** Admission exemptions (AdmissionConfiguration `exemptions`). */
export interface PodSecurityExemptions {
  readonly usernames?: readonly string[];
  readonly runtimeClasses?: readonly string[];
  readonly namespaces?: readonly string[];
}

export interface AdmitPodOptions {
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  /** The requesting user, for username exemptions. */
  readonly username?: string;
  readonly exemptions?: PodSecurityExemptions;
  readonly defaults?: { enforce?: LevelVersion; audit?: LevelVersion; warn?: LevelVersion };
  /**
   * The kind being admitted (default `Pod`). Kubernetes enforces only on
   * Pods; for workload kinds (Deployment, CronJob, …) the template is checked
   * for warn and audit, never denied.
   */
  readonly kind?: string;
}

export interface AdmitPodResult {
  readonly allowed: boolean;
  /** Set when the request is exempt: `namespace`, `username` or `runtimeClass`. */
  readonly exempt?: 'namespace' | 'username' | 'runtimeClass';
  readonly policy: NamespacePolicy;
  /** The enforce denial (`violates PodSecurity ...`) when not allowed. */
  readonly message?: string;
  readonly enforceViolations: readonly PodSecurityViolation[];
  /** `would violate PodSecurity ...` warnings for the client. */
  readonly warnings: readonly string[];
  /** The `pod-security.kubernetes.io/audit-violations` annotation value, if any. */
  readonly auditViolations?: string;
}

/**
 * Admission of a pod (or pod template) into a namespace: exemptions first,
 * then enforce (deny), warn (client warnings) and audit (annotation).
 */
export function admitPod(pod: PodTemplateRef, options: AdmitPodOptions): AdmitPodResult {
  const policy = namespacePolicy(options.namespaceLabels, options.defaults);
  const ex = options.exemptions ?? {};
  const runtimeClass = (pod.spec as { runtimeClassName?: unknown } | null)?.runtimeClassName;
  let exempt: AdmitPodResult['exempt'];
  if (ex.namespaces?.includes(options.namespace) === true) exempt = 'namespace';
  else if (options.username !== undefined && ex.usernames?.includes(options.username) === true)
    exempt = 'username';
  else if (typeof runtimeClass === 'string' && ex.runtimeClasses?.includes(runtimeClass) === true)
    exempt = 'runtimeClass';
  if (exempt !== undefined) {
    return { allowed: true, exempt, policy, enforceViolations: [], warnings: [] };
  }
  const isPod = (options.kind ?? 'Pod') === 'Pod';
  const enforce = isPod
    ? evaluatePodSecurity(policy.enforce, pod.metadata, pod.spec)
    : { allowed: true, violations: [] };
  const warn = evaluatePodSecurity(policy.warn, pod.metadata, pod.spec);
  const audit = evaluatePodSecurity(policy.audit, pod.metadata, pod.spec);
  const result: AdmitPodResult = {
    allowed: enforce.allowed,
    policy,
    enforceViolations: enforce.violations,
    warnings: warn.allowed ? [] : [wouldViolateMessage(policy.warn, warn.violations)],
    ...(enforce.allowed ? {} : { message: violationMessage(policy.enforce, enforce.violations) }),
    ...(audit.allowed
      ? {}
      : { auditViolations: wouldViolateMessage(policy.audit, audit.violations) }),
  };
  return result;
}
