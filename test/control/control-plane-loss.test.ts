// The control plane dies under load: `palisade control` and two sidecars as
// real processes, STRICT mTLS, concurrent keep-alive clients through the
// client's sidecar to the server's sidecar and its app. Partway through, the
// control plane (xDS and CA) is SIGKILLed. The proxies keep serving on their
// last good config and certificates: not one request fails.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/index.js';
import { proxyClient } from '../proxy/ads-server.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.0.0.121';
const SERVER_IP = '127.0.0.122';
const CLIENT_IP = '127.0.0.123';
const WORKERS = 8;
const REQUESTS = 600;
const KILL_AFTER = 150;

function mesh(port: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: web, namespace: load }
spec:
  selector: { app: web }
  ports: [{ name: http, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: load }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(port)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: client, namespace: load }
spec: { serviceAccount: client, labels: { app: client }, command: node, ports: [{ name: http, port: 18081 }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`;
}

test(
  'control plane SIGKILLed under concurrent load: no request fails',
  { timeout: 120_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const { configDir, caDir } = dir;
    const app = http.createServer((req, res) => {
      res.end(`web ${req.url ?? ''} from ${String(req.headers['x-forwarded-client-cert'])}`);
    });
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => {
      app.closeAllConnections();
      app.close();
    });
    const port = (app.address() as AddressInfo).port;
    writeFileSync(join(configDir, 'mesh.yaml'), mesh(port));

    const control = await startControlPlane(configDir, caDir);
    t.after(() => control.stop());
    const sidecar = async (name: string, instanceIp: string) => {
      const proc = await startSidecar(control, {
        namespace: 'load',
        name,
        instanceIp,
        appIp: APP_IP,
        dir: dir.path,
      });
      t.after(() => proc.stop());
      return proc;
    };
    const server = await sidecar('web', SERVER_IP);
    const client = await sidecar('client', CLIENT_IP);

    const proxy = proxyClient(client.outbound, CLIENT_IP);
    t.after(() => {
      proxy.close();
    });
    const authority = `web.load.svc.cluster.local:${String(port)}`;
    const get = (path: string): Promise<{ status: number; body: string }> =>
      proxy
        .get(`http://${authority}${path}`, { host: authority })
        .catch((error: unknown) => ({ status: 0, body: String(error) }));

    // Both sidecars need their SVIDs and config first.
    await waitFor(async () => (await get('/warm')).status === 200, 30_000, 250);
    const first = await get('/first');
    assert.equal(first.body, `web /first from URI=spiffe://cluster.local/ns/load/sa/client`);

    let issued = 0;
    let completed = 0;
    let afterKill = 0;
    let killed = false;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (issued < REQUESTS) {
        issued += 1;
        const r = await get(`/load/${String(issued)}`);
        completed += 1;
        if (killed) afterKill += 1;
        if (r.status !== 200) failures.push(`${String(r.status)} ${r.body}`);
        if (completed === KILL_AFTER && !killed) {
          killed = true;
          control.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));

    assert.ok(killed, 'the control plane was killed mid-traffic');
    assert.equal(failures.length, 0, `failed requests: ${failures.slice(0, 5).join('; ')}`);
    assert.equal(completed, REQUESTS);
    assert.ok(
      afterKill >= REQUESTS - KILL_AFTER - WORKERS,
      `only ${String(afterKill)} after the kill`,
    );
    await waitFor(() => control.child.exitCode !== null || control.child.signalCode !== null);
    // Both proxies know they lost the control plane and still serve.
    for (const proxy of [client, server]) {
      const dump = (await (
        await fetch(`http://127.0.0.1:${String(proxy.admin)}/config_dump`)
      ).json()) as { connected: boolean };
      assert.equal(dump.connected, false);
    }
    assert.equal((await get('/after')).status, 200);
  },
);
