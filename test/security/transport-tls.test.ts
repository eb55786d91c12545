// Issue 15 item 7: every TLS port of the mesh accepts only AEAD cipher suites
// (Envoy's server defaults, TlsParameters.cipher_suites: ECDHE-ECDSA/RSA with
// AES-GCM or ChaCha20-Poly1305 for TLS 1.2; every TLS 1.3 suite) unless a
// Gateway asks for more (Istio ServerTLSSettings.cipherSuites), and the xDS
// port speaks TLS only. Real processes, and openssl s_client as the client:
// `-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA` (CBC) must fail and an AEAD suite
// must succeed against a sidecar's inbound port (with a mesh client cert), the
// ingress gateway, the CA and the xDS port; a plaintext gRPC ADS stream to the
// xDS port gets nothing.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { xdsChannelCredentials } from '../../src/xds/grpc-channel.js';
import { TYPE_URLS } from '../../src/xds/index.js';
import { runPalisade, runProcess, waitFor, type RunResult } from '../helpers/index.js';
import {
  meshDirs,
  startControlPlane,
  startIngressGateway,
  startSidecar,
} from '../helpers/mesh-processes.js';
import { issueCert, makeCa } from '../helpers/openssl-pki.js';
import { openRawAdsStream } from './ads-stream.js';

const APP_IP = '127.34.20.1';
const INSTANCE_IP = '127.34.20.2';
const GATEWAY_IP = '127.34.20.3';
const CBC = 'ECDHE-ECDSA-AES128-SHA';
const AEAD = 'ECDHE-ECDSA-AES128-GCM-SHA256';

function indent(pem: string): string {
  return pem.trim().replace(/\n/g, '\n      ');
}

/** A TLS 1.2 handshake with one offered suite; resolves with openssl's result. */
function handshake(
  address: string,
  cipher: string,
  extra: readonly string[] = [],
): Promise<RunResult> {
  return runProcess(
    'openssl',
    ['s_client', '-connect', address, '-tls1_2', '-cipher', cipher, ...extra],
    { timeoutMs: 20_000 },
  );
}

/** True when openssl negotiated `cipher` (TLS 1.2). */
function negotiated(r: RunResult, cipher: string): boolean {
  return r.code === 0 && r.stdout.includes(`Cipher is ${cipher}`);
}

