// The Kubernetes CLI contract (issue 7), run as real processes: auth can-i,
// check netpol (single and --matrix), audit pod-security and audit, with
// their outputs and exit codes. kubectl (offline, --dry-run=client) writes
// some of the RBAC manifests, as an independent producer of real YAML.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runPalisade, runProcess, tempDir } from '../helpers/index.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'pod-security');

const RBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-reader
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list"]
- nonResourceURLs: ["/healthz", "/metrics/*"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: deployer
  namespace: team-a
rules:
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: readers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pod-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: auditors
`;

async function rbacDir(t: { after: (fn: () => void) => void }): Promise<string> {
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(join(dir.path, 'rbac.yaml'), RBAC);
  // kubectl writes the RoleBinding (no cluster needed for bindings).
  const kb = await runProcess('kubectl', [
    'create',
    'rolebinding',
    'deployers',
    '--role=deployer',
    '--user=alice',
    '--serviceaccount=team-a:ci',
    '-n',
    'team-a',
    '--dry-run=client',
    '-o',
    'yaml',
  ]);
  assert.equal(kb.code, 0, kb.stderr);
  writeFileSync(join(dir.path, 'binding.yaml'), kb.stdout);
  return dir.path;
}

test('auth can-i: yes/no with exit 0/1, groups, namespaces, subresources, URLs', async (t) => {
  const dir = await rbacDir(t);
  const can = async (...args: string[]) => runPalisade(['auth', 'can-i', ...args, '-f', dir]);
  const cases: [string[], string, number][] = [
    [['get', 'pods', '--as', 'bob', '--as-group', 'auditors'], 'yes\n', 0],
    [['get', 'pods', '--as', 'bob'], 'no\n', 1],
    [['delete', 'pods', '--as', 'bob', '--as-group', 'auditors'], 'no\n', 1],
    [
      ['get', 'pods/log', 'web-1', '--as', 'bob', '--as-group', 'auditors', '-n', 'prod'],
      'yes\n',
      0,
    ],
    [['create', 'pods/exec', '--as', 'bob', '--as-group', 'auditors'], 'no\n', 1],
    [['patch', 'deployments', 'web', '--as', 'alice', '-n', 'team-a'], 'yes\n', 0],
    [['patch', 'deployments.apps', '--as', 'alice', '-n', 'team-b'], 'no\n', 1],
    [
      ['create', 'deployments', '--as', 'system:serviceaccount:team-a:ci', '-n', 'team-a'],
      'yes\n',
      0,
    ],
    [
      ['create', 'deployments', '--as', 'system:serviceaccount:team-b:ci', '-n', 'team-a'],
      'no\n',
      1,
    ],
    [['get', '/healthz', '--as', 'bob', '--as-group', 'auditors'], 'yes\n', 0],
    [['get', '/metrics/cadvisor', '--as', 'bob', '--as-group', 'auditors'], 'yes\n', 0],
    [['post', '/healthz', '--as', 'bob', '--as-group', 'auditors'], 'no\n', 1],
  ];
  for (const [args, out, code] of cases) {
    const r = await can(...args);
    assert.equal(r.stdout, out, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.code, code, args.join(' '));
  }
});

test('auth can-i --requests -o json answers every request in order with reasons', async (t) => {
  const dir = await rbacDir(t);
  const reqs = join(dir, 'requests.json');
  writeFileSync(
    reqs,
    JSON.stringify([
      {
        user: 'bob',
        groups: ['auditors'],
        verb: 'list',
        apiGroup: '',
        resource: 'pods',
        subresource: '',
        name: '',
        namespace: 'x',
        nonResourceURL: '',
      },
      {
        user: 'alice',
        groups: [],
        verb: 'update',
        apiGroup: 'apps',
        resource: 'deployments',
        subresource: '',
        name: 'web',
        namespace: 'team-a',
        nonResourceURL: '',
      },
      {
        user: 'system:serviceaccount:team-a:ci',
        groups: [],
        verb: 'get',
        apiGroup: 'apps',
        resource: 'deployments',
        subresource: 'scale',
        name: '',
        namespace: 'team-a',
        nonResourceURL: '',
      },
      { user: 'carol', groups: [], verb: 'get', nonResourceURL: '/healthz' },
    ]),
  );
  const r = await runPalisade(['auth', 'can-i', '--requests', reqs, '-f', dir, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    {
      allowed: true,
      reason:
        'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "auditors"',
    },
    {
      allowed: true,
      reason: 'RBAC: allowed by RoleBinding "deployers/team-a" of Role "deployer" to User "alice"',
    },
    { allowed: false, reason: '' },
    { allowed: false, reason: '' },
  ]);
  writeFileSync(reqs, JSON.stringify([{ verb: 'get' }]));
  const bad = await runPalisade(['auth', 'can-i', '--requests', reqs, '-f', dir, '-o', 'json']);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /requests\[0\]\.user: required field is missing \[PAL_ERR_K8S_REQUEST_INVALID\]/,
  );
});

test('auth can-i: usage and validation errors exit 2 and name the problem', async (t) => {
  const dir = await rbacDir(t);
  const noAs = await runPalisade(['auth', 'can-i', 'get', 'pods', '-f', dir]);
  assert.equal(noAs.code, 2);
  assert.match(noAs.stderr, /missing required option --as/);
  writeFileSync(
    join(dir, 'bad.yaml'),
    'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: bad}\nrules:\n- verbs: []\n  resources: [pods]\n',
  );
  const invalid = await runPalisade(['auth', 'can-i', 'get', 'pods', '--as', 'x', '-f', dir]);
  assert.equal(invalid.code, 2);
  assert.match(
    invalid.stderr,
    /bad\.yaml: ClusterRole bad: rules\[0\]\.verbs: Required value: verbs must contain at least one value/,
  );
  assert.match(
    invalid.stderr,
    /rules\[0\]\.apiGroups: Required value: resource rules must supply at least one api group/,
  );
});

const CLUSTER = `
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
${['x', 'y']
  .flatMap((ns, i) =>
    ['a', 'b'].map(
      (p, j) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${p}, namespace: ${ns}, labels: {pod: ${p}}}
spec:
  containers:
  - name: c
    image: agnhost
    ports: [{containerPort: 80, name: serve-80-tcp}, {containerPort: 81, name: serve-81-tcp}]
status: {podIP: 10.0.${String(i)}.${String(j + 1)}}`,
    ),
  )
  .join('\n')}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-y-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
    ports: [{port: serve-80-tcp}]
`;

test('check netpol: one connection, JSON naming the deciding policies, exit 0/1', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'cluster.yaml');
  writeFileSync(file, CLUSTER);
  const ok = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    'y/b',
    '--to',
    'x/a',
    '--port',
    '80',
    '-o',
    'json',
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const v = JSON.parse(ok.stdout) as {
    allowed: boolean;
    egress: { allowed: boolean; isolated: boolean };
    ingress: { allowed: boolean; policies: string[]; allowedBy: string[] };
  };
  assert.equal(v.allowed, true);
  assert.equal(v.egress.allowed, true);
  assert.equal(v.egress.isolated, false);
  assert.deepEqual(v.ingress.policies, ['x/deny-ingress', 'x/allow-y-80']);
  assert.deepEqual(v.ingress.allowedBy, ['x/allow-y-80']);

  const port81 = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    'y/b',
    '--to',
    'x/a',
    '--port',
    '81',
    '--protocol',
    'TCP',
    '-o',
    'json',
  ]);
  assert.equal(port81.code, 1);
  const d = JSON.parse(port81.stdout) as {
    allowed: boolean;
    ingress: { allowed: boolean; allowedBy: string[] };
  };
  assert.equal(d.allowed, false);
  assert.equal(d.ingress.allowed, false);
  assert.deepEqual(d.ingress.allowedBy, []);

  const text = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    'x/b',
    '--to',
    'x/a',
    '--port',
    '80',
  ]);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /^denied: x\/b -> x\/a TCP\/80/);

  const missing = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    'x/nope',
    '--to',
    'x/a',
    '--port',
    '80',
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /pod "x\/nope" is not in .*PAL_ERR_K8S_POD_NOT_FOUND/);
  const badPort = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    'x/b',
    '--to',
    'x/a',
    '--port',
    '0',
  ]);
  assert.equal(badPort.code, 2);
});

