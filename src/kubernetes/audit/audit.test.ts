// The audit rules one by one: each finding appears for the risky object and
// not for its safe twin; SARIF and --fail-on helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Manifest } from '../../api/index.js';
import { clusterObjectsFrom } from '../cluster-objects.js';
import { auditCluster, hasFindingAtOrAbove, toSarif, type Finding } from './audit.js';
import { manifestStartLines } from './locations.js';

const RBAC = 'rbac.authorization.k8s.io/v1';

function audit(objects: unknown[]): Finding[] {
  const manifests: Manifest[] = objects.map((object, index) => ({ file: 'm.yaml', index, object }));
  return auditCluster(clusterObjectsFrom(manifests));
}
const ids = (fs: Finding[]): string[] => [...new Set(fs.map((f) => f.ruleId))].sort();
const clusterRole = (name: string, rules: unknown[]) => ({
  apiVersion: RBAC,
  kind: 'ClusterRole',
  metadata: { name },
  rules,
});

test('risky RBAC: wildcards, secrets, escalation verbs, exec', () => {
  const fs = audit([
    clusterRole('wild', [{ apiGroups: ['*'], resources: ['deployments'], verbs: ['get'] }]),
    clusterRole('reader', [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }]),
    clusterRole('binder', [
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        verbs: ['bind', 'escalate'],
      },
    ]),
    clusterRole('impersonator', [
      { apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] },
    ]),
    clusterRole('shell', [{ apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] }]),
    clusterRole('safe', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]),
    clusterRole('system:bootstrap-thing', [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }]),
  ]);
  const by = (role: string) => ids(fs.filter((f) => f.object === `ClusterRole ${role}`));
  assert.deepEqual(by('wild'), ['PAL-K8S-RBAC-002']);
  assert.deepEqual(by('reader'), ['PAL-K8S-RBAC-003']);
  assert.deepEqual(by('binder'), ['PAL-K8S-RBAC-004']);
  assert.deepEqual(by('impersonator'), ['PAL-K8S-RBAC-004']);
  assert.deepEqual(by('shell'), ['PAL-K8S-RBAC-005']);
  assert.deepEqual(by('safe'), []);
  assert.deepEqual(by('system:bootstrap-thing'), []);
  const escalate = fs.find((f) => f.object === 'ClusterRole binder');
  assert.equal(escalate?.message, 'rules[0] allows escalate, bind');
});

test('cluster-admin bindings, except to system:masters', () => {
  const crb = (name: string, subjects: unknown[], role = 'cluster-admin') => ({
    apiVersion: RBAC,
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects,
  });
  const fs = audit([
    clusterRole('god', [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }]),
    crb('masters', [
      { kind: 'Group', name: 'system:masters', apiGroup: 'rbac.authorization.k8s.io' },
    ]),
    crb('dev-admin', [{ kind: 'User', name: 'dev', apiGroup: 'rbac.authorization.k8s.io' }]),
    crb('god-sa', [{ kind: 'ServiceAccount', name: 'x', namespace: 'y' }], 'god'),
  ]);
  const admin = fs.filter((f) => f.ruleId === 'PAL-K8S-RBAC-001').map((f) => f.object);
  assert.deepEqual(admin.sort(), ['ClusterRoleBinding dev-admin', 'ClusterRoleBinding god-sa']);
  assert.equal(fs[0]?.severity, 'critical');
});

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const pod = (
  name: string,
  namespace: string,
  spec: Record<string, unknown> = {},
  labels: Record<string, string> = { app: name },
) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels },
  spec: { containers: [{ name: 'c', image: 'i' }], ...spec },
});

test('Pod Security: enforce violations, baseline failures in unlabelled namespaces, missing labels', () => {
  const fs = audit([
    ns('strict', { 'pod-security.kubernetes.io/enforce': 'restricted' }),
    ns('open'),
    pod('bare', 'strict'),
    pod('hostnet', 'open', { hostNetwork: true }),
    pod('fine', 'open'),
    {
      ...pod('owned', 'open', { hostPID: true }),
      metadata: {
        name: 'owned',
        namespace: 'open',
        ownerReferences: [{ kind: 'ReplicaSet', name: 'rs' }],
      },
    },
  ]);
  const pss1 = fs.filter((f) => f.ruleId === 'PAL-K8S-PSS-001');
  assert.deepEqual(
    pss1.map((f) => f.object),
    ['Pod strict/bare'],
  );
  assert.match(
    pss1[0]?.message ?? '',
    /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/,
  );
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-K8S-PSS-002').map((f) => f.object),
    ['Pod open/hostnet'],
  );
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-K8S-PSS-003').map((f) => f.object),
    ['Namespace open'],
  );
});

