/**
 * The Pod Security Standards checks, one function per upstream check version,
 * with Kubernetes' own reasons and details (k8s.io/pod-security-admission,
 * policy/check_*.go). Each check reads the raw pod metadata and spec (parsed
 * YAML/JSON), so fields Palisade does not model are still seen; an absent or
 * null field behaves like Go's nil.
 *
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/
 */

/** The outcome of one check: allowed, or a reason and detail as Kubernetes words them. */
export interface CheckResult {
  readonly allowed: boolean;
  readonly reason?: string;
  readonly detail?: string;
}

/** Raw pod metadata the checks read (annotations only). */
export interface PodMetadataView {
  readonly annotations: Readonly<Record<string, string>>;
}

/** A raw pod spec (`spec` of a Pod or a pod template). */
export type PodSpecView = Readonly<Record<string, unknown>>;

export type CheckFn = (meta: PodMetadataView, spec: PodSpecView) => CheckResult;

const ALLOWED: CheckResult = { allowed: true };

function forbid(reason: string, detail: string): CheckResult {
  return { allowed: false, reason, detail };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks a path of object keys; anything missing or not an object yields undefined. */
function get(value: unknown, ...path: string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

function str(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return '';
}

function nameOf(c: unknown): string {
  return str(get(c, 'name'));
}

/** visitContainers: initContainers, containers, then ephemeralContainers. */
function containers(spec: PodSpecView): Obj[] {
  return [
    ...arr(spec['initContainers']),
    ...arr(spec['containers']),
    ...arr(spec['ephemeralContainers']),
  ].filter(isObj);
}

function pluralize(singular: string, plural: string, n: number): string {
  return n === 1 ? singular : plural;
}

/** Go's joinQuote: `"a", "b"` (no escaping, as upstream). */
function joinQuote(items: readonly string[]): string {
  return items.length === 0 ? '' : `"${items.join('", "')}"`;
}

/** Go's sets.String.List(): unique and sorted bytewise. */
function sortedSet(items: Iterable<string>): string[] {
  return [...new Set(items)].sort(byteCompare);
}

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Go's %q for the plain strings annotations hold. */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

function containersPhrase(names: readonly string[]): string {
  return `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;
}

function setters(pod: readonly string[], bad: readonly string[]): string {
  const all = [...pod];
  if (bad.length > 0) all.push(containersPhrase(bad));
  return all.join(' and ');
}

function isWindowsPod(spec: PodSpecView): boolean {
  return get(spec, 'os', 'name') === 'windows';
}

/** KEP-127: pods with `hostUsers: false` run in a user namespace. */
function relaxForUserNamespace(spec: PodSpecView): boolean {
  return spec['hostUsers'] === false;
}

// --- baseline ---------------------------------------------------------------

export function privileged_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad = containers(spec)
    .filter((c) => get(c, 'securityContext', 'privileged') === true)
    .map(nameOf);
  if (bad.length === 0) return ALLOWED;
  return forbid(
    'privileged',
    `${containersPhrase(bad)} must not set securityContext.privileged=true`,
  );
}

export function hostNamespaces_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const found: string[] = [];
  if (spec['hostNetwork'] === true) found.push('hostNetwork=true');
  if (spec['hostPID'] === true) found.push('hostPID=true');
  if (spec['hostIPC'] === true) found.push('hostIPC=true');
  return found.length === 0 ? ALLOWED : forbid('host namespaces', found.join(', '));
}

export function hostPathVolumes_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad = arr(spec['volumes'])
    .filter((v) => isObj(v) && v['hostPath'] !== undefined && v['hostPath'] !== null)
    .map(nameOf);
  if (bad.length === 0) return ALLOWED;
  return forbid(
    'hostPath volumes',
    `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)}`,
  );
}

export function hostPorts_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad: string[] = [];
  const ports: string[] = [];
  for (const c of containers(spec)) {
    let uses = false;
    for (const p of arr(c['ports'])) {
      const hp = get(p, 'hostPort');
      if (typeof hp === 'number' && hp !== 0) {
        uses = true;
        ports.push(String(hp));
      }
    }
    if (uses) bad.push(nameOf(c));
  }
  if (bad.length === 0) return ALLOWED;
  const unique = sortedSet(ports);
  return forbid(
    'hostPort',
    `${containersPhrase(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', unique.length)} ${unique.join(', ')}`,
  );
}

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

function appArmorTypeOk(profile: unknown): boolean {
  const t = get(profile, 'type');
  return t === 'RuntimeDefault' || t === 'Localhost';
}

/** appArmorProfile: annotations (all versions) and, since 1.30 APIs, the appArmorProfile fields. */
export function appArmorProfile_1_0(meta: PodMetadataView, spec: PodSpecView): CheckResult {
  const badSetters: string[] = [];
  const badValues: string[] = [];
  const podProfile = get(spec, 'securityContext', 'appArmorProfile');
  if (isObj(podProfile) && !appArmorTypeOk(podProfile)) {
    badSetters.push('pod');
    badValues.push(str(podProfile['type']));
  }
  const bad: string[] = [];
  for (const c of containers(spec)) {
    const profile = get(c, 'securityContext', 'appArmorProfile');
    if (isObj(profile) && !appArmorTypeOk(profile)) {
      bad.push(nameOf(c));
      badValues.push(str(profile['type']));
    }
  }
  if (bad.length > 0) badSetters.push(containersPhrase(bad));
  const forbiddenAnnotations: string[] = [];
  for (const [k, v] of Object.entries(meta.annotations)) {
    if (!k.startsWith(APPARMOR_ANNOTATION_PREFIX)) continue;
    if (v === '' || v === 'runtime/default' || v.startsWith('localhost/')) continue;
    forbiddenAnnotations.push(`${k}=${goQuote(v)}`);
  }
  const values = sortedSet(badValues);
  if (forbiddenAnnotations.length > 0) {
    values.push(...forbiddenAnnotations.sort(byteCompare));
    badSetters.push(pluralize('annotation', 'annotations', forbiddenAnnotations.length));
  }
  if (badSetters.length === 0) return ALLOWED;
  return forbid(
    pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', values.length),
    `${badSetters.join(' and ')} must not set AppArmor profile type to ${joinQuote(values)}`,
  );
}

const CAPABILITIES_BASELINE = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

export function capabilitiesBaseline_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad: string[] = [];
  const forbidden: string[] = [];
  for (const c of containers(spec)) {
    const caps = get(c, 'securityContext', 'capabilities');
    if (!isObj(caps)) continue;
    const extra = arr(caps['add'])
      .map(str)
      .filter((cap) => !CAPABILITIES_BASELINE.has(cap));
    if (extra.length === 0) continue;
    forbidden.push(...extra);
    bad.push(nameOf(c));
  }
  if (bad.length === 0) return ALLOWED;
  return forbid(
    'non-default capabilities',
    `${containersPhrase(bad)} must not include ${joinQuote(sortedSet(forbidden))} in securityContext.capabilities.add`,
  );
}