test('check netpol --matrix: pods sorted as ns/name, row = from, column = to', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'cluster.yaml');
  writeFileSync(file, CLUSTER);
  const r = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--matrix',
    '--port',
    '80',
    '--protocol',
    'TCP',
    '-o',
    'json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    pods: ['x/a', 'x/b', 'y/a', 'y/b'],
    matrix: [
      [true, false, true, true],
      [false, true, true, true],
      [true, false, true, true],
      [true, false, true, true],
    ],
  });
});

test('audit pod-security: upstream fixtures through the CLI, JSON and exit codes', async () => {
  const pass = await runPalisade([
    'audit',
    'pod-security',
    '-f',
    join(FIXTURES, 'restricted', 'v1.25', 'pass'),
    '--level',
    'restricted',
    '--version',
    'v1.25',
    '-o',
    'json',
  ]);
  assert.equal(pass.code, 0, pass.stderr);
  const passed = JSON.parse(pass.stdout) as {
    file: string;
    allowed: boolean;
    violations: unknown[];
  }[];
  assert.equal(passed.length, 17);
  assert.ok(passed.every((p) => p.allowed && p.violations.length === 0));

  const fail = await runPalisade([
    'audit',
    'pod-security',
    '-f',
    join(FIXTURES, 'baseline', 'v1.25', 'fail', 'hostports2.yaml'),
    '--level',
    'baseline',
    '-o',
    'json',
  ]);
  assert.equal(fail.code, 1);
  const [entry] = JSON.parse(fail.stdout) as {
    file: string;
    allowed: boolean;
    violations: { check: string; message: string }[];
  }[];
  assert.ok(entry !== undefined);
  assert.match(entry.file, /hostports2\.yaml$/);
  assert.equal(entry.allowed, false);
  const [first] = entry.violations;
  assert.ok(first !== undefined);
  assert.equal(first.check, 'hostPorts');
  assert.match(first.message, /^hostPort \(containers? ".*" uses? hostPorts? [\d, ]+\)$/);

  const bad = await runPalisade(['audit', 'pod-security', '-f', FIXTURES, '--level', 'strict']);
  assert.equal(bad.code, 2);
  const badVersion = await runPalisade([
    'audit',
    'pod-security',
    '-f',
    FIXTURES,
    '--level',
    'baseline',
    '--version',
    '1.25',
  ]);
  assert.equal(badVersion.code, 2);
});