test('NetworkPolicy coverage: namespaces without policies, pods no policy selects', () => {
  const fs = audit([
    ns('a'),
    ns('b'),
    pod('web', 'a'),
    pod('db', 'b'),
    pod('cache', 'b'),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'db-only', namespace: 'b' },
      spec: { podSelector: { matchLabels: { app: 'db' } } },
    },
  ]);
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-K8S-NETPOL-001').map((f) => f.object),
    ['Namespace a'],
  );
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-K8S-NETPOL-002').map((f) => f.object),
    ['Pod b/cache'],
  );
});

const pa = (name: string, namespace: string, mode: string, selector?: Record<string, string>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace },
  spec: {
    mtls: { mode },
    ...(selector === undefined ? {} : { selector: { matchLabels: selector } }),
  },
});
const authz = (name: string, namespace: string, spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace },
  spec,
});

test('mesh gaps: permissive mTLS, missing STRICT, workloads without policy, ALLOW without from', () => {
  const fs = audit([
    ns('shop', { 'istio-injection': 'enabled' }),
    pod('web', 'shop'),
    pod('api', 'shop'),
    pa('legacy', 'shop', 'PERMISSIVE', { app: 'web' }),
    authz('web-allow', 'shop', {
      selector: { matchLabels: { app: 'web' } },
      rules: [
        { from: [{ source: { principals: ['cluster.local/ns/shop/sa/gw'] } }] },
        { to: [{ operation: { methods: ['GET'] } }] },
      ],
    }),
  ]);
  assert.deepEqual(ids(fs.filter((f) => f.ruleId.startsWith('PAL-MESH'))), [
    'PAL-MESH-001',
    'PAL-MESH-002',
    'PAL-MESH-003',
    'PAL-MESH-004',
  ]);
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-MESH-003').map((f) => f.object),
    ['Pod shop/api'],
  );
  assert.deepEqual(
    fs.filter((f) => f.ruleId === 'PAL-MESH-004').map((f) => f.message),
    ['rules[1] has no from: it allows requests from any source'],
  );

  // A mesh-wide STRICT policy in the root namespace and a namespace-wide
  // AuthorizationPolicy close those gaps.
  const closed = audit([
    ns('shop', { 'istio-injection': 'enabled' }),
    pod('web', 'shop'),
    pa('default', 'istio-system', 'STRICT'),
    authz('deny-nothing', 'shop', {
      action: 'DENY',
      rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }],
    }),
  ]);
  assert.deepEqual(ids(closed.filter((f) => f.ruleId.startsWith('PAL-MESH'))), []);
});

test('no mesh objects, no mesh findings; SARIF and thresholds', () => {
  const fs = audit([ns('plain'), pod('web', 'plain')]);
  assert.deepEqual(ids(fs.filter((f) => f.ruleId.startsWith('PAL-MESH'))), []);
  assert.equal(hasFindingAtOrAbove(fs, 'medium'), true);
  assert.equal(hasFindingAtOrAbove(fs, 'high'), false);
  const log = toSarif(fs, '1.2.3') as {
    version: string;
    runs: { tool: { driver: { version: string } }; results: unknown[] }[];
  };
  assert.equal(log.version, '2.1.0');
  const [run] = log.runs;
  assert.ok(run !== undefined);
  assert.equal(run.tool.driver.version, '1.2.3');
  assert.equal(run.results.length, fs.length);
});

test('manifest start lines follow parseManifests: empty documents skipped, List items counted', () => {
  const text = [
    '---',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: a}',
    '---',
    '---',
    '# a comment',
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',
    '  kind: Namespace',
    '  metadata: {name: b}',
    '- apiVersion: v1',
    '  kind: Namespace',
    '  metadata: {name: c}',
    '',
  ].join('\n');
  assert.deepEqual(manifestStartLines(text), [2, 11, 14]);
  assert.deepEqual(manifestStartLines('[{"kind": "A"},\n {"kind": "B"}]'), [1, 2]);
});