const SELINUX_TYPES_1_0 = ['', 'container_t', 'container_init_t', 'container_kvm_t'];
const SELINUX_TYPES_1_31 = [...SELINUX_TYPES_1_0, 'container_engine_t'];

function seLinuxOptions(spec: PodSpecView, allowed: readonly string[]): CheckResult {
  const badTypes: string[] = [];
  const set = { user: false, role: false };
  const valid = (opts: Obj): boolean => {
    let ok = true;
    const type = str(opts['type']);
    if (!allowed.includes(type)) {
      ok = false;
      badTypes.push(type);
    }
    if (str(opts['user']) !== '') {
      ok = false;
      set.user = true;
    }
    if (str(opts['role']) !== '') {
      ok = false;
      set.role = true;
    }
    return ok;
  };
  const pod: string[] = [];
  const podOpts = get(spec, 'securityContext', 'seLinuxOptions');
  if (isObj(podOpts) && !valid(podOpts)) pod.push('pod');
  const bad: string[] = [];
  for (const c of containers(spec)) {
    const opts = get(c, 'securityContext', 'seLinuxOptions');
    if (isObj(opts) && !valid(opts)) bad.push(nameOf(c));
  }
  if (pod.length === 0 && bad.length === 0) return ALLOWED;
  const data: string[] = [];
  const types = sortedSet(badTypes);
  if (types.length > 0)
    data.push(`${pluralize('type', 'types', types.length)} ${joinQuote(types)}`);
  if (set.user) data.push('user may not be set');
  if (set.role) data.push('role may not be set');
  return forbid(
    'seLinuxOptions',
    `${setters(pod, bad)} set forbidden securityContext.seLinuxOptions: ${data.join('; ')}`,
  );
}