test('audit pod-security: workload kinds are checked through their pod templates', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(
    join(dir.path, 'deploy.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, securityContext: {allowPrivilegeEscalation: true}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: shop}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: tick, image: busybox}]
`,
  );
  const r = await runPalisade([
    'audit',
    'pod-security',
    '-f',
    dir.path,
    '--level',
    'restricted',
    '-o',
    'json',
  ]);
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as {
    kind: string;
    allowed: boolean;
    violations: { check: string; message: string }[];
  }[];
  assert.deepEqual(
    out.map((o) => o.kind),
    ['Deployment', 'CronJob'],
  );
  assert.equal(
    out[0]?.violations[0]?.message,
    'allowPrivilegeEscalation != false (container "web" must set securityContext.allowPrivilegeEscalation=false)',
  );
  const baseline = await runPalisade([
    'audit',
    'pod-security',
    '-f',
    dir.path,
    '--level',
    'baseline',
    '-o',
    'json',
  ]);
  assert.equal(baseline.code, 0, baseline.stdout);
});

test('audit: table, JSON and SARIF with --fail-on exit codes', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  mkdirSync(join(dir.path, 'k8s'));
  writeFileSync(
    join(dir.path, 'k8s', 'all.yaml'),
    `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {pod-security.kubernetes.io/enforce: baseline, istio-injection: enabled}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: peek, namespace: shop}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  hostNetwork: true
  containers: [{name: web, image: nginx}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open, namespace: shop}
spec:
  selector: {matchLabels: {app: other}}
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET]}}]}]
`,
  );
  const json = await runPalisade(['audit', '-f', dir.path, '-o', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const findings = JSON.parse(json.stdout) as {
    ruleId: string;
    severity: string;
    object: string;
  }[];
  const ids = new Set(findings.map((f) => f.ruleId));
  for (const id of [
    'PAL-K8S-RBAC-001',
    'PAL-K8S-RBAC-003',
    'PAL-K8S-PSS-001',
    'PAL-K8S-NETPOL-001',
    'PAL-MESH-001',
    'PAL-MESH-002',
    'PAL-MESH-003',
    'PAL-MESH-004',
  ]) {
    assert.ok(ids.has(id), `missing ${id} in ${[...ids].join(', ')}`);
  }
  assert.equal(findings[0]?.severity, 'critical');

  const failHigh = await runPalisade(['audit', '-f', dir.path, '--fail-on', 'critical']);
  assert.equal(failHigh.code, 1);
  assert.match(failHigh.stdout, /^SEVERITY\s+RULE\s+OBJECT\s+FILE\s+MESSAGE\n/);

  const sarif = await runPalisade(['audit', '-f', dir.path, '-o', 'sarif']);
  assert.equal(sarif.code, 0);
  const log = JSON.parse(sarif.stdout) as {
    version: string;
    runs: {
      tool: { driver: { name: string; rules: { id: string }[] } };
      results: {
        ruleId: string;
        ruleIndex: number;
        level: string;
        message: { text: string };
        locations: {
          physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } };
        }[];
      }[];
    }[];
  };
  assert.equal(log.version, '2.1.0');
  const run = log.runs[0];
  assert.ok(run !== undefined);
  assert.equal(run.tool.driver.name, 'palisade');
  assert.equal(run.results.length, findings.length);
  for (const r of run.results) {
    assert.equal(run.tool.driver.rules[r.ruleIndex]?.id, r.ruleId);
    assert.ok(['error', 'warning', 'note'].includes(r.level));
    assert.ok(r.message.text.length > 0);
    assert.match(r.locations[0]?.physicalLocation.artifactLocation.uri ?? '', /all\.yaml$/);
    assert.ok(Number.isInteger(r.locations[0]?.physicalLocation.region.startLine));
  }

  const clean = tempDir();
  t.after(clean.cleanup);
  writeFileSync(
    join(clean.path, 'ns.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: empty}\n',
  );
  const none = await runPalisade(['audit', '-f', clean.path, '--fail-on', 'low']);
  assert.equal(none.code, 0, none.stdout);
  assert.equal(none.stdout, 'No findings.\n');
  const badSeverity = await runPalisade(['audit', '-f', clean.path, '--fail-on', 'severe']);
  assert.equal(badSeverity.code, 2);
});

test('auth who-can lists subjects with their bindings; auth covers is the escalation check', async (t) => {
  const dir = await rbacDir(t);
  const who = await runPalisade([
    'auth',
    'who-can',
    'update',
    'deployments',
    '-n',
    'team-a',
    '-f',
    dir,
    '-o',
    'json',
  ]);
  assert.equal(who.code, 0, who.stderr);
  const grants = JSON.parse(who.stdout) as {
    subject: { kind: string; name: string };
    binding: string;
  }[];
  assert.deepEqual(
    grants.map((g) => `${g.subject.kind}/${g.subject.name} ${g.binding}`),
    ['User/alice team-a/deployers', 'ServiceAccount/ci team-a/deployers'],
  );
  const text = await runPalisade(['auth', 'who-can', 'get', '/healthz', '-f', dir]);
  assert.equal(
    text.stdout,
    'ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "auditors"\n',
  );

  const covers = await runPalisade([
    'auth',
    'covers',
    'role/team-a/deployer',
    'clusterrole/pod-reader',
    '-f',
    dir,
  ]);
  assert.equal(covers.code, 1);
  assert.match(
    covers.stdout,
    /^no\n {2}missing \{APIGroups:\[""\], Resources:\["pods"\], Verbs:\["get"\]\}\n/,
  );
  const self = await runPalisade([
    'auth',
    'covers',
    'clusterrole/pod-reader',
    'clusterrole/pod-reader',
    '-f',
    dir,
  ]);
  assert.equal(self.code, 0);
  assert.equal(self.stdout, 'yes\n');
  const unknown = await runPalisade([
    'auth',
    'covers',
    'clusterrole/nope',
    'clusterrole/pod-reader',
    '-f',
    dir,
  ]);
  assert.equal(unknown.code, 2);
});

test('check netpol reads pods that carry only labels and an IP (no spec)', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'snapshot.yaml');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: isolate-a, namespace: x}
spec: {podSelector: {matchLabels: {app: a}}}
`,
  );
  const r = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--matrix',
    '--port',
    '80',
    '-o',
    'json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    pods: ['x/a', 'x/b'],
    matrix: [
      [true, true],
      [false, true],
    ],
  });
});

test('auth can-i --list prints what the user may do, like kubectl', async (t) => {
  const dir = await rbacDir(t);
  const r = await runPalisade([
    'auth',
    'can-i',
    '--list',
    '--as',
    'alice',
    '--as-group',
    'auditors',
    '-n',
    'team-a',
    '-f',
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      'Resources          Non-Resource URLs   Resource Names   Verbs',
      'deployments.apps   []                  []               [*]',
      'pods               []                  []               [get list]',
      'pods/log           []                  []               [get list]',
      '                   [/healthz]          []               [get]',
      '                   [/metrics/*]        []               [get]',
      '',
    ].join('\n'),
  );
});
