// Table-driven tests of the RBAC authorizer against Kubernetes' documented
// semantics (https://kubernetes.io/docs/reference/access-authn-authz/rbac/)
// and its reason strings, plus who-can, aggregation and escalation checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  authenticatedUser,
  createRbacAuthorizer,
  roleCovers,
  ruleAllows,
  subjectAppliesTo,
  type PolicyRule,
  type RbacBinding,
  type RbacRole,
  type RequestAttributes,
} from '../index.js';

const roles: RbacRole[] = [
  {
    kind: 'ClusterRole',
    name: 'pod-reader',
    rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'log-reader',
    rules: [{ verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'any-status',
    rules: [{ verbs: ['get'], apiGroups: ['*'], resources: ['*/status'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'all-verbs-deploy',
    rules: [{ verbs: ['*'], apiGroups: ['apps'], resources: ['deployments'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'one-cm',
    rules: [
      {
        verbs: ['get', 'update'],
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['app-config'],
      },
    ],
  },
  {
    kind: 'ClusterRole',
    name: 'health',
    rules: [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/healthz/*', '/metrics'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'secret-admin',
    rules: [{ verbs: ['*'], apiGroups: [''], resources: ['secrets'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'monitoring',
    labels: {},
    aggregationRule: {
      clusterRoleSelectors: [
        { matchLabels: { 'rbac.example.com/aggregate-to-monitoring': 'true' } },
      ],
    },
    rules: [],
  },
  {
    kind: 'ClusterRole',
    name: 'monitoring-endpoints',
    labels: { 'rbac.example.com/aggregate-to-monitoring': 'true' },
    rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['endpoints', 'services'] }],
  },
  {
    kind: 'ClusterRole',
    name: 'monitoring-pods',
    labels: { 'rbac.example.com/aggregate-to-monitoring': 'true' },
    rules: [{ verbs: ['list'], apiGroups: [''], resources: ['pods'] }],
  },
  {
    kind: 'Role',
    name: 'cm-editor',
    namespace: 'team-a',
    rules: [{ verbs: ['create', 'delete'], apiGroups: [''], resources: ['configmaps'] }],
  },
];

const bindings: RbacBinding[] = [
  {
    kind: 'ClusterRoleBinding',
    name: 'readers',
    roleRef: { kind: 'ClusterRole', name: 'pod-reader' },
    subjects: [
      { kind: 'User', name: 'alice' },
      { kind: 'Group', name: 'auditors' },
    ],
  },
  {
    kind: 'ClusterRoleBinding',
    name: 'healthz',
    roleRef: { kind: 'ClusterRole', name: 'health' },
    subjects: [{ kind: 'Group', name: 'system:authenticated' }],
  },
  {
    kind: 'ClusterRoleBinding',
    name: 'status',
    roleRef: { kind: 'ClusterRole', name: 'any-status' },
    subjects: [{ kind: 'Group', name: 'system:serviceaccounts' }],
  },
  {
    kind: 'ClusterRoleBinding',
    name: 'mon',
    roleRef: { kind: 'ClusterRole', name: 'monitoring' },
    subjects: [{ kind: 'ServiceAccount', name: 'prom', namespace: 'monitoring' }],
  },
  {
    kind: 'ClusterRoleBinding',
    name: 'broken',
    roleRef: { kind: 'ClusterRole', name: 'does-not-exist' },
    subjects: [{ kind: 'User', name: 'mallory' }],
  },
  {
    kind: 'RoleBinding',
    name: 'deployers',
    namespace: 'team-a',
    roleRef: { kind: 'ClusterRole', name: 'all-verbs-deploy' },
    subjects: [{ kind: 'User', name: 'bob' }],
  },
  {
    kind: 'RoleBinding',
    name: 'logs',
    namespace: 'team-a',
    roleRef: { kind: 'ClusterRole', name: 'log-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'ci' }],
  },
  {
    kind: 'RoleBinding',
    name: 'cm',
    namespace: 'team-a',
    roleRef: { kind: 'Role', name: 'cm-editor' },
    subjects: [{ kind: 'Group', name: 'system:serviceaccounts:team-a' }],
  },
  {
    kind: 'RoleBinding',
    name: 'one-config',
    namespace: 'team-b',
    roleRef: { kind: 'ClusterRole', name: 'one-cm' },
    subjects: [{ kind: 'User', name: 'carol' }],
  },
  {
    kind: 'RoleBinding',
    name: 'secrets',
    namespace: 'team-b',
    roleRef: { kind: 'ClusterRole', name: 'secret-admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'vault', namespace: 'vault-ns' }],
  },
];

const authz = createRbacAuthorizer({ roles, bindings });
const sa = (ns: string, name: string): string => `system:serviceaccount:${ns}:${name}`;

interface Case {
  name: string;
  req: Omit<RequestAttributes, 'user'> & { user: string; groups?: string[] };
  allowed: boolean;
  reason?: string;
}

const cases: Case[] = [
  {
    name: 'user bound by ClusterRoleBinding',
    req: { user: 'alice', verb: 'get', resource: 'pods', namespace: 'x' },
    allowed: true,
    reason:
      'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to User "alice"',
  },
  {
    name: 'cluster-scope list',
    req: { user: 'alice', verb: 'list', resource: 'pods' },
    allowed: true,
  },
  {
    name: 'verb not granted',
    req: { user: 'alice', verb: 'delete', resource: 'pods', namespace: 'x' },
    allowed: false,
    reason: '',
  },
  {
    name: 'wrong api group',
    req: { user: 'alice', verb: 'get', apiGroup: 'apps', resource: 'pods', namespace: 'x' },
    allowed: false,
  },
  {
    name: 'group subject',
    req: { user: 'dave', groups: ['auditors'], verb: 'watch', resource: 'pods', namespace: 'x' },
    allowed: true,
    reason:
      'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "auditors"',
  },
  {
    name: 'resource rule does not cover subresource',
    req: { user: 'alice', verb: 'get', resource: 'pods', subresource: 'log', namespace: 'x' },
    allowed: false,
  },
  {
    name: 'RoleBinding to ClusterRole scoped to its namespace',
    req: {
      user: 'bob',
      verb: 'delete',
      apiGroup: 'apps',
      resource: 'deployments',
      namespace: 'team-a',
    },
    allowed: true,
    reason:
      'RBAC: allowed by RoleBinding "deployers/team-a" of ClusterRole "all-verbs-deploy" to User "bob"',
  },
  {
    name: 'RoleBinding does not reach other namespaces',
    req: {
      user: 'bob',
      verb: 'get',
      apiGroup: 'apps',
      resource: 'deployments',
      namespace: 'team-b',
    },
    allowed: false,
  },
  {
    name: 'RoleBinding does not grant cluster scope',
    req: { user: 'bob', verb: 'list', apiGroup: 'apps', resource: 'deployments' },
    allowed: false,
  },
  {
    name: 'verb * matches any verb',
    req: {
      user: 'bob',
      verb: 'patch',
      apiGroup: 'apps',
      resource: 'deployments',
      namespace: 'team-a',
    },
    allowed: true,
  },
  {
    name: 'resource/subresource exact',
    req: {
      user: sa('team-a', 'ci'),
      verb: 'get',
      resource: 'pods',
      subresource: 'log',
      namespace: 'team-a',
    },
    allowed: true,
    reason:
      'RBAC: allowed by RoleBinding "logs/team-a" of ClusterRole "log-reader" to ServiceAccount "ci/team-a"',
  },
  {
    name: 'SA subject without namespace takes the binding namespace',
    req: {
      user: sa('team-b', 'ci'),
      verb: 'get',
      resource: 'pods',
      subresource: 'log',
      namespace: 'team-a',
    },
    allowed: false,
  },
  {
    name: '*/subresource matches any resource',
    req: {
      user: sa('x', 'y'),
      verb: 'get',
      apiGroup: 'apps',
      resource: 'deployments',
      subresource: 'status',
      namespace: 'x',
    },
    allowed: true,
    reason:
      'RBAC: allowed by ClusterRoleBinding "status" of ClusterRole "any-status" to Group "system:serviceaccounts"',
  },
  {
    name: '*/subresource does not match the resource itself',
    req: {
      user: sa('x', 'y'),
      verb: 'get',
      apiGroup: 'apps',
      resource: 'deployments',
      namespace: 'x',
    },
    allowed: false,
  },
  {
    name: '*/status does not match other subresources',
    req: { user: sa('x', 'y'), verb: 'get', resource: 'pods', subresource: 'exec', namespace: 'x' },
    allowed: false,
  },
  {
    name: 'implied group system:serviceaccounts:<ns>',
    req: {
      user: sa('team-a', 'builder'),
      verb: 'create',
      resource: 'configmaps',
      namespace: 'team-a',
    },
    allowed: true,
    reason:
      'RBAC: allowed by RoleBinding "cm/team-a" of Role "cm-editor" to Group "system:serviceaccounts:team-a"',
  },
  {
    name: 'Role rules only in its namespace',
    req: {
      user: sa('team-b', 'builder'),
      verb: 'create',
      resource: 'configmaps',
      namespace: 'team-b',
    },
    allowed: false,
  },
  {
    name: 'resourceNames allow the named object',
    req: {
      user: 'carol',
      verb: 'update',
      resource: 'configmaps',
      name: 'app-config',
      namespace: 'team-b',
    },
    allowed: true,
  },
  {
    name: 'resourceNames deny other names',
    req: {
      user: 'carol',
      verb: 'update',
      resource: 'configmaps',
      name: 'other',
      namespace: 'team-b',
    },
    allowed: false,
  },
  {
    name: 'resourceNames deny list (no name)',
    req: { user: 'carol', verb: 'get', resource: 'configmaps', namespace: 'team-b' },
    allowed: false,
  },
  {
    name: 'SA subject with explicit namespace',
    req: { user: sa('vault-ns', 'vault'), verb: 'get', resource: 'secrets', namespace: 'team-b' },
    allowed: true,
    reason:
      'RBAC: allowed by RoleBinding "secrets/team-b" of ClusterRole "secret-admin" to ServiceAccount "vault/vault-ns"',
  },
  {
    name: 'nonResourceURL exact',
    req: { user: 'anyone', verb: 'get', nonResourceURL: '/healthz' },
    allowed: true,
    reason:
      'RBAC: allowed by ClusterRoleBinding "healthz" of ClusterRole "health" to Group "system:authenticated"',
  },
  {
    name: 'nonResourceURL trailing * prefix',
    req: { user: 'anyone', verb: 'get', nonResourceURL: '/healthz/etcd' },
    allowed: true,
  },
  {
    name: 'nonResourceURL not under prefix',
    req: { user: 'anyone', verb: 'get', nonResourceURL: '/healthzx' },
    allowed: false,
  },
  {
    name: 'nonResourceURL verb',
    req: { user: 'anyone', verb: 'post', nonResourceURL: '/metrics' },
    allowed: false,
  },
  {
    name: 'anonymous is not authenticated',
    req: { user: 'system:anonymous', verb: 'get', nonResourceURL: '/healthz' },
    allowed: false,
  },
  {
    name: 'aggregated ClusterRole gets the labelled roles rules',
    req: { user: sa('monitoring', 'prom'), verb: 'list', resource: 'services', namespace: 'x' },
    allowed: true,
    reason:
      'RBAC: allowed by ClusterRoleBinding "mon" of ClusterRole "monitoring" to ServiceAccount "prom/monitoring"',
  },
  {
    name: 'aggregated rules from a second role',
    req: { user: sa('monitoring', 'prom'), verb: 'list', resource: 'pods', namespace: 'x' },
    allowed: true,
  },
  {
    name: 'aggregation grants only what the parts grant',
    req: { user: sa('monitoring', 'prom'), verb: 'delete', resource: 'pods', namespace: 'x' },
    allowed: false,
  },
  {
    name: 'missing role is reported in the reason',
    req: { user: 'mallory', verb: 'get', resource: 'pods', namespace: 'x' },
    allowed: false,
    reason: 'RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found',
  },
];

for (const c of cases) {
  test(`rbac: ${c.name}`, () => {
    const { user, groups, ...rest } = c.req;
    const d = authz.authorize({ ...rest, user: authenticatedUser(user, groups ?? []) });
    assert.equal(d.allowed, c.allowed, d.reason);
    if (c.reason !== undefined) assert.equal(d.reason, c.reason);
  });
}

test('authenticatedUser adds the groups the API server adds', () => {
  assert.deepEqual(authenticatedUser('system:serviceaccount:ns1:sa1', ['x']).groups, [
    'x',
    'system:serviceaccounts',
    'system:serviceaccounts:ns1',
    'system:authenticated',
  ]);
  assert.deepEqual(authenticatedUser('system:anonymous').groups, ['system:unauthenticated']);
  assert.deepEqual(authenticatedUser('alice').groups, ['system:authenticated']);
});

test('a ServiceAccount subject of a ClusterRoleBinding needs a namespace', () => {
  const user = authenticatedUser(sa('default', 'x'));
  assert.equal(subjectAppliesTo(user, { kind: 'ServiceAccount', name: 'x' }, ''), false);
  assert.equal(subjectAppliesTo(user, { kind: 'ServiceAccount', name: 'x' }, 'default'), true);
  assert.equal(subjectAppliesTo(user, { kind: 'Robot', name: 'x' }, 'default'), false);
});

test('who can: lists every subject and the binding that lets it', () => {
  const who = authz.whoCan({
    verb: 'get',
    resource: 'pods',
    subresource: 'log',
    namespace: 'team-a',
  });
  const names = who.map(
    (w) => `${w.subject.kind}:${w.subject.namespace ?? ''}:${w.subject.name} via ${w.binding}`,
  );
  assert.deepEqual(names.sort(), ['ServiceAccount:team-a:ci via team-a/logs']);
  const readers = authz
    .whoCan({ verb: 'list', resource: 'pods', namespace: 'x' })
    .map((w) => w.subject.name)
    .sort();
  assert.deepEqual(readers, ['alice', 'auditors', 'prom']);
  assert.match(who[0]?.via ?? '', /^RoleBinding "logs\/team-a" of ClusterRole "log-reader"/);
});

test('escalation: covers follows Kubernetes Covers()', () => {
  const admin: PolicyRule[] = [
    { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
    { verbs: ['*'], nonResourceURLs: ['*'] },
  ];
  const table: { owner: PolicyRule[]; servant: PolicyRule[]; covered: boolean }[] = [
    {
      owner: admin,
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }],
      covered: true,
    },
    {
      owner: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }],
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }],
      covered: true,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }],
      servant: [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods'] }],
      covered: false,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: [''], resources: ['*/status'] }],
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['pods/status'] }],
      covered: true,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: [''], resources: ['pods/status'] }],
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['*/status'] }],
      covered: false,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }],
      servant: [
        { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] },
      ],
      covered: true,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }],
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }],
      covered: false,
    },
    {
      owner: [{ verbs: ['get'], nonResourceURLs: ['/api/*'] }],
      servant: [{ verbs: ['get'], nonResourceURLs: ['/api/v1'] }],
      covered: true,
    },
    {
      owner: [{ verbs: ['get'], nonResourceURLs: ['/api'] }],
      servant: [{ verbs: ['get'], nonResourceURLs: ['/api/v1'] }],
      covered: false,
    },
    {
      owner: [{ verbs: ['get'], apiGroups: ['apps'], resources: ['*'] }],
      servant: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }],
      covered: false,
    },
  ];
  table.forEach((t, i) => {
    assert.equal(roleCovers(t.owner, t.servant).covered, t.covered, `case ${String(i)}`);
  });
  const r = roleCovers(
    [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }],
    [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods'] }],
  );
  assert.deepEqual(r.uncovered, [{ verbs: ['delete'], apiGroups: [''], resources: ['pods'] }]);
});