export const seLinuxOptions_1_0: CheckFn = (_m, spec) => seLinuxOptions(spec, SELINUX_TYPES_1_0);
export const seLinuxOptions_1_31: CheckFn = (_m, spec) => seLinuxOptions(spec, SELINUX_TYPES_1_31);

export function procMount_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad: string[] = [];
  const types: string[] = [];
  for (const c of containers(spec)) {
    const pm = get(c, 'securityContext', 'procMount');
    if (pm === undefined || pm === null || pm === 'Default') continue;
    bad.push(nameOf(c));
    types.push(str(pm));
  }
  if (bad.length === 0) return ALLOWED;
  return forbid(
    'procMount',
    `${containersPhrase(bad)} must not set securityContext.procMount to ${joinQuote(sortedSet(types))}`,
  );
}

/** Baseline from 1.35: Unmasked /proc is allowed in a user namespace (KEP-127). */
export const procMountBaseline_1_35: CheckFn = (m, spec) =>
  relaxForUserNamespace(spec) ? ALLOWED : procMount_1_0(m, spec);

const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION_PREFIX = 'container.seccomp.security.alpha.kubernetes.io/';

function validSeccompAnnotation(v: string): boolean {
  return v === 'runtime/default' || v === 'docker/default' || v.startsWith('localhost/');
}

function validSeccompType(t: unknown): boolean {
  return t === 'RuntimeDefault' || t === 'Localhost';
}

/** Before 1.19 seccomp was set by the alpha annotations. */
export function seccompProfileBaseline_1_0(meta: PodMetadataView, spec: PodSpecView): CheckResult {
  const forbidden: string[] = [];
  const podValue = meta.annotations[SECCOMP_POD_ANNOTATION];
  if (podValue !== undefined && !validSeccompAnnotation(podValue)) {
    forbidden.push(`${SECCOMP_POD_ANNOTATION}=${goQuote(podValue)}`);
  }
  for (const c of containers(spec)) {
    const key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + nameOf(c);
    const v = meta.annotations[key];
    if (v !== undefined && !validSeccompAnnotation(v)) forbidden.push(`${key}=${goQuote(v)}`);
  }
  if (forbidden.length === 0) return ALLOWED;
  const unique = sortedSet(forbidden);
  return forbid(
    'seccompProfile',
    `forbidden ${pluralize('annotation', 'annotations', unique.length)} ${unique.join(', ')}`,
  );
}

interface SeccompSetters {
  pod: string[];
  explicit: string[];
  implicit: string[];
  values: string[];
}

function seccompSetters(spec: PodSpecView): SeccompSetters {
  const out: SeccompSetters = { pod: [], explicit: [], implicit: [], values: [] };
  let podSet = false;
  const podProfile = get(spec, 'securityContext', 'seccompProfile');
  if (isObj(podProfile)) {
    if (validSeccompType(podProfile['type'])) podSet = true;
    else {
      out.pod.push('pod');
      out.values.push(str(podProfile['type']));
    }
  }
  for (const c of containers(spec)) {
    const profile = get(c, 'securityContext', 'seccompProfile');
    if (isObj(profile)) {
      if (!validSeccompType(profile['type'])) {
        out.explicit.push(nameOf(c));
        out.values.push(str(profile['type']));
      }
    } else if (!podSet) out.implicit.push(nameOf(c));
  }
  out.values = sortedSet(out.values);
  return out;
}

export function seccompProfileBaseline_1_19(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const s = seccompSetters(spec);
  if (s.pod.length === 0 && s.explicit.length === 0) return ALLOWED;
  return forbid(
    'seccompProfile',
    `${setters(s.pod, s.explicit)} must not set securityContext.seccompProfile.type to ${joinQuote(s.values)}`,
  );
}