test(
  'sidecar inbound, ingress, CA and xDS refuse CBC suites and accept AEAD; xDS refuses plaintext',
  { timeout: 120_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const pki = join(dir.path, 'pki');
    mkdirSync(pki);
    await makeCa(pki, 'edge-ca', 'Edge CA');
    await issueCert(
      pki,
      'edge-ca',
      'edge',
      'edge.example.com',
      'subjectAltName=DNS:edge.example.com',
    );
    const pem = (f: string): string => indent(readFileSync(join(pki, f), 'utf8'));
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    writeFileSync(
      join(dir.configDir, 'mesh.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: web, namespace: foo }
spec: { selector: { app: web }, ports: [{ name: http, port: ${String(appPort)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(appPort)} }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: v1
kind: Secret
metadata: { name: edge-credential, namespace: istio-system }
type: kubernetes.io/tls
stringData:
  tls.crt: |
      ${pem('edge.crt')}
  tls.key: |
      ${pem('edge.key')}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: foo }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [edge.example.com]
      tls: { mode: SIMPLE, credentialName: edge-credential }
    - port: { number: 9443, name: https-legacy, protocol: HTTPS }
      hosts: [edge.example.com]
      tls: { mode: SIMPLE, credentialName: edge-credential, cipherSuites: [${CBC}, ${AEAD}] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: foo }
spec:
  hosts: [edge.example.com]
  gateways: [edge]
  http: [{ route: [{ destination: { host: web.foo.svc.cluster.local, port: { number: ${String(appPort)} } } }] }]
`,
    );
    const control = await startControlPlane(dir.configDir, dir.caDir);
    t.after(() => control.stop());
    const sidecar = await startSidecar(control, {
      namespace: 'foo',
      name: 'web',
      instanceIp: INSTANCE_IP,
      appIp: APP_IP,
      dir: dir.path,
    });
    t.after(() => sidecar.stop());
    const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
    t.after(() => gateway.stop());
    const issued = await runPalisade([
      'ca',
      'issue',
      '--dir',
      dir.caDir,
      '--spiffe-id',
      'spiffe://cluster.local/ns/bar/sa/client',
      '--out',
      join(dir.path, 'client'),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
    const meshClient = [
      '-cert',
      join(dir.path, 'client-cert.pem'),
      '-key',
      join(dir.path, 'client-key.pem'),
      '-CAfile',
      join(dir.caDir, 'root-cert.pem'),
    ];
    const edge = ['-servername', 'edge.example.com', '-CAfile', join(pki, 'edge-ca.crt')];
    const inbound = `${INSTANCE_IP}:${String(appPort)}`;
    const ca = new URL(control.caUrl).host;
    const targets: [string, string, readonly string[]][] = [
      ['sidecar inbound (mesh mTLS)', inbound, meshClient],
      ['ingress gateway', `${GATEWAY_IP}:8443`, edge],
      ['CA', ca, []],
      ['xDS', control.xds, []],
    ];
    // Listeners bind once their config (and the SVID) arrived: wait for the AEAD handshake.
    for (const [name, address, extra] of targets) {
      const ok = await waitFor(
        async () => {
          const r = await handshake(address, AEAD, extra);
          return negotiated(r, AEAD) ? r : undefined;
        },
        30_000,
        250,
      ).catch(() => undefined);
      assert.ok(ok !== undefined, `${name} (${address}) must accept ${AEAD}`);
      const cbc = await handshake(address, CBC, extra);
      assert.ok(
        !negotiated(cbc, CBC),
        `${name} (${address}) must refuse ${CBC}:\n${cbc.stdout}\n${cbc.stderr}`,
      );
      // TLS 1.3 (all AEAD) is accepted too.
      const r13 = await runProcess(
        'openssl',
        ['s_client', '-connect', address, '-tls1_3', ...extra],
        { timeoutMs: 20_000 },
      );
      assert.match(r13.stdout, /TLSv1\.3/, `${name} speaks TLS 1.3`);
    }

    // A Gateway server that asks for a CBC suite (tls.cipherSuites) gets it; the other does not.
    const legacy = await waitFor(
      async () => {
        const r = await handshake(`${GATEWAY_IP}:9443`, CBC, edge);
        return negotiated(r, CBC) ? r : undefined;
      },
      30_000,
      250,
    ).catch(() => undefined);
    assert.ok(legacy !== undefined, 'the Gateway server listing ECDHE-ECDSA-AES128-SHA accepts it');

    // Plaintext gRPC to the xDS port: no stream, nothing sent.
    const token = await runPalisade([
      'ca',
      'token',
      '--dir',
      dir.caDir,
      '--namespace',
      'foo',
      '--service-account',
      'web',
    ]);
    const node = {
      id: `sidecar~${INSTANCE_IP}~web-0.foo~foo.svc.cluster.local`,
      metadata: { NAMESPACE: 'foo', SERVICE_ACCOUNT: 'web', WORKLOAD_NAME: 'web' },
    };
    const plain = openRawAdsStream(
      control.xds,
      grpc.credentials.createInsecure(),
      token.stdout.trim(),
      node,
    );
    plain.send(TYPE_URLS.cluster);
    const status = await waitFor(() => plain.status(), 20_000);
    plain.close();
    assert.ok(status !== undefined);
    assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
    assert.equal(plain.responses.length, 0);
    // The same request over TLS (mesh roots, control plane SPIFFE ID) is served.
    const secure = openRawAdsStream(
      control.xds,
      xdsChannelCredentials({
        rootPem: readFileSync(join(dir.caDir, 'root-cert.pem'), 'utf8'),
        trustDomain: 'cluster.local',
      }),
      token.stdout.trim(),
      node,
    );
    secure.send(TYPE_URLS.cluster);
    await waitFor(() => secure.responses.length > 0 || secure.status() !== undefined, 20_000);
    secure.close();
    assert.ok(secure.responses.length > 0, JSON.stringify(secure.status()));

    for (const p of [sidecar, gateway, control])
      assert.equal(p.child.exitCode, null, 'no process exited');
  },
);
