// meshConfig.pathNormalization end to end (issue 15 item 4): a real `palisade control
// --mesh-config` compiles the level into every HttpConnectionManager, and the ingress
// gateway and a sidecar's inbound port (real `palisade proxy` processes, raw sockets)
// route, authorise and forward the same normalised path.
//
// Expected per Istio's "Authorization Policy Normalization" table (istio.io security
// best practices; pilot's path-normalization tests): MERGE_SLASHES merges `//` but
// keeps `%2F`; DECODE_AND_MERGE_SLASHES also decodes `%2F`/`%5C` before merging. A
// DENY `/admin` (exact) policy therefore denies `//admin` at both levels, and
// `/%2Fadmin` only at DECODE_AND_MERGE_SLASHES; whatever is allowed reaches the app
// with exactly the path the policy matched.
//
// Addresses: 127.40.0.0/16 only (this suite's range).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/index.js';
import {
  meshDirs,
  startIngressGateway,
  startControlPlane,
  startSidecar,
} from '../helpers/mesh-processes.js';
import { exchange, startEchoApp } from './hostile-mesh.js';

const GATEWAY_PORT = 8080;

function meshYaml(echoPort: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: sec }
spec:
  selector: { app: echo }
  ports: [{ name: http, port: ${String(echoPort)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: echo, namespace: sec }
spec: { serviceAccount: echo, labels: { app: echo }, command: node, ports: [{ name: http, port: ${String(echoPort)} }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: sec }
spec:
  selector: { matchLabels: { app: echo } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: gateway-deny-admin, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: web, namespace: sec }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: sec }
spec:
  hosts: ["*"]
  gateways: [web]
  http:
    - route: [{ destination: { host: echo.sec.svc.cluster.local, port: { number: ${String(echoPort)} } } }]
`;
}

/** [path sent, status expected, path the app receives (undefined: nothing reaches it)]. */
type Case = readonly [string, number, string | undefined];

const LEVELS: Record<string, { net: number; cases: readonly Case[] }> = {
  MERGE_SLASHES: {
    net: 1,
    cases: [
      ['/admin', 403, undefined],
      ['//admin', 403, undefined],
      ['/a/..//admin', 403, undefined],
      // `%2F` is kept at this level: not `/admin` for the policy, nor for the app.
      ['/%2Fadmin', 200, '/%2Fadmin'],
      ['/x//y///z', 200, '/x/y/z'],
    ],
  },
  DECODE_AND_MERGE_SLASHES: {
    net: 2,
    cases: [
      ['/admin', 403, undefined],
      ['//admin', 403, undefined],
      ['/%2Fadmin', 403, undefined],
      ['/%2fadmin', 403, undefined],
      ['/%5Cadmin', 403, undefined],
      ['/x%2Fy//z', 200, '/x/y/z'],
    ],
  },
};

for (const [level, { net, cases }] of Object.entries(LEVELS))
  test(`--mesh-config pathNormalization ${level}: gateway and sidecar deny and forward the normalised path`, async (t) => {
    const appIp = `127.40.${String(net)}.10`;
    const echoIp = `127.40.${String(net)}.11`;
    const gatewayIp = `127.40.${String(net)}.20`;
    const dir = await meshDirs(t);
    const app = await startEchoApp(appIp);
    t.after(() => {
      app.close();
    });
    writeFileSync(join(dir.configDir, 'mesh.yaml'), meshYaml(app.port));
    const meshConfig = join(dir.path, 'meshconfig.yaml');
    writeFileSync(meshConfig, `pathNormalization:\n  normalization: ${level}\n`);
    const control = await startControlPlane(dir.configDir, dir.caDir, [
      '--mesh-config',
      meshConfig,
    ]);
    t.after(() => control.stop());
    const gateway = await startIngressGateway(control, { ip: gatewayIp, dir: dir.path });
    t.after(() => gateway.stop());
    const echo = await startSidecar(control, {
      namespace: 'sec',
      name: 'echo',
      instanceIp: echoIp,
      appIp,
      dir: dir.path,
    });
    t.after(() => echo.stop());
    const authority = `echo.sec.svc.cluster.local:${String(app.port)}`;
    const entries = [
      { name: 'gateway', host: gatewayIp, port: GATEWAY_PORT, proc: gateway },
      { name: 'inbound', host: echoIp, port: app.port, proc: echo },
    ];
    const send = (entry: { host: string; port: number }, path: string) =>
      exchange(entry, `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    for (const entry of entries)
      await waitFor(async () => (await send(entry, '/ready')).status === 200, 40_000, 200).catch(
        (error: unknown) => {
          throw new Error(
            `${entry.name} never served: ${String(error)}\n--- control\n${control.output()}\n--- ${entry.name}\n${entry.proc.output()}`,
          );
        },
      );
    const pids = entries.map((e) => e.proc.child.pid);
    for (const entry of entries)
      for (const [path, status, forwarded] of cases) {
        const before = app.received.length;
        const r = await send(entry, path);
        const got = app.received.slice(before).map((x) => x.url);
        assert.equal(r.status, status, `${entry.name} ${path}: ${r.head}`);
        assert.deepEqual(got, forwarded === undefined ? [] : [forwarded], `${entry.name} ${path}`);
      }
    assert.deepEqual(
      entries.map((e) => e.proc.child.pid),
      pids,
    );
    for (const e of entries) assert.equal(e.proc.child.exitCode, null, e.proc.output());
  });