const SYSCTLS_1_0 = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
];
const SYSCTLS_1_27 = [...SYSCTLS_1_0, 'net.ipv4.ip_local_reserved_ports'];
const SYSCTLS_1_29 = [
  ...SYSCTLS_1_27,
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
];
const SYSCTLS_1_32 = [...SYSCTLS_1_29, 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'];
// v1.37 (pod-security-admission policy/check_sysctls.go, sysctlsAllowedV1Dot37).
const SYSCTLS_1_37 = [
  ...SYSCTLS_1_32,
  'net.ipv4.tcp_slow_start_after_idle',
  'net.ipv4.tcp_notsent_lowat',
];

function sysctls(spec: PodSpecView, allowed: readonly string[]): CheckResult {
  const forbidden = arr(get(spec, 'securityContext', 'sysctls'))
    .map((s) => str(get(s, 'name')))
    .filter((n) => !allowed.includes(n));
  return forbidden.length === 0 ? ALLOWED : forbid('forbidden sysctls', forbidden.join(', '));
}

export const sysctls_1_0: CheckFn = (_m, spec) => sysctls(spec, SYSCTLS_1_0);
export const sysctls_1_27: CheckFn = (_m, spec) => sysctls(spec, SYSCTLS_1_27);
export const sysctls_1_29: CheckFn = (_m, spec) => sysctls(spec, SYSCTLS_1_29);
export const sysctls_1_32: CheckFn = (_m, spec) => sysctls(spec, SYSCTLS_1_32);
export const sysctls_1_37: CheckFn = (_m, spec) => sysctls(spec, SYSCTLS_1_37);

export function windowsHostProcess_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad = containers(spec)
    .filter((c) => get(c, 'securityContext', 'windowsOptions', 'hostProcess') === true)
    .map(nameOf);
  const pod = get(spec, 'securityContext', 'windowsOptions', 'hostProcess') === true ? ['pod'] : [];
  if (bad.length === 0 && pod.length === 0) return ALLOWED;
  return forbid(
    'hostProcess',
    `${setters(pod, bad)} must not set securityContext.windowsOptions.hostProcess=true`,
  );
}

function forbiddenHosts(handler: unknown): string[] {
  const out: string[] = [];
  const h1 = str(get(handler, 'httpGet', 'host'));
  if (h1 !== '') out.push(h1);
  const h2 = str(get(handler, 'tcpSocket', 'host'));
  if (h2 !== '') out.push(h2);
  return out;
}

export function hostProbesAndHostLifecycle_1_34(
  _m: PodMetadataView,
  spec: PodSpecView,
): CheckResult {
  const bad = new Set<string>();
  const hosts: string[] = [];
  for (const c of containers(spec)) {
    const found = [
      ...forbiddenHosts(c['livenessProbe']),
      ...forbiddenHosts(c['readinessProbe']),
      ...forbiddenHosts(c['startupProbe']),
      ...forbiddenHosts(get(c, 'lifecycle', 'postStart')),
      ...forbiddenHosts(get(c, 'lifecycle', 'preStop')),
    ];
    if (found.length === 0) continue;
    bad.add(nameOf(c));
    hosts.push(...found);
  }
  if (bad.size === 0) return ALLOWED;
  const names = sortedSet(bad);
  const unique = sortedSet(hosts);
  return forbid(
    'probe or lifecycle host',
    `${containersPhrase(names)} ${pluralize('uses', 'use', names.length)} ${pluralize('probe or lifecycle host', 'probe or lifecycle hosts', unique.length)} ${joinQuote(unique)}`,
  );
}

// --- restricted -------------------------------------------------------------

export function allowPrivilegeEscalation_1_8(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad = containers(spec)
    .filter((c) => get(c, 'securityContext', 'allowPrivilegeEscalation') !== false)
    .map(nameOf);
  if (bad.length === 0) return ALLOWED;
  return forbid(
    'allowPrivilegeEscalation != false',
    `${containersPhrase(bad)} must set securityContext.allowPrivilegeEscalation=false`,
  );
}

/** From 1.25 Windows pods (spec.os.name=windows) are exempt from Linux-only checks. */
function notOnWindows(fn: CheckFn): CheckFn {
  return (m, spec) => (isWindowsPod(spec) ? ALLOWED : fn(m, spec));
}

export const allowPrivilegeEscalation_1_25 = notOnWindows(allowPrivilegeEscalation_1_8);

export function capabilitiesRestricted_1_22(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const missingDrop: string[] = [];
  const adding: string[] = [];
  const forbidden: string[] = [];
  for (const c of containers(spec)) {
    const caps = get(c, 'securityContext', 'capabilities');
    if (!isObj(caps)) {
      missingDrop.push(nameOf(c));
      continue;
    }
    if (!arr(caps['drop']).includes('ALL')) missingDrop.push(nameOf(c));
    const extra = arr(caps['add'])
      .map(str)
      .filter((cap) => cap !== 'NET_BIND_SERVICE');
    if (extra.length > 0) {
      adding.push(nameOf(c));
      forbidden.push(...extra);
    }
  }
  const details: string[] = [];
  if (missingDrop.length > 0) {
    details.push(
      `${containersPhrase(missingDrop)} must set securityContext.capabilities.drop=["ALL"]`,
    );
  }
  if (adding.length > 0) {
    details.push(
      `${containersPhrase(adding)} must not include ${joinQuote(sortedSet(forbidden))} in securityContext.capabilities.add`,
    );
  }
  return details.length === 0 ? ALLOWED : forbid('unrestricted capabilities', details.join('; '));
}