test('confirmNoEscalation: a user may only grant what they hold', () => {
  const bob = authenticatedUser('bob');
  assert.equal(
    authz.confirmNoEscalation(bob, 'team-a', [
      { verbs: ['get'], apiGroups: ['apps'], resources: ['deployments'] },
    ]).covered,
    true,
  );
  const bad = authz.confirmNoEscalation(bob, 'team-a', [
    { verbs: ['get'], apiGroups: [''], resources: ['secrets'] },
  ]);
  assert.equal(bad.covered, false);
  assert.match(
    bad.message ?? '',
    /^user "bob" \(groups=\["system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get"\]\}$/,
  );
});

test('property: indexed decisions equal a linear scan over every binding', () => {
  const verbs = ['get', 'list', 'create', '*'];
  const resources = ['pods', 'secrets', 'pods/log', '*/log', '*'];
  const users = ['u0', 'u1', 'u2', sa('n0', 's0'), sa('n1', 's0')];
  const ruleArb = fc.record({
    verbs: fc.subarray(verbs, { minLength: 1 }),
    apiGroups: fc.constant(['']),
    resources: fc.subarray(resources, { minLength: 1 }),
  });
  const subjectArb = fc.oneof(
    fc.record({ kind: fc.constant('User'), name: fc.constantFrom('u0', 'u1', 'u2') }),
    fc.record({
      kind: fc.constant('Group'),
      name: fc.constantFrom('g0', 'system:serviceaccounts:n1', 'system:authenticated'),
    }),
    fc.record({
      kind: fc.constant('ServiceAccount'),
      name: fc.constant('s0'),
      namespace: fc.constantFrom('n0', 'n1'),
    }),
  );
  fc.assert(
    fc.property(
      fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
      fc.array(
        fc.record({
          cluster: fc.boolean(),
          ns: fc.constantFrom('n0', 'n1'),
          subjects: fc.array(subjectArb, { maxLength: 3 }),
        }),
        { maxLength: 6 },
      ),
      fc.constantFrom(...users),
      fc.constantFrom('get', 'list', 'create', 'delete'),
      fc.constantFrom('pods', 'secrets'),
      fc.constantFrom('', 'log'),
      fc.constantFrom('', 'n0', 'n1'),
      (rules, bs, userName, verb, resource, subresource, namespace) => {
        const role: RbacRole = { kind: 'ClusterRole', name: 'r', rules };
        const bindingList: RbacBinding[] = bs.map((b, i) =>
          b.cluster
            ? {
                kind: 'ClusterRoleBinding',
                name: `b${String(i)}`,
                roleRef: { kind: 'ClusterRole', name: 'r' },
                subjects: b.subjects,
              }
            : {
                kind: 'RoleBinding',
                name: `b${String(i)}`,
                namespace: b.ns,
                roleRef: { kind: 'ClusterRole', name: 'r' },
                subjects: b.subjects,
              },
        );
        const user = authenticatedUser(userName, ['g0']);
        const req: RequestAttributes = {
          user,
          verb,
          apiGroup: '',
          resource,
          subresource,
          namespace,
        };
        const naive = bindingList.some(
          (b) =>
            (b.kind === 'ClusterRoleBinding' || (namespace !== '' && b.namespace === namespace)) &&
            b.subjects.some((s) => subjectAppliesTo(user, s, b.namespace ?? '')) &&
            rules.some((r) => ruleAllows(req, r)),
        );
        return (
          createRbacAuthorizer({ roles: [role], bindings: bindingList }).authorize(req).allowed ===
          naive
        );
      },
    ),
    { numRuns: 300 },
  );
});
