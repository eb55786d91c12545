// Pod Security Standards: exact messages (as in upstream's check tests),
// versions after the fixtures end (v1.26+), namespace labels, exemptions and
// pod templates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  admitPod,
  evaluatePodSecurity,
  LATEST_CHECK_MINOR,
  namespacePolicy,
  parseVersion,
  podTemplateOf,
  type LevelVersion,
} from './index.js';

const restricted: LevelVersion = { level: 'restricted', version: 'latest' };
const baseline: LevelVersion = { level: 'baseline', version: 'latest' };
const v = (level: 'baseline' | 'restricted', minor: number): LevelVersion => ({
  level,
  version: { minor },
});

const goodContainer = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  image: 'x',
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...extra },
});
const goodSpec = (extra: Record<string, unknown> = {}) => ({
  containers: [goodContainer('c')],
  securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  ...extra,
});

function messages(lv: LevelVersion, spec: unknown, metadata: unknown = {}): string[] {
  return evaluatePodSecurity(lv, metadata, spec).violations.map((x) => `${x.check}: ${x.message}`);
}

test('a bare pod at restricted:latest gets Kubernetes messages in check order', () => {
  assert.deepEqual(messages(restricted, { containers: [{ name: 'c', image: 'x' }] }), [
    'allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)',
    'capabilities_restricted: unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"])',
    'runAsNonRoot: runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)',
    'seccompProfile_restricted: seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
  ]);
});

test('baseline messages name containers, values and fields', () => {
  const spec = {
    hostNetwork: true,
    hostPID: true,
    initContainers: [{ name: 'init', securityContext: { privileged: true } }],
    containers: [
      {
        name: 'a',
        ports: [
          { containerPort: 80, hostPort: 8080 },
          { containerPort: 81, hostPort: 443 },
        ],
        securityContext: {
          capabilities: { add: ['NET_ADMIN', 'CHOWN', 'SYS_TIME'] },
          procMount: 'Unmasked',
        },
      },
      {
        name: 'b',
        securityContext: { privileged: true, seLinuxOptions: { type: 'spc_t', user: 'root' } },
      },
    ],
    volumes: [{ name: 'h', hostPath: { path: '/' } }],
    securityContext: {
      sysctls: [
        { name: 'kernel.msgmax', value: '1' },
        { name: 'net.ipv4.tcp_syncookies', value: '0' },
      ],
      seccompProfile: { type: 'Unconfined' },
    },
  };
  assert.deepEqual(
    messages(baseline, spec, {
      annotations: { 'container.apparmor.security.beta.kubernetes.io/a': 'unconfined' },
    }),
    [
      'appArmorProfile: forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/a="unconfined"")',
      'capabilities_baseline: non-default capabilities (container "a" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add)',
      'hostNamespaces: host namespaces (hostNetwork=true, hostPID=true)',
      'hostPathVolumes: hostPath volumes (volume "h")',
      'hostPorts: hostPort (container "a" uses hostPorts 443, 8080)',
      'privileged: privileged (containers "init", "b" must not set securityContext.privileged=true)',
      'procMount: procMount (container "a" must not set securityContext.procMount to "Unmasked")',
      'seLinuxOptions: seLinuxOptions (container "b" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)',
      'seccompProfile_baseline: seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
      'sysctls: forbidden sysctls (kernel.msgmax)',
    ],
  );
});

test('restricted-only messages: volumes, runAsUser, explicit runAsNonRoot=false, windows hostProcess', () => {
  const spec = goodSpec({
    containers: [goodContainer('c', { runAsUser: 0, runAsNonRoot: false })],
    volumes: [
      { name: 'n', nfs: { server: 's', path: '/' } },
      { name: 'g', gitRepo: { repository: 'r' } },
      { name: 'e', emptyDir: {} },
    ],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 0,
      seccompProfile: { type: 'RuntimeDefault' },
      windowsOptions: { hostProcess: true },
    },
  });
  assert.deepEqual(messages(restricted, spec), [
    'windowsHostProcess: hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)',
    'restrictedVolumes: restricted volume types (volumes "n", "g" use restricted volume types "gitRepo", "nfs")',
    'runAsNonRoot: runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)',
    'runAsUser: runAsUser=0 (pod and container "c" must not set runAsUser=0)',
  ]);
});

