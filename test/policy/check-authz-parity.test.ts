// `palisade check authz` on Istio's own examples (issue 17), run as a real process:
// serviceAccounts, trust-domain aliases from a MeshConfig, remoteIpBlocks from
// X-Forwarded-For, and `-o envoy`.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, tempDir } from '../helpers/index.js';

const dest = { namespace: 'foo', labels: { app: 'httpbin' }, port: 8000 };
const req = (source: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  destination: dest,
  source,
  request: { protocol: 'http', method: 'GET', host: 'httpbin.foo', path: '/ip', ...extra },
});

async function check(
  files: Record<string, string>,
  requests: unknown[],
  args: string[] = [],
): Promise<{ decision: string; status: number | string }[]> {
  const tmp = tempDir();
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(tmp.path, name), text);
    writeFileSync(join(tmp.path, 'reqs.json'), JSON.stringify(requests));
    const r = await runPalisade([
      'check',
      'authz',
      '-f',
      join(tmp.path, 'policies.yaml'),
      '--requests',
      join(tmp.path, 'reqs.json'),
      '-o',
      'json',
      ...args.map((a) => (a.startsWith('@') ? join(tmp.path, a.slice(1)) : a)),
    ]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { decision: string; status: number | string }[];
  } finally {
    tmp.cleanup();
  }
}

// istio.io AuthorizationPolicy reference, Source.serviceAccounts: "a list of service accounts
// ... in the format <namespace>/<serviceaccount>" or a bare name in the policy's namespace.
test('check authz: serviceAccounts and notServiceAccounts as Istio matches them', async () => {
  const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sa, namespace: foo}
spec:
  rules:
  - from: [{source: {serviceAccounts: ["bar/sleep", "curl"], notServiceAccounts: ["foo/curl-admin"]}}]
`;
  const got = await check({ 'policies.yaml': policies }, [
    req({ principal: 'spiffe://cluster.local/ns/bar/sa/sleep' }),
    req({ principal: 'spiffe://cluster.local/ns/foo/sa/curl' }),
    req({ principal: 'spiffe://cluster.local/ns/bar/sa/sleep-v2' }),
    req({ principal: 'spiffe://cluster.local/ns/bar/sa/curl' }),
    req({ principal: null }),
  ]);
  assert.deepEqual(
    got.map((d) => d.status),
    [200, 200, 403, 403, 403],
  );
});

// istio.io "Trust domain migration" task: the policy names old-td; after the mesh moves to
// new-td with trustDomainAliases [old-td], workloads of both trust domains are allowed.
test('check authz --mesh-config: trust-domain aliases, from the istio ConfigMap', async () => {
  const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: service-httpbin.default.svc.cluster.local, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: ["old-td/ns/foo/sa/curl"]}}]
`;
  const mesh = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    trustDomain: new-td
    trustDomainAliases: [old-td]
`;
  const requests = [
    req({ principal: 'spiffe://new-td/ns/foo/sa/curl' }),
    req({ principal: 'spiffe://old-td/ns/foo/sa/curl' }),
    req({ principal: 'spiffe://other-td/ns/foo/sa/curl' }),
  ];
  const files = { 'policies.yaml': policies, 'mesh.yaml': mesh };
  const withMesh = await check(files, requests, ['--mesh-config', '@mesh.yaml']);
  assert.deepEqual(
    withMesh.map((d) => d.status),
    [200, 200, 403],
  );
  const without = await check(files, requests);
  assert.deepEqual(
    without.map((d) => d.status),
    [403, 200, 403],
  );
});

// istio.io "Ingress gateway: IP-based allow list" task: remoteIpBlocks with
// numTrustedProxies; Envoy's x-forwarded-for rules pick the client address.
test('check authz: remoteIpBlocks from X-Forwarded-For (gateway numTrustedProxies) or remoteIp', async () => {
  const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
`;
  const mesh = `defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: 1\n`;
  const gw = { ...dest, gateway: true };
  const xff = (v: string) => ({ headers: { 'x-forwarded-for': v } });
  const requests = [
    { ...req({ principal: null, ip: '10.0.0.9' }, xff('203.0.113.7')), destination: gw },
    {
      ...req({ principal: null, ip: '10.0.0.9' }, xff('203.0.113.7, 198.51.100.1')),
      destination: gw,
    },
    req({ principal: null, ip: '10.0.0.9', remoteIp: '203.0.113.50' }),
    req({ principal: null, ip: '10.0.0.9' }, xff('198.51.100.1, 203.0.113.7')),
    req({ principal: null, ip: '203.0.113.7' }),
  ];
  const got = await check({ 'policies.yaml': policies, 'mesh.yaml': mesh }, requests, [
    '--mesh-config',
    '@mesh.yaml',
  ]);
  // gateway, 1 trusted hop: the last XFF entry; two entries: the last one (198.51...) → deny;
  // explicit remoteIp; sidecar: the last XFF entry; no XFF on a sidecar: the peer itself.
  assert.deepEqual(
    got.map((d) => d.status),
    [200, 403, 200, 200, 200],
  );
});

test('check authz -o envoy prints the compiled jwt_authn and RBAC filters', async () => {
  const policies = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules: [{issuer: "issuer-foo", jwks: '{"keys": []}'}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: ["PO*"], paths: ["/admin/{**}"]}}]}]
`;
  const tmp = tempDir();
  try {
    writeFileSync(join(tmp.path, 'p.yaml'), policies);
    writeFileSync(join(tmp.path, 'r.json'), JSON.stringify(req({ principal: null })));
    const r = await runPalisade([
      'check',
      'authz',
      '-f',
      join(tmp.path, 'p.yaml'),
      '--request',
      join(tmp.path, 'r.json'),
      '-o',
      'envoy',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      http_filters: { name: string; typed_config: Record<string, unknown> }[];
      network_filters: { name: string; typed_config: Record<string, unknown> }[];
    };
    assert.deepEqual(
      out.http_filters.map((f) => [f.name, f.typed_config['@type']]),
      [
        [
          'envoy.filters.http.jwt_authn',
          'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
        ],
        [
          'envoy.filters.http.rbac',
          'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        ],
      ],
    );
    const rbac = out.http_filters[1]?.typed_config as {
      rules: { action: string; policies: Record<string, unknown> };
    };
    assert.equal(rbac.rules.action, 'DENY');
    assert.deepEqual(Object.keys(rbac.rules.policies), ['ns[foo]-policy[deny-admin]-rule[0]']);
    // The DENY rule on TCP keeps only its TCP fields (Istio): matches every connection.
    assert.deepEqual(
      out.network_filters.map((f) => f.name),
      ['envoy.filters.network.rbac'],
    );
  } finally {
    tmp.cleanup();
  }
});
