// Istio's authorization shapes and precedence rules, decided through the
// translated Envoy RBAC configs (istio-semantics.md is the specification).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../api/index.js';
import { createWorkloadAuthorizer, loadSecurityPolicies, type InboundRequest } from './index.js';

const SLEEP = 'spiffe://cluster.local/ns/bar/sa/sleep';
const wl = { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } };

function authorizer(yaml: string, workload = wl) {
  return createWorkloadAuthorizer(
    loadSecurityPolicies(parseManifests(yaml, 'test.yaml')),
    workload,
  );
}

const http = (over: Partial<InboundRequest> = {}): InboundRequest => ({
  principal: SLEEP,
  sourceIp: '10.0.0.1',
  destinationIp: '10.0.0.2',
  destinationPort: 8000,
  protocol: 'http',
  method: 'GET',
  host: 'httpbin.foo',
  path: '/ip',
  headers: {},
  ...over,
});

const ap = (name: string, spec: string, ns = 'foo', extraMeta = ''): string =>
  `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}${extraMeta}}\nspec:\n${spec}\n`;

test('no policy allows; allow-nothing denies; allow-all allows; deny-all denies', async () => {
  assert.equal((await authorizer('').decide(http())).status, 200);
  const nothing = await authorizer(ap('allow-nothing', '  {}')).decide(http());
  assert.deepEqual([nothing.decision, nothing.status, nothing.policy], ['DENY', 403, null]);
  const all = await authorizer(ap('allow-all', '  rules: [{}]')).decide(http());
  assert.deepEqual([all.decision, all.policy, all.rule], ['ALLOW', 'foo/allow-all', 0]);
  const deny = await authorizer(
    ap('deny-all', '  action: DENY\n  rules: [{}]') + ap('allow-all', '  rules: [{}]'),
  ).decide(http());
  assert.deepEqual([deny.decision, deny.status, deny.policy], ['DENY', 403, 'foo/deny-all']);
});

test('sources: principals, namespaces, serviceAccounts, ipBlocks and their not- forms', async () => {
  const a = authorizer(
    ap(
      'p',
      `  rules:
  - from: [{source: {principals: ["cluster.local/ns/bar/*"], notPrincipals: ["*/sa/evil"]}}]
  - from: [{source: {namespaces: ["ops"]}}]
  - from: [{source: {serviceAccounts: ["team/builder"]}}]
  - from: [{source: {ipBlocks: ["192.168.0.0/16"], notIpBlocks: ["192.168.9.0/24"]}}]`,
    ),
  );
  assert.equal((await a.decide(http())).rule, 0);
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://cluster.local/ns/bar/sa/evil' }))).status,
    403,
  );
  assert.equal((await a.decide(http({ principal: 'spiffe://cluster.local/ns/ops/sa/x' }))).rule, 1);
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://cluster.local/ns/ops2/sa/x' }))).status,
    403,
  );
  assert.equal(
    (await a.decide(http({ principal: 'spiffe://other.td/ns/team/sa/builder' }))).rule,
    2,
  );
  assert.equal((await a.decide(http({ principal: null, sourceIp: '192.168.1.1' }))).rule, 3);
  assert.equal((await a.decide(http({ principal: null, sourceIp: '192.168.9.1' }))).status, 403);
});

test('operations: hosts (case-insensitive), methods, paths with {*} and {**}, ports, not- forms', async () => {
  const a = authorizer(
    ap(
      'p',
      `  rules:
  - to: [{operation: {hosts: ["HTTPBIN.foo"], methods: ["GET", "HEAD"], paths: ["/api/{*}/items", "/static/{**}"], notPaths: ["/static/secret*"]}}]
  - to: [{operation: {ports: ["9090"]}}]`,
    ),
  );
  assert.equal((await a.decide(http({ path: '/api/v1/items' }))).decision, 'ALLOW');
  assert.equal((await a.decide(http({ path: '/api/v1/v2/items' }))).decision, 'DENY');
  assert.equal(
    (await a.decide(http({ path: '/static/css/a.css', method: 'HEAD' }))).decision,
    'ALLOW',
  );
  assert.equal((await a.decide(http({ path: '/static/secret.txt' }))).decision, 'DENY');
  assert.equal((await a.decide(http({ path: '/api/v1/items', method: 'POST' }))).decision, 'DENY');
  assert.equal((await a.decide(http({ path: '/api/v1/items', host: 'other' }))).decision, 'DENY');
  assert.equal((await a.decide(http({ destinationPort: 9090, path: '/x' }))).rule, 1);
});