test('versions: checks appear when Kubernetes added them', () => {
  const bare = { containers: [{ name: 'c' }] };
  // allowPrivilegeEscalation since 1.8, capabilities_restricted since 1.22, seccomp restricted since 1.19.
  const ids = (lv: LevelVersion) =>
    evaluatePodSecurity(lv, {}, bare).violations.map((x) => x.check);
  assert.deepEqual(ids(v('restricted', 7)), ['runAsNonRoot']);
  assert.deepEqual(ids(v('restricted', 8)), ['allowPrivilegeEscalation', 'runAsNonRoot']);
  assert.deepEqual(ids(v('restricted', 19)), [
    'allowPrivilegeEscalation',
    'runAsNonRoot',
    'seccompProfile_restricted',
  ]);
  assert.deepEqual(ids(v('restricted', 22)), [
    'allowPrivilegeEscalation',
    'capabilities_restricted',
    'runAsNonRoot',
    'seccompProfile_restricted',
  ]);
  // runAsUser since 1.23.
  const root = goodSpec({
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 0,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  });
  assert.equal(evaluatePodSecurity(v('restricted', 22), {}, root).allowed, true);
  assert.equal(evaluatePodSecurity(v('restricted', 23), {}, root).allowed, false);
});

test('versions after v1.25: sysctls allowed list grows (1.27, 1.29, 1.32)', () => {
  const withSysctl = (name: string) => ({
    containers: [{ name: 'c' }],
    securityContext: { sysctls: [{ name, value: '1' }] },
  });
  const allowed = (name: string, minor: number | 'latest') =>
    evaluatePodSecurity(
      { level: 'baseline', version: minor === 'latest' ? 'latest' : { minor } },
      {},
      withSysctl(name),
    ).allowed;
  assert.equal(allowed('net.ipv4.ip_local_reserved_ports', 26), false);
  assert.equal(allowed('net.ipv4.ip_local_reserved_ports', 27), true);
  assert.equal(allowed('net.ipv4.tcp_keepalive_time', 28), false);
  assert.equal(allowed('net.ipv4.tcp_keepalive_time', 29), true);
  assert.equal(allowed('net.ipv4.tcp_rmem', 31), false);
  assert.equal(allowed('net.ipv4.tcp_rmem', 32), true);
  assert.equal(allowed('net.ipv4.tcp_rmem', 'latest'), true);
  assert.equal(allowed('kernel.msgmax', 'latest'), false);
});

// pod-security-admission policy/check_sysctls.go: v1.37 adds
// net.ipv4.tcp_slow_start_after_idle and net.ipv4.tcp_notsent_lowat
// (check_sysctls_test.go "new supported sysctls: ..."; the v1.37 testdata
// pass/sysctls1 pod sets both, fail/sysctls0 sets "othersysctl").
test('v1.37: the baseline sysctls list grows; latest means v1.37', () => {
  const pod = (sysctls: { name: string; value: string }[]) => ({
    containers: [{ name: 'container1', image: 'registry.k8s.io/pause' }],
    initContainers: [{ name: 'initcontainer1', image: 'registry.k8s.io/pause' }],
    securityContext: { sysctls },
  });
  const both = pod([
    { name: 'net.ipv4.tcp_slow_start_after_idle', value: '0' },
    { name: 'net.ipv4.tcp_notsent_lowat', value: '16384' },
  ]);
  const at = (minor: number | 'latest', spec: unknown) =>
    evaluatePodSecurity(
      { level: 'baseline', version: minor === 'latest' ? 'latest' : { minor } },
      {},
      spec,
    );
  assert.equal(LATEST_CHECK_MINOR, 37);
  for (const minor of [37, 38, 'latest'] as const) {
    assert.equal(at(minor, both).allowed, true, `v1.${String(minor)}`);
    assert.equal(at(minor, pod([{ name: 'othersysctl', value: 'other' }])).allowed, false);
  }
  const old = at(36, both);
  assert.equal(old.allowed, false);
  assert.deepEqual(
    old.violations.map((v) => `${v.reason} (${v.detail})`),
    ['forbidden sysctls (net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat)'],
  );
  // restricted inherits the baseline list.
  assert.equal(
    evaluatePodSecurity({ level: 'restricted', version: { minor: 37 } }, {}, both).violations.some(
      (v) => v.check === 'sysctls',
    ),
    false,
  );
});

