// Issue 17 through real processes: `palisade control --mesh-config` (trust-domain
// aliases) and a sidecar enforcing what it compiled, with curl as the client:
// - a policy naming old-td/ns/bar/sa/sleep admits the same workload under the
//   current trust domain (istio.io "Trust domain migration" task);
// - RequestAuthentication with an HS256 `kty: oct` JWKS, the token in a cookie
//   (fromCookies), a claim copied to a header (outputClaimToHeaders) and a
//   space-delimited claim (spaceDelimitedClaims) matched by the policy;
// - the ingress gateway takes the client address from X-Forwarded-For past
//   meshConfig numTrustedProxies (istio.io "Ingress Gateway: IP-based allow
//   list" task) and enforces remoteIpBlocks on it;
// - the proxy's PID is the same after every request.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { base64url, SignJWT } from 'jose';
import { runPalisade, runProcess, waitFor } from '../helpers/index.js';
import {
  meshDirs,
  startControlPlane,
  startIngressGateway,
  startSidecar,
} from '../helpers/mesh-processes.js';

// This suite's loopback range (127.36.0.0/16).
const APP_IP = '127.36.0.1';
const INSTANCE_IP = '127.36.0.2';
const SECRET = new TextEncoder().encode('proxy-parity-shared-secret-0123456789');
const JWKS = JSON.stringify({
  keys: [{ kty: 'oct', kid: 'k1', alg: 'HS256', k: base64url.encode(SECRET) }],
});

function mesh(port: number): string {
  return `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { app: httpbin }
  ports: [{ name: http, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: httpbin, namespace: foo }
spec:
  serviceAccount: httpbin
  labels: { app: httpbin }
  command: node
  ports: [{ name: http, port: ${String(port)} }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  jwtRules:
    - issuer: issuer-foo
      jwks: '${JWKS}'
      fromCookies: [session]
      outputClaimToHeaders: [{ header: x-jwt-group, claim: group }]
      spaceDelimitedClaims: [roles]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  rules:
    - from: [{ source: { principals: ["old-td/ns/bar/sa/sleep"] } }]
      to: [{ operation: { paths: ["/mtls"] } }]
    - from: [{ source: { requestPrincipals: ["issuer-foo/alice"] } }]
      to: [{ operation: { methods: ["GE*"], paths: ["/jwt/{**}"] } }]
      when: [{ key: "request.auth.claims[roles]", values: ["dev"] }]
`;
}

const MESH_CONFIG = `apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |-
    trustDomain: cluster.local
    trustDomainAliases: [old-td]
`;

const token = (claims: Record<string, unknown>) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
    .setIssuer('issuer-foo')
    .setSubject('alice')
    .sign(SECRET);