test('a DENY path cannot be reached by encoding it differently (BASE normalisation)', async () => {
  const a = authorizer(
    ap(
      'deny-admin',
      '  action: DENY\n  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]',
    ),
  );
  for (const path of [
    '/admin',
    '/%61dmin',
    '/x/../admin',
    '/./admin/',
    '/admin/%2e%2e/admin/x',
    '\\admin\\x',
    '/admin?q=1',
    '/admin#frag',
  ]) {
    assert.equal((await a.decide(http({ path }))).decision, 'DENY', path);
  }
  assert.equal((await a.decide(http({ path: '/adm%00in' }))).status, 400);
  assert.equal((await a.decide(http({ path: '/administrator' }))).decision, 'ALLOW');
});

test('when conditions: headers, source.ip, destination.port, connection.sni, request.auth claims (nested and lists), notValues', async () => {
  const a = authorizer(
    ap(
      'p',
      `  rules:
  - when:
    - {key: "request.headers[x-token]", values: ["a*"]}
    - {key: source.ip, notValues: ["10.9.0.0/16"]}
  - when: [{key: destination.port, values: ["9443"]}, {key: connection.sni, values: ["*.foo.svc"]}]`,
    ),
  );
  assert.equal((await a.decide(http({ headers: { 'X-Token': 'abc' } }))).rule, 0);
  assert.equal(
    (await a.decide(http({ headers: { 'x-token': 'abc' }, sourceIp: '10.9.1.1' }))).status,
    403,
  );
  assert.equal((await a.decide(http({ headers: { 'x-token': 'zzz' } }))).status, 403);
  assert.equal((await a.decide(http({ destinationPort: 9443, sni: 'httpbin.foo.svc' }))).rule, 1);
});

test('a header named like an Object property is absent unless the request carries it', async () => {
  // The request's header record must have no prototype: a policy on request.headers[constructor]
  // would otherwise see Object's constructor on every request (present, and not a string).
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const present = authorizer(
      ap('need', `  rules: [{when: [{key: "request.headers[${name}]", values: ["*"]}]}]`),
    );
    assert.equal((await present.decide(http())).status, 403, `${name}: absent, not present`);
    assert.equal(
      (await present.decide(http({ headers: { [name]: 'x' } }))).status,
      200,
      `${name}: sent`,
    );
    const prefix = authorizer(
      ap(
        'deny',
        `  action: DENY\n  rules: [{when: [{key: "request.headers[${name}]", values: ["abc*"]}]}]`,
      ),
    );
    const absent = await prefix.decide(http());
    assert.deepEqual(
      [absent.status, absent.reason],
      [200, 'allowed: no ALLOW policy applies to this workload'],
      name,
    );
    assert.equal((await prefix.decide(http({ headers: { [name]: 'abcd' } }))).status, 403, name);
  }
  // A `__proto__` field of a header object built by assignment is an own field, not a prototype.
  const own = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
  const exact = authorizer(
    ap('p', '  rules: [{when: [{key: "request.headers[__proto__]", values: ["x"]}]}]'),
  );
  assert.equal((await exact.decide(http({ headers: own }))).status, 200);
});

test('TCP: an ALLOW rule with HTTP-only fields is dropped; in DENY only the field is dropped', async () => {
  const tcp = (over: Partial<InboundRequest> = {}): InboundRequest => ({
    principal: SLEEP,
    destinationPort: 8000,
    protocol: 'tcp',
    ...over,
  });
  const allowGet = authorizer(
    ap(
      'p',
      '  rules: [{from: [{source: {principals: ["cluster.local/ns/bar/sa/sleep"]}}], to: [{operation: {methods: ["GET"]}}]}]',
    ),
  );
  assert.equal((await allowGet.decide(http())).decision, 'ALLOW');
  assert.equal((await allowGet.decide(tcp())).decision, 'DENY'); // the only ALLOW rule was dropped: deny all TCP
  assert.deepEqual(allowGet.rbacFilters('tcp').allow?.rules?.policies, {});
  const denyGet = authorizer(
    ap(
      'd',
      '  action: DENY\n  rules: [{from: [{source: {namespaces: ["bar"]}}], to: [{operation: {methods: ["GET"]}}]}]',
    ),
  );
  assert.equal((await denyGet.decide(tcp())).decision, 'DENY'); // methods dropped: denies all TCP from bar
  assert.equal(
    (await denyGet.decide(tcp({ principal: 'spiffe://cluster.local/ns/baz/sa/x' }))).decision,
    'ALLOW',
  );
  const ports = authorizer(ap('p', '  rules: [{to: [{operation: {ports: ["3306"]}}]}]'));
  assert.equal((await ports.decide(tcp({ destinationPort: 3306 }))).decision, 'ALLOW');
  assert.equal((await ports.decide(tcp({ destinationPort: 3307 }))).decision, 'DENY');
});

