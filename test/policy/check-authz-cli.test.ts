// The `palisade check authz` contract, run as a real process.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, tempDir } from '../helpers/index.js';

const POLICIES = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: v1
kind: Service
metadata: {name: ignored, namespace: foo}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-path, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
`;
const ALLOW = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/bar/sa/sleep"]}}]}]
`;

const request = (principal: string | null, path: string, protocol = 'http') => ({
  destination: { namespace: 'foo', labels: { app: 'httpbin' }, port: 8000, ip: '10.0.0.2' },
  source: { principal, ip: '10.0.0.1' },
  request: { protocol, method: 'GET', host: 'httpbin.foo', path, headers: { 'x-token': 'a' } },
});

test('check authz answers the contract shapes, one request and many, from several files', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  writeFileSync(join(tmp.path, 'p.yaml'), POLICIES);
  writeFileSync(join(tmp.path, 'a.yaml'), ALLOW);
  writeFileSync(
    join(tmp.path, 'one.json'),
    JSON.stringify(request('spiffe://cluster.local/ns/bar/sa/sleep', '/ip')),
  );
  const one = await runPalisade([
    'check',
    'authz',
    '-f',
    join(tmp.path, 'p.yaml'),
    '-f',
    join(tmp.path, 'a.yaml'),
    '--request',
    join(tmp.path, 'one.json'),
    '-o',
    'json',
  ]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), {
    decision: 'ALLOW',
    status: 200,
    policy: 'foo/allow-sleep',
    rule: 0,
    reason: 'allowed by ALLOW policy foo/allow-sleep rule 0',
  });

  const many = [
    request('spiffe://cluster.local/ns/bar/sa/sleep', '/headers'),
    request('spiffe://cluster.local/ns/bar/sa/other', '/ip'),
    request(null, '/ip'),
    request('spiffe://cluster.local/ns/bar/sa/sleep', '/ip', 'tcp'),
  ];
  writeFileSync(join(tmp.path, 'many.json'), JSON.stringify(many));
  const r = await runPalisade([
    'check',
    'authz',
    '-f',
    join(tmp.path, 'p.yaml'),
    '-f',
    join(tmp.path, 'a.yaml'),
    '--requests',
    join(tmp.path, 'many.json'),
    '-o',
    'json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const answers = JSON.parse(r.stdout) as {
    decision: string;
    status: number | string;
    policy: string | null;
    rule: number | null;
  }[];
  assert.deepEqual(
    answers.map((a) => [a.decision, a.status, a.policy, a.rule]),
    [
      ['DENY', 403, 'foo/deny-path', 0],
      ['DENY', 403, null, null],
      ['DENY', 'connection-refused', 'istio-system/default', null],
      ['DENY', 403, 'foo/deny-path', 0], // DENY on TCP drops the HTTP-only path: denies all TCP
    ],
  );
});

// One exit convention for every `check` command, as `kubectl auth can-i`:
// 0 = allowed (yes), 1 = denied (no), 2 = invalid input. A --requests report
// exits 0 once every request was answered (like check netpol --matrix).
test('check authz exits 0 on ALLOW and 1 on DENY for one request', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  writeFileSync(join(tmp.path, 'p.yaml'), POLICIES);
  writeFileSync(join(tmp.path, 'a.yaml'), ALLOW);
  const ask = async (principal: string, path: string) => {
    writeFileSync(join(tmp.path, 'r.json'), JSON.stringify(request(principal, path)));
    return runPalisade([
      'check',
      'authz',
      '-f',
      join(tmp.path, 'p.yaml'),
      '-f',
      join(tmp.path, 'a.yaml'),
      '--request',
      join(tmp.path, 'r.json'),
    ]);
  };
  const allowed = await ask('spiffe://cluster.local/ns/bar/sa/sleep', '/ip');
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stdout, /^ALLOW \(200\) by foo\/allow-sleep rule 0/);
  const denied = await ask('spiffe://cluster.local/ns/bar/sa/sleep', '/headers');
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stdout, /^DENY \(403\) by foo\/deny-path rule 0: denied by DENY policy/);
  assert.equal(denied.stderr, '');
});