test('sidecar enforces trust-domain aliases and an HS256 cookie JWT with claim outputs', async (t) => {
  const dir = await meshDirs(t);
  const seen: http.IncomingHttpHeaders[] = [];
  const app = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end(`app ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  const port = (app.address() as AddressInfo).port;
  writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(port));
  const meshConfig = join(dir.path, 'meshconfig.yaml');
  writeFileSync(meshConfig, MESH_CONFIG);

  const control = await startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', meshConfig]);
  t.after(() => control.stop());
  const proxy = await startSidecar(control, {
    namespace: 'foo',
    name: 'httpbin',
    instanceIp: INSTANCE_IP,
    appIp: APP_IP,
    dir: dir.path,
    metadata: { PROXY_TYPE: 'sidecar' },
  });
  t.after(() => proxy.stop());
  const pid = proxy.child.pid;

  for (const [name, id] of [
    ['sleep', 'spiffe://cluster.local/ns/bar/sa/sleep'],
    ['other', 'spiffe://cluster.local/ns/bar/sa/other'],
  ] as const) {
    const issued = await runPalisade([
      'ca',
      'issue',
      '--dir',
      dir.caDir,
      '--spiffe-id',
      id,
      '--out',
      join(dir.path, name),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
  }
  const curl = async (args: string[]): Promise<string> => {
    const r = await runProcess(
      'curl',
      ['-sS', '--max-time', '5', '-w', '\n%{http_code}', ...args],
      { timeoutMs: 10_000 },
    );
    return r.stdout;
  };
  const mtls = (name: string, path: string) =>
    curl([
      '--cacert',
      join(dir.caDir, 'root-cert.pem'),
      '--cert',
      join(dir.path, `${name}-cert.pem`),
      '--key',
      join(dir.path, `${name}-key.pem`),
      '-k',
      `https://${INSTANCE_IP}:${String(port)}${path}`,
    ]);
  const plain = (path: string, extra: string[] = []) =>
    curl([...extra, `http://${INSTANCE_IP}:${String(port)}${path}`]);

  await waitFor(async () => (await mtls('sleep', '/mtls')).endsWith('200'), 20_000).catch(
    (error: unknown) => {
      throw new Error(
        `no 200 through the sidecar: ${String(error)}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
      );
    },
  );
  // The policy names old-td; the peer is cluster.local, the trust domain with alias old-td.
  assert.equal(await mtls('sleep', '/mtls'), 'app /mtls\n200');
  assert.equal(await mtls('other', '/mtls'), 'RBAC: access denied\n403');

  const good = await token({ exp: 4_000_000_000, group: 'eng', roles: 'admin dev' });
  const ok = await plain('/jwt/a/b', ['--cookie', `theme=dark; session=${good}`]);
  assert.equal(ok, 'app /jwt/a/b\n200');
  assert.equal(seen.at(-1)?.['x-jwt-group'], 'eng');
  // The roles claim is split on spaces only because spaceDelimitedClaims lists it.
  const notDev = await token({ exp: 4_000_000_000, roles: 'admin devops' });
  assert.equal(
    await plain('/jwt/a', ['--cookie', `session=${notDev}`]),
    'RBAC: access denied\n403',
  );
  const expired = await token({ exp: 1_000_000_000, roles: 'dev' });
  assert.equal(await plain('/jwt/a', ['--cookie', `session=${expired}`]), 'Jwt is expired\n401');
  const forged = await new SignJWT({ roles: 'dev' })
    .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
    .setIssuer('issuer-foo')
    .setSubject('alice')
    .sign(new TextEncoder().encode('not-the-secret-not-the-secret-000'));
  assert.match(await plain('/jwt/a', ['--cookie', `session=${forged}`]), /\n401$/);
  // No token: no request principal, so the rule does not match.
  assert.equal(await plain('/jwt/a'), 'RBAC: access denied\n403');
  // The token in the Authorization header is not a configured location here.
  assert.equal(
    await plain('/jwt/a', ['-H', `authorization: Bearer ${good}`]),
    'RBAC: access denied\n403',
  );
  assert.equal(proxy.child.pid, pid);
  assert.equal(proxy.child.exitCode, null);
});

const GATEWAY_IP = '127.36.0.10';
const BACKEND_IP = '127.36.0.11';

async function startControl(
  dir: { path: string; configDir: string; caDir: string },
  meshConfig: string,
) {
  const file = join(dir.path, 'meshconfig.yaml');
  writeFileSync(file, meshConfig);
  return startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', file]);
}

test('ingress gateway: remoteIpBlocks on the X-Forwarded-For client past numTrustedProxies', async (t) => {
  const dir = await meshDirs(t);
  const backend = http.createServer((req, res) => {
    res.end(`backend ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => backend.listen(0, BACKEND_IP, resolve));
  t.after(() => {
    backend.closeAllConnections();
    backend.close();
  });
  const port = (backend.address() as AddressInfo).port;
  writeFileSync(
    join(dir.configDir, 'mesh.yaml'),
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backend, namespace: default }
spec:
  hosts: [backend.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(port)}, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: ${BACKEND_IP} }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: default }
spec:
  hosts: ['*']
  gateways: [edge]
  http: [{ route: [{ destination: { host: backend.example.com, port: { number: ${String(port)} } } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ingress-policy, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: ALLOW
  rules: [{ from: [{ source: { remoteIpBlocks: ["203.0.113.0/24"] } }] }]
`,
  );
  const control = await startControl(
    dir,
    'defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: 1\n',
  );
  t.after(() => control.stop());
  const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
  t.after(() => gateway.stop());
  const pid = gateway.child.pid;
  const get = async (xff?: string): Promise<string> =>
    (
      await runProcess(
        'curl',
        [
          '-sS',
          '--max-time',
          '5',
          '-w',
          '\n%{http_code}',
          ...(xff === undefined ? [] : ['-H', `x-forwarded-for: ${xff}`]),
          `http://${GATEWAY_IP}:8080/ip`,
        ],
        { timeoutMs: 10_000 },
      )
    ).stdout;
  await waitFor(async () => (await get('203.0.113.7')).endsWith('200'), 20_000).catch(
    (error: unknown) => {
      throw new Error(
        `no 200 through the gateway: ${String(error)}\n--- control\n${control.output()}\n--- gateway\n${gateway.output()}`,
      );
    },
  );
  // One trusted proxy (the load balancer) appended the client: the last XFF entry.
  assert.equal(await get('203.0.113.7'), 'backend /ip\n200');
  // The client itself forged 203.0.113.7 before the trusted hop: the hop's entry counts.
  assert.equal(await get('203.0.113.7, 198.51.100.1'), 'RBAC: access denied\n403');
  // No X-Forwarded-For: the peer (loopback) is the client.
  assert.equal(await get(), 'RBAC: access denied\n403');
  assert.equal(gateway.child.pid, pid);
  assert.equal(gateway.child.exitCode, null);
});