test('root-namespace policies apply to every namespace; other namespaces do not', async () => {
  const yaml =
    ap(
      'global-deny',
      '  action: DENY\n  rules: [{to: [{operation: {paths: ["/private*"]}}]}]',
      'istio-system',
    ) + ap('other-ns', '  {}', 'elsewhere');
  const a = authorizer(yaml);
  assert.equal((await a.decide(http({ path: '/private/x' }))).policy, 'istio-system/global-deny');
  assert.equal((await a.decide(http())).decision, 'ALLOW');
  const sel = authorizer(
    ap('only-v2', '  selector: {matchLabels: {version: v2}}\n  rules: []', 'foo'),
  );
  assert.equal((await sel.decide(http())).decision, 'ALLOW'); // selector does not match v1
});

test('dry-run policies are evaluated and reported but not enforced', async () => {
  const a = authorizer(
    ap(
      'dry-deny',
      '  action: DENY\n  rules: [{}]',
      'foo',
      ', annotations: {"istio.io/dry-run": "true"}',
    ),
  );
  const d = await a.decide(http());
  assert.equal(d.decision, 'ALLOW');
  assert.deepEqual(d.dryRun, { policy: 'foo/dry-deny', rule: 0, action: 'DENY' });
  assert.ok(a.rbacFilters('http').deny?.shadow_rules !== undefined);
  assert.equal(a.rbacFilters('http').deny?.rules, undefined);
});

test('CUSTOM without a configured provider fails closed for the requests it covers', async () => {
  const a = authorizer(
    ap(
      'ext',
      '  action: CUSTOM\n  provider: {name: opa}\n  rules: [{to: [{operation: {paths: ["/x*"]}}]}]',
    ),
  );
  assert.equal((await a.decide(http({ path: '/x/1' }))).status, 403);
  assert.equal((await a.decide(http({ path: '/y' }))).status, 200);
});

const pa = (name: string, ns: string, spec: string, ts = '2026-01-01T00:00:00Z'): string =>
  `---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${ns}, creationTimestamp: "${ts}"}\nspec:\n${spec}\n`;

test('PeerAuthentication: workload > namespace > mesh > PERMISSIVE, UNSET inherits, port level, oldest wins', async () => {
  const plain = http({ principal: null });
  assert.equal((await authorizer('').decide(plain)).status, 200); // default PERMISSIVE
  const mesh = pa('default', 'istio-system', '  mtls: {mode: STRICT}');
  assert.equal((await authorizer(mesh).decide(plain)).status, 'connection-refused');
  const nsPermissive = pa('ns', 'foo', '  mtls: {mode: PERMISSIVE}');
  assert.equal((await authorizer(mesh + nsPermissive).decide(plain)).status, 200);
  const wlUnset = pa(
    'wl',
    'foo',
    '  selector: {matchLabels: {app: httpbin}}\n  mtls: {mode: UNSET}\n  portLevelMtls: {"9000": {mode: DISABLE}, "8000": {mode: UNSET}}',
  );
  const d = await authorizer(mesh + nsPermissive + wlUnset).decide(plain);
  assert.equal(d.status, 200); // UNSET at port and workload -> namespace PERMISSIVE
  const strictWl = pa(
    'wl',
    'foo',
    '  selector: {matchLabels: {app: httpbin}}\n  mtls: {mode: STRICT}\n  portLevelMtls: {"9000": {mode: DISABLE}}',
  );
  assert.equal(
    (await authorizer(nsPermissive + strictWl).decide(plain)).status,
    'connection-refused',
  );
  assert.equal(
    (
      await authorizer(nsPermissive + strictWl).decide(
        http({ principal: null, destinationPort: 9000 }),
      )
    ).status,
    200,
  );
  // On a DISABLE port the connection is plaintext: a principal the caller names does not count,
  // so an ALLOW rule on principals does not match there (Istio: source.principal needs mTLS).
  const sleepOnly = ap(
    'sleep-only',
    `  rules: [{from: [{source: {principals: ["cluster.local/ns/bar/sa/sleep"]}}]}]`,
  );
  const onDisable = await authorizer(nsPermissive + strictWl + sleepOnly).decide(
    http({ destinationPort: 9000 }),
  );
  assert.equal(onDisable.status, 403, 'a DISABLE port has no peer identity');
  assert.equal((await authorizer(nsPermissive + sleepOnly).decide(http())).status, 200);
  // Two namespace-level policies: the older one wins.
  const older =
    pa('a-new', 'foo', '  mtls: {mode: PERMISSIVE}', '2026-06-01T00:00:00Z') +
    pa('z-old', 'foo', '  mtls: {mode: STRICT}', '2025-01-01T00:00:00Z');
  const o = await authorizer(older).decide(plain);
  assert.deepEqual([o.status, o.policy], ['connection-refused', 'foo/z-old']);
  // A selector policy in the root namespace is ignored for other namespaces.
  const rootSel = pa(
    'r',
    'istio-system',
    '  selector: {matchLabels: {app: httpbin}}\n  mtls: {mode: STRICT}',
  );
  assert.equal((await authorizer(rootSel).decide(plain)).status, 200);
  // Require mTLS with DENY notPrincipals ["*"] under PERMISSIVE.
  const requireMtls = ap(
    'require-mtls',
    '  action: DENY\n  rules: [{from: [{source: {notPrincipals: ["*"]}}]}]',
  );
  assert.equal((await authorizer(requireMtls).decide(plain)).status, 403);
  assert.equal((await authorizer(requireMtls).decide(http())).status, 200);
});