export const capabilitiesRestricted_1_25 = notOnWindows(capabilitiesRestricted_1_22);

const ALLOWED_VOLUME_SOURCES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
];
const RESTRICTED_VOLUME_TYPES = [
  'hostPath',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'gitRepo',
  'nfs',
  'iscsi',
  'glusterfs',
  'rbd',
  'flexVolume',
  'cinder',
  'cephfs',
  'flocker',
  'fc',
  'azureFile',
  'vsphereVolume',
  'quobyte',
  'azureDisk',
  'photonPersistentDisk',
  'portworxVolume',
  'scaleIO',
  'storageos',
];

function present(o: Obj, key: string): boolean {
  return o[key] !== undefined && o[key] !== null;
}

export function restrictedVolumes_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const bad: string[] = [];
  const types: string[] = [];
  for (const v of arr(spec['volumes'])) {
    if (!isObj(v)) continue;
    if (ALLOWED_VOLUME_SOURCES.some((s) => present(v, s))) continue;
    // A volume without any source is defaulted to emptyDir by the API server
    // (SetDefaults_Volume), so it is allowed.
    if (Object.keys(v).every((k) => k === 'name' || !present(v, k))) continue;
    bad.push(nameOf(v));
    types.push(RESTRICTED_VOLUME_TYPES.find((t) => present(v, t)) ?? 'unknown');
  }
  if (bad.length === 0) return ALLOWED;
  const unique = sortedSet(types);
  return forbid(
    'restricted volume types',
    `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('restricted volume type', 'restricted volume types', unique.length)} ${joinQuote(unique)}`,
  );
}

export function runAsNonRoot_1_0(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const pod: string[] = [];
  let podNonRoot = false;
  const podValue = get(spec, 'securityContext', 'runAsNonRoot');
  if (podValue === false) pod.push('pod');
  else if (podValue === true) podNonRoot = true;
  const explicit: string[] = [];
  const implicit: string[] = [];
  for (const c of containers(spec)) {
    const own = get(c, 'securityContext', 'runAsNonRoot');
    if (typeof own === 'boolean') {
      if (!own) explicit.push(nameOf(c));
    } else if (!podNonRoot) implicit.push(nameOf(c));
  }
  if (pod.length > 0 || explicit.length > 0) {
    return forbid(
      'runAsNonRoot != true',
      `${setters(pod, explicit)} must not set securityContext.runAsNonRoot=false`,
    );
  }
  if (implicit.length === 0) return ALLOWED;
  return forbid(
    'runAsNonRoot != true',
    `pod or ${containersPhrase(implicit)} must set securityContext.runAsNonRoot=true`,
  );
}

export const runAsNonRoot_1_35: CheckFn = (m, spec) =>
  relaxForUserNamespace(spec) ? ALLOWED : runAsNonRoot_1_0(m, spec);

export function runAsUser_1_23(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const pod = get(spec, 'securityContext', 'runAsUser') === 0 ? ['pod'] : [];
  const bad = containers(spec)
    .filter((c) => get(c, 'securityContext', 'runAsUser') === 0)
    .map(nameOf);
  if (pod.length === 0 && bad.length === 0) return ALLOWED;
  return forbid('runAsUser=0', `${setters(pod, bad)} must not set runAsUser=0`);
}

export const runAsUser_1_35: CheckFn = (m, spec) =>
  relaxForUserNamespace(spec) ? ALLOWED : runAsUser_1_23(m, spec);

export function seccompProfileRestricted_1_19(_m: PodMetadataView, spec: PodSpecView): CheckResult {
  const s = seccompSetters(spec);
  if (s.pod.length > 0 || s.explicit.length > 0) {
    return forbid(
      'seccompProfile',
      `${setters(s.pod, s.explicit)} must not set securityContext.seccompProfile.type to ${joinQuote(s.values)}`,
    );
  }
  if (s.implicit.length === 0) return ALLOWED;
  return forbid(
    'seccompProfile',
    `pod or ${containersPhrase(s.implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
  );
}

export const seccompProfileRestricted_1_25 = notOnWindows(seccompProfileRestricted_1_19);