test('versions after v1.25: SELinux container_engine_t (1.31), probe hosts (1.34), user namespaces (1.35)', () => {
  const engine = {
    containers: [
      { name: 'c', securityContext: { seLinuxOptions: { type: 'container_engine_t' } } },
    ],
  };
  assert.equal(evaluatePodSecurity(v('baseline', 30), {}, engine).allowed, false);
  assert.equal(evaluatePodSecurity(v('baseline', 31), {}, engine).allowed, true);

  const probe = {
    containers: [
      {
        name: 'c',
        livenessProbe: { httpGet: { host: '10.0.0.1', port: 80 } },
        lifecycle: { preStop: { tcpSocket: { host: 'evil', port: 1 } } },
      },
    ],
  };
  assert.equal(evaluatePodSecurity(v('baseline', 33), {}, probe).allowed, true);
  assert.deepEqual(messages(v('baseline', 34), probe), [
    'hostProbesAndHostLifecycle: probe or lifecycle host (container "c" uses probe or lifecycle hosts "10.0.0.1", "evil")',
  ]);

  const userns = goodSpec({
    hostUsers: false,
    containers: [goodContainer('c', { procMount: 'Unmasked', runAsUser: 0 })],
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
  });
  assert.deepEqual(
    evaluatePodSecurity(v('restricted', 34), {}, userns).violations.map((x) => x.check),
    ['procMount', 'runAsNonRoot', 'runAsUser'],
  );
  // From 1.35 runAsNonRoot/runAsUser are relaxed in a user namespace; restricted keeps procMount.
  assert.deepEqual(
    evaluatePodSecurity(v('restricted', 35), {}, userns).violations.map((x) => x.check),
    ['procMount_restricted'],
  );
  assert.equal(evaluatePodSecurity(v('baseline', 35), {}, userns).allowed, true);
});

test('Windows pods (spec.os.name=windows) skip Linux-only restricted checks from 1.25', () => {
  const win = {
    os: { name: 'windows' },
    containers: [{ name: 'c' }],
    securityContext: { runAsNonRoot: true },
  };
  assert.equal(evaluatePodSecurity(v('restricted', 25), {}, win).allowed, true);
  assert.equal(evaluatePodSecurity(v('restricted', 24), {}, win).allowed, false);
});

test('AppArmor fields (appArmorProfile.type) are checked', () => {
  const spec = {
    containers: [{ name: 'c', securityContext: { appArmorProfile: { type: 'Unconfined' } } }],
    securityContext: { appArmorProfile: { type: 'Localhost', localhostProfile: 'p' } },
  };
  assert.deepEqual(messages(baseline, spec), [
    'appArmorProfile: forbidden AppArmor profile (container "c" must not set AppArmor profile type to "Unconfined")',
  ]);
});

test('seccomp annotations before 1.19', () => {
  const meta = {
    annotations: {
      'seccomp.security.alpha.kubernetes.io/pod': 'unconfined',
      'container.seccomp.security.alpha.kubernetes.io/c': 'runtime/default',
    },
  };
  assert.deepEqual(messages(v('baseline', 18), { containers: [{ name: 'c' }] }, meta), [
    'seccompProfile_baseline: seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")',
  ]);
  assert.equal(
    evaluatePodSecurity(v('baseline', 19), meta, { containers: [{ name: 'c' }] }).allowed,
    true,
  );
});

test('parseVersion accepts latest and v1.N only', () => {
  assert.deepEqual(parseVersion('v1.30'), { minor: 30 });
  assert.equal(parseVersion('latest'), 'latest');
  for (const bad of ['1.30', 'v2.0', 'v1.030', 'v1.', 'v1.x', ''])
    assert.equal(parseVersion(bad), undefined, bad);
});