test('validation: every problem with its field path; nothing loaded', () => {
  const bad =
    ap('empty-source', '  rules: [{from: [{source: {}}], to: [{operation: {}}]}]') +
    ap('deny-no-rules', '  action: DENY') +
    ap(
      'custom-no-provider',
      '  action: CUSTOM\n  rules: [{from: [{source: {principals: ["a"]}}]}]',
    ) +
    ap('bad-fields', '  rules: [{from: [{source: {principalz: ["a"]}}]}]') +
    ap(
      'bad-values',
      '  rules: [{from: [{source: {ipBlocks: ["300.1.1.1"]}}], when: [{key: "request.bogus", values: ["x"]}]}]',
    ) +
    `---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: both, namespace: foo}\nspec:\n  jwtRules: [{issuer: x, jwks: '{"keys":[]}', jwksUri: "https://x/jwks"}]\n` +
    pa('port-no-selector', 'foo', '  portLevelMtls: {"80": {mode: STRICT}}');
  let message = '';
  try {
    loadSecurityPolicies(parseManifests(bad, 'bad.yaml'));
  } catch (err) {
    message = (err as Error).message;
  }
  for (const expected of [
    'AuthorizationPolicy foo/empty-source: spec.rules[0].from[0].source: must not be empty',
    'AuthorizationPolicy foo/empty-source: spec.rules[0].to[0].operation: must not be empty',
    'AuthorizationPolicy foo/deny-no-rules: spec.rules: DENY action requires at least one rule',
    'AuthorizationPolicy foo/custom-no-provider: spec.provider: CUSTOM action requires a provider',
    'AuthorizationPolicy foo/custom-no-provider: spec.rules[0].from[0].source.principals: not supported with the CUSTOM action',
    'spec.rules[0].from[0].source.principalz: unknown field',
    'spec.rules[0].from[0].source.ipBlocks[0]: invalid IP address or CIDR "300.1.1.1"',
    'spec.rules[0].when[0].key: unknown or unsupported condition key "request.bogus"',
    'RequestAuthentication foo/both: spec.jwtRules[0]: jwks and jwksUri cannot both be set',
    'PeerAuthentication foo/port-no-selector: spec.portLevelMtls: portLevelMtls requires selector',
  ]) {
    assert.ok(message.includes(expected), `missing: ${expected}\n---\n${message}`);
  }
  assert.ok(message.includes('bad.yaml'));
});

test('header names and methods match in any case, non-ASCII ones as toLowerCase/toUpperCase make them', async () => {
  const a = authorizer(
    ap(
      'p',
      `  rules:
  - to: [{operation: {methods: ["GET"]}}]
    when: [{key: "request.headers[x-token]", values: ["a"]}]
  - to: [{operation: {methods: ["PÖST"]}}]
    when: [{key: "request.headers[x-é]", values: ["b"]}]`,
    ),
  );
  for (const [method, headers, rule] of [
    ['GET', { 'x-token': 'a' }, 0],
    ['get', { 'X-TOKEN': 'a' }, 0],
    ['gEt', { 'x-Token': 'a' }, 0],
    ['pöst', { 'X-É': 'b' }, 1],
    ['PÖST', { 'x-é': 'b' }, 1],
    // Upper-case only beyond ASCII: still changed.
    ['PöST', { 'x-É': 'b' }, 1],
  ] as const)
    assert.equal(
      (await a.decide(http({ method, headers }))).rule,
      rule,
      `${method} ${JSON.stringify(headers)}`,
    );
  assert.equal((await a.decide(http({ method: 'POST', headers: { 'x-token': 'a' } }))).status, 403);
  assert.equal((await a.decide(http({ method: 'GET', headers: { 'x-token2': 'a' } }))).status, 403);
});