test('check authz exits 2 naming the problem for bad input', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  writeFileSync(join(tmp.path, 'p.yaml'), POLICIES);
  writeFileSync(
    join(tmp.path, 'bad-policy.yaml'),
    'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: foo}\nspec:\n  action: DENY\n',
  );
  writeFileSync(join(tmp.path, 'bad-yaml.yaml'), 'a: [1\n');
  writeFileSync(join(tmp.path, 'req.json'), JSON.stringify(request(null, '/')));
  writeFileSync(join(tmp.path, 'notjson.json'), '{');
  writeFileSync(
    join(tmp.path, 'noport.json'),
    JSON.stringify({ destination: { namespace: 'foo', labels: {} } }),
  );
  const cases: [string[], RegExp][] = [
    [
      ['-f', join(tmp.path, 'bad-policy.yaml'), '--request', join(tmp.path, 'req.json')],
      /AuthorizationPolicy foo\/x: spec\.rules: DENY action requires at least one rule/,
    ],
    [
      ['-f', join(tmp.path, 'bad-yaml.yaml'), '--request', join(tmp.path, 'req.json')],
      /bad-yaml\.yaml:\d+/,
    ],
    [
      ['-f', join(tmp.path, 'p.yaml'), '--request', join(tmp.path, 'notjson.json')],
      /notjson\.json: not valid JSON/,
    ],
    [
      ['-f', join(tmp.path, 'p.yaml'), '--request', join(tmp.path, 'noport.json')],
      /request\.destination\.port: must be a port number/,
    ],
    [
      ['-f', join(tmp.path, 'p.yaml'), '--requests', join(tmp.path, 'req.json')],
      /must be a JSON array/,
    ],
    [['--request', join(tmp.path, 'req.json')], /-f FILE/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runPalisade(['check', 'authz', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
});

// meshConfig.pathNormalization: check authz matches the path as the proxies normalise it
// (Istio's "Authorization Policy Normalization" table, pilot's authz path-normalization
// test: BASE keeps `//` and `%2F`, MERGE_SLASHES merges `//`, DECODE_AND_MERGE_SLASHES also
// decodes `%2F`; NONE matches the path as received).
test('check authz normalises the path at the --mesh-config pathNormalization level', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  writeFileSync(join(tmp.path, 'p.yaml'), POLICIES);
  const sleep = 'spiffe://cluster.local/ns/bar/sa/sleep';
  const paths = ['//headers', '/%2Fheaders', '/a/../headers', '/headers'];
  writeFileSync(join(tmp.path, 'reqs.json'), JSON.stringify(paths.map((p) => request(sleep, p))));
  const want: Record<string, string[]> = {
    NONE: ['ALLOW', 'ALLOW', 'ALLOW', 'DENY'],
    BASE: ['ALLOW', 'ALLOW', 'DENY', 'DENY'],
    MERGE_SLASHES: ['DENY', 'ALLOW', 'DENY', 'DENY'],
    DECODE_AND_MERGE_SLASHES: ['DENY', 'DENY', 'DENY', 'DENY'],
  };
  for (const [level, decisions] of Object.entries(want)) {
    const mesh = join(tmp.path, `mesh-${level}.yaml`);
    writeFileSync(mesh, `pathNormalization:\n  normalization: ${level}\n`);
    const r = await runPalisade([
      'check',
      'authz',
      '-f',
      join(tmp.path, 'p.yaml'),
      '--requests',
      join(tmp.path, 'reqs.json'),
      '--mesh-config',
      mesh,
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const got = (JSON.parse(r.stdout) as { decision: string }[]).map((d) => d.decision);
    assert.deepEqual(got, decisions, level);
  }
  // Without --mesh-config: BASE, Istio's default.
  const r = await runPalisade([
    'check',
    'authz',
    '-f',
    join(tmp.path, 'p.yaml'),
    '--requests',
    join(tmp.path, 'reqs.json'),
    '-o',
    'json',
  ]);
  assert.deepEqual(
    (JSON.parse(r.stdout) as { decision: string }[]).map((d) => d.decision),
    want['BASE'],
  );
  // An unknown level is invalid input (exit 2) naming the file and the field.
  const bad = join(tmp.path, 'bad.yaml');
  writeFileSync(bad, 'pathNormalization: {normalization: SLASHES}\n');
  const e = await runPalisade([
    'check',
    'authz',
    '-f',
    join(tmp.path, 'p.yaml'),
    '--requests',
    join(tmp.path, 'reqs.json'),
    '--mesh-config',
    bad,
  ]);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /bad\.yaml/);
  assert.match(e.stderr, /pathNormalization\.normalization/);
});

// Istio's extauthz builder: for a CUSTOM policy whose provider is an envoyExtAuthzHttp
// extension provider, an RBAC filter with shadow rules named `istio-ext-authz-…` (stat
// prefix istio_ext_authz_) and an ext_authz filter enabled by its shadow effective policy;
// an HTTP-only provider builds no network filter.
test('check authz -o envoy prints the ext_authz filter of a CUSTOM policy with a known provider', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  writeFileSync(
    join(tmp.path, 'c.yaml'),
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: CUSTOM
  provider: {name: http-authz}
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
`,
  );
  writeFileSync(
    join(tmp.path, 'mesh.yaml'),
    `extensionProviders:
  - name: http-authz
    envoyExtAuthzHttp: {service: foo/ext-authz, port: 8000, headersToUpstreamOnAllow: [x-user]}
`,
  );
  writeFileSync(join(tmp.path, 'r.json'), JSON.stringify(request(null, '/headers')));
  const r = await runPalisade([
    'check',
    'authz',
    '-f',
    join(tmp.path, 'c.yaml'),
    '--mesh-config',
    join(tmp.path, 'mesh.yaml'),
    '--request',
    join(tmp.path, 'r.json'),
    '-o',
    'envoy',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    http_filters: { name: string; typed_config: Record<string, unknown> }[];
    network_filters: unknown[];
  };
  assert.deepEqual(
    out.http_filters.map((f) => f.name),
    ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz'],
  );
  const [rbac, ext] = out.http_filters;
  assert.ok(rbac !== undefined && ext !== undefined);
  assert.equal(rbac.typed_config['shadow_rules_stat_prefix'], 'istio_ext_authz_');
  assert.deepEqual(
    Object.keys(
      (rbac.typed_config['shadow_rules'] as { policies: Record<string, unknown> }).policies,
    ),
    ['istio-ext-authz-ns[foo]-policy[ext]-rule[0]'],
  );
  assert.deepEqual(ext.typed_config['filter_enabled_metadata'], {
    filter: 'envoy.filters.http.rbac',
    path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
    value: { string_match: { prefix: 'istio-ext-authz' } },
  });
  const service = ext.typed_config['http_service'] as Record<string, Record<string, unknown>>;
  assert.equal(
    service['server_uri']?.['cluster'],
    'outbound|8000||ext-authz.foo.svc.cluster.local',
  );
  assert.deepEqual(service['authorization_response'], {
    allowed_upstream_headers: { patterns: [{ exact: 'x-user' }] },
  });
  assert.deepEqual(out.network_filters, []);
});