test('namespace labels select enforce/audit/warn with versions; warn follows enforce', () => {
  const p = namespacePolicy({
    'pod-security.kubernetes.io/enforce': 'baseline',
    'pod-security.kubernetes.io/enforce-version': 'v1.24',
    'pod-security.kubernetes.io/audit': 'restricted',
  });
  assert.deepEqual(p.enforce, { level: 'baseline', version: { minor: 24 } });
  assert.deepEqual(p.audit, { level: 'restricted', version: 'latest' });
  assert.deepEqual(p.warn, { level: 'baseline', version: { minor: 24 } });
  assert.deepEqual(p.errors, []);
  const bad = namespacePolicy({
    'pod-security.kubernetes.io/enforce': 'strict',
    'pod-security.kubernetes.io/enforce-version': '1.2',
  });
  // An invalid enforce level fails closed to restricted; a bad version means latest.
  assert.deepEqual(bad.enforce, { level: 'restricted', version: 'latest' });
  assert.equal(bad.errors.length, 2);
  assert.deepEqual(namespacePolicy({}).enforce, { level: 'privileged', version: 'latest' });
});

test('admission: enforce denies with the Kubernetes message, warn and audit report', () => {
  const pod = {
    metadata: {},
    spec: { containers: [{ name: 'c', securityContext: { privileged: true } }] },
    path: '',
  };
  const r = admitPod(pod, {
    namespace: 'apps',
    namespaceLabels: {
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/audit': 'restricted',
      'pod-security.kubernetes.io/audit-version': 'v1.25',
    },
  });
  assert.equal(r.allowed, false);
  assert.equal(
    r.message,
    'violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)',
  );
  assert.deepEqual(r.warnings, [
    'would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)',
  ]);
  assert.match(
    r.auditViolations ?? '',
    /^would violate PodSecurity "restricted:v1.25": privileged \(container "c" must not set securityContext.privileged=true\), allowPrivilegeEscalation != false/,
  );
});

test('admission: workload kinds are warned about, never denied (Kubernetes enforces on Pods)', () => {
  const tmpl = {
    metadata: {},
    spec: { containers: [{ name: 'c', securityContext: { privileged: true } }] },
    path: 'spec.template',
  };
  const r = admitPod(tmpl, {
    namespace: 'a',
    namespaceLabels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
    kind: 'Deployment',
  });
  assert.equal(r.allowed, true);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0] ?? '', /^would violate PodSecurity "baseline:latest": privileged/);
});

test('admission: exemptions by namespace, username and runtimeClass', () => {
  const pod = {
    metadata: {},
    spec: {
      runtimeClassName: 'kata',
      containers: [{ name: 'c', securityContext: { privileged: true } }],
    },
    path: '',
  };
  const labels = { 'pod-security.kubernetes.io/enforce': 'restricted' };
  assert.equal(admitPod(pod, { namespace: 'a', namespaceLabels: labels }).allowed, false);
  assert.equal(
    admitPod(pod, {
      namespace: 'kube-system',
      namespaceLabels: labels,
      exemptions: { namespaces: ['kube-system'] },
    }).exempt,
    'namespace',
  );
  assert.equal(
    admitPod(pod, {
      namespace: 'a',
      namespaceLabels: labels,
      username: 'admin',
      exemptions: { usernames: ['admin'] },
    }).exempt,
    'username',
  );
  const rc = admitPod(pod, {
    namespace: 'a',
    namespaceLabels: labels,
    exemptions: { runtimeClasses: ['kata'] },
  });
  assert.equal(rc.allowed, true);
  assert.equal(rc.exempt, 'runtimeClass');
});

test('pod templates are found in every workload kind', () => {
  const template = { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c' }] } };
  for (const kind of [
    'Deployment',
    'StatefulSet',
    'DaemonSet',
    'Job',
    'ReplicaSet',
    'ReplicationController',
  ]) {
    assert.equal(podTemplateOf({ kind, spec: { template } })?.path, 'spec.template', kind);
  }
  assert.equal(
    podTemplateOf({ kind: 'CronJob', spec: { jobTemplate: { spec: { template } } } })?.path,
    'spec.jobTemplate.spec.template',
  );
  assert.equal(podTemplateOf({ kind: 'Pod', spec: template.spec })?.path, '');
  assert.equal(podTemplateOf({ kind: 'Service', spec: {} }), undefined);
});
