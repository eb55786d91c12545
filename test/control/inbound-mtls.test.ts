// The control plane and a sidecar as real processes: `palisade control` serves
// a Workload's inbound listener with the mesh-wide STRICT PeerAuthentication and
// an AuthorizationPolicy; the proxy gets its SVID from the control plane's CA
// with its service-account token. curl is the independent client: with a mesh
// certificate for an allowed identity it reaches the app, with another
// identity it gets 403 "RBAC: access denied", and in plaintext it is refused.
// A config change (PERMISSIVE) reaches the proxy and plaintext then works; a
// broken change is rejected whole and the last good config keeps serving.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tls from 'node:tls';
import { runPalisade, runProcess, waitFor } from '../helpers/index.js';
import { echoUpgrades, upgradeOver } from '../helpers/websocket.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.0.0.61';
const INSTANCE_IP = '127.0.0.62';

function mesh(port: number, mode: string): string {
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
  labels: { app: httpbin, version: v1 }
  command: node
  ports: [{ name: http, port: ${String(port)} }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: ${mode} } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-sleep, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/bar/sa/sleep"] } }]
      to: [{ operation: { methods: ["GET"], paths: ["/ip", "/headers"] } }]
`;
}

async function curl(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess('curl', ['-sS', '--max-time', '5', ...args], { timeoutMs: 10_000 });
}

test('STRICT mTLS inbound with SVIDs from the control plane CA, AuthorizationPolicy enforced, config changes pushed', async (t) => {
  const dir = await meshDirs(t);
  const { configDir, caDir } = dir;

  const app = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({ path: req.url, xfcc: req.headers['x-forwarded-client-cert'] ?? null }),
    );
  });
  const upgradeRequests = echoUpgrades(app, 'app');
  await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  const port = (app.address() as AddressInfo).port;
  writeFileSync(join(configDir, 'mesh.yaml'), mesh(port, 'STRICT'));

  const control = await startControlPlane(configDir, caDir);
  t.after(() => control.stop());
  const xds = control.xds;
  const proxy = await startSidecar(control, {
    namespace: 'foo',
    name: 'httpbin',
    instanceIp: INSTANCE_IP,
    appIp: APP_IP,
    dir: dir.path,
    metadata: { PROXY_TYPE: 'sidecar' },
  });
  t.after(() => proxy.stop());
  const admin = `http://127.0.0.1:${String(proxy.admin)}`;

  for (const [name, id] of [
    ['sleep', 'spiffe://cluster.local/ns/bar/sa/sleep'],
    ['other', 'spiffe://cluster.local/ns/bar/sa/other'],
  ] as const) {
    const issued = await runPalisade([
      'ca',
      'issue',
      '--dir',
      caDir,
      '--spiffe-id',
      id,
      '--out',
      join(dir.path, name),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
  }
  const mtlsArgs = (name: string): string[] => [
    '--cacert',
    join(caDir, 'root-cert.pem'),
    '--cert',
    join(dir.path, `${name}-cert.pem`),
    '--key',
    join(dir.path, `${name}-key.pem`),
    // The server presents its SPIFFE ID (URI SAN), no DNS name: check it by identity below instead.
    '--resolve',
    `httpbin.foo:${String(port)}:${INSTANCE_IP}`,
    '-k',
  ];
  const url = `https://httpbin.foo:${String(port)}`;

  // The proxy's certificate arrives from the CA; the listener binds once xDS arrives.
  const first = await waitFor(async () => {
    // A client-supplied XFCC is replaced by the verified peer's (Istio SANITIZE_SET).
    const r = await curl([
      ...mtlsArgs('sleep'),
      '-H',
      'x-forwarded-client-cert: URI=spiffe://cluster.local/ns/foo/sa/admin',
      '-w',
      '\n%{http_code}',
      `${url}/ip`,
    ]);
    return r.stdout.endsWith('200') ? r : undefined;
  }, 20_000).catch((error: unknown) => {
    throw new Error(
      `no 200 through the sidecar: ${String(error)}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
    );
  });
  assert.ok(first);
  assert.match(first.stdout, /"xfcc":"URI=spiffe:\/\/cluster\.local\/ns\/bar\/sa\/sleep"/);

  const certs = JSON.parse((await curl([`${admin}/certs`])).stdout) as {
    spiffe_id: string;
    certificates: { cert_chain: { subject_alt_names: string[] }[] }[];
  };
  assert.equal(certs.spiffe_id, 'spiffe://cluster.local/ns/foo/sa/httpbin');
  assert.deepEqual(certs.certificates[0]?.cert_chain[0]?.subject_alt_names, [
    'URI:spiffe://cluster.local/ns/foo/sa/httpbin',
  ]);
  // The server's certificate as openssl sees it: the workload's SPIFFE ID, chained to the mesh root.
  const sclient = await runProcess(
    'openssl',
    [
      's_client',
      '-connect',
      `${INSTANCE_IP}:${String(port)}`,
      '-CAfile',
      join(caDir, 'root-cert.pem'),
      '-cert',
      join(dir.path, 'sleep-cert.pem'),
      '-key',
      join(dir.path, 'sleep-key.pem'),
    ],
    { input: '', timeoutMs: 10_000 },
  );
  assert.match(sclient.stdout, /Verify return code: 0 \(ok\)/);

  // A WebSocket upgrade over mTLS gets the same authorization: allowed path → 101 and bytes
  // both ways with the app; another identity → 403 before anything reaches the app.
  const mtlsSocket = (name: string): Promise<tls.TLSSocket> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: INSTANCE_IP,
        port,
        ca: readFileSync(join(caDir, 'root-cert.pem')),
        cert: readFileSync(join(dir.path, `${name}-cert.pem`)),
        key: readFileSync(join(dir.path, `${name}-key.pem`)),
        // The server's identity is a SPIFFE URI: checked by chain here (secure naming is the proxies' job).
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => {
        resolve(socket);
      });
      socket.once('error', reject);
    });
  const upgraded = await upgradeOver(await mtlsSocket('sleep'), '/headers', 'httpbin.foo');
  assert.equal(upgraded.status, 101, upgraded.head);
  assert.equal(await upgraded.exchange('ping'), 'app:ping');
  upgraded.close();
  assert.equal(
    upgradeRequests.at(-1)?.headers['x-forwarded-client-cert'],
    'URI=spiffe://cluster.local/ns/bar/sa/sleep',
  );
  const seenBefore = upgradeRequests.length;
  const refusedUpgrade = await upgradeOver(await mtlsSocket('other'), '/headers', 'httpbin.foo');
  assert.equal(refusedUpgrade.status, 403);
  assert.match(refusedUpgrade.head, /RBAC: access denied$/);
  assert.equal(upgradeRequests.length, seenBefore, 'a denied upgrade reached the app');

  const denied = await curl([...mtlsArgs('other'), '-w', '\n%{http_code}', `${url}/ip`]);
  assert.equal(denied.stdout, 'RBAC: access denied\n403');
  const wrongPath = await curl([...mtlsArgs('sleep'), '-w', '\n%{http_code}', `${url}/admin`]);
  assert.equal(wrongPath.stdout, 'RBAC: access denied\n403');
  const plaintext = await curl(['-w', '%{http_code}', `http://${INSTANCE_IP}:${String(port)}/ip`]);
  assert.notEqual(plaintext.code, 0, 'a plaintext request to a STRICT port must fail');
  assert.equal(plaintext.stdout, '000');
  const noClientCert = await curl([
    '--cacert',
    join(caDir, 'root-cert.pem'),
    '-k',
    '-w',
    '%{http_code}',
    `https://${INSTANCE_IP}:${String(port)}/ip`,
  ]);
  assert.notEqual(noClientCert.code, 0, 'TLS without a client certificate must fail');

  // proxy-status shows the proxy in sync; proxy-config shows its inbound listener.
  const status = await waitFor(async () => {
    const r = await runPalisade([
      'proxy-status',
      '--control',
      xds,
      '--state-dir',
      control.stateDir,
    ]);
    return /httpbin-0\.foo\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED/.test(r.stdout)
      ? r
      : undefined;
  });
  assert.ok(status);
  assert.match(status.stdout, /^NAME\s+CDS\s+LDS\s+EDS\s+RDS\s+SDS\s+VERSION/m);
  const listeners = await runPalisade([
    'proxy-config',
    'listener',
    'httpbin-0',
    '--control',
    xds,
    '--state-dir',
    control.stateDir,
  ]);
  assert.equal(listeners.code, 0, listeners.stderr);
  assert.match(
    listeners.stdout,
    new RegExp(
      `inbound\\|${String(port)}\\s+${INSTANCE_IP.replace(/\./g, '\\.')}\\s+${String(port)}\\s+transport tls\\s+Inline Route`,
    ),
  );

  // A broken change is rejected whole: the proxy keeps STRICT.
  writeFileSync(
    join(configDir, 'broken.yaml'),
    'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: x, namespace: foo }\nspec: { mtls: { mode: SOMETIMES } }\n',
  );
  await waitFor(() => (/config change rejected/.test(control.output()) ? true : undefined));
  assert.match(
    control.output(),
    /broken\.yaml \(PeerAuthentication foo\/x\): spec\.mtls\.mode: must be one of/,
  );
  const stillStrict = await curl([
    '-w',
    '%{http_code}',
    `http://${INSTANCE_IP}:${String(port)}/ip`,
  ]);
  assert.equal(stillStrict.stdout, '000');

  // PERMISSIVE: the same port now accepts plaintext too (and still mTLS).
  const { rmSync } = await import('node:fs');
  rmSync(join(configDir, 'broken.yaml'));
  writeFileSync(join(configDir, 'mesh.yaml'), mesh(port, 'PERMISSIVE'));
  const plain = await waitFor(async () => {
    const r = await curl(['-w', '\n%{http_code}', `http://${INSTANCE_IP}:${String(port)}/ip`]);
    return r.stdout.endsWith('\n403') || r.stdout.endsWith('\n200') ? r : undefined;
  }, 15_000).catch(async (error: unknown) => {
    const sent = await runPalisade([
      'proxy-config',
      'listener',
      'httpbin-0',
      '--control',
      xds,
      '--state-dir',
      control.stateDir,
    ]);
    throw new Error(
      `PERMISSIVE not applied: ${String(error)}\n${sent.stdout}${sent.stderr}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
    );
  });
  assert.ok(plain);
  // A plaintext peer has no principal, so the ALLOW policy (principals: sleep) denies it.
  assert.equal(plain.stdout, 'RBAC: access denied\n403');
  const stillMtls = await curl([...mtlsArgs('sleep'), '-w', '\n%{http_code}', `${url}/headers`]);
  assert.ok(stillMtls.stdout.endsWith('200'), stillMtls.stdout);
  assert.equal(readFileSync(join(configDir, 'mesh.yaml'), 'utf8').includes('PERMISSIVE'), true);
});
