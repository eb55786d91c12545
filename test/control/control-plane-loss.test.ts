// The control plane dies under load: `palisade control` and two sidecars as
// real processes, STRICT mTLS, concurrent keep-alive clients through the
// client's sidecar to the server's sidecar and its app. Partway through, the
// control plane (xDS and CA) is SIGKILLed. The proxies keep serving on their
// last good config and certificates: not one request fails.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, tempDir, waitFor } from '../helpers/index.js';
import { startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

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
    const dir = tempDir();
    t.after(dir.cleanup);
    const configDir = join(dir.path, 'config');
    const caDir = join(dir.path, 'ca');
    mkdirSync(configDir);
    assert.equal((await runPalisade(['ca', 'init', '--dir', caDir])).code, 0);
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

    const agent = new http.Agent({ keepAlive: true, maxSockets: WORKERS });
    t.after(() => {
      agent.destroy();
    });
    const authority = `web.load.svc.cluster.local:${String(port)}`;
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve) => {
        const req = http.request(
          {
            host: CLIENT_IP,
            port: client.outbound,
            path: `http://${authority}${path}`,
            headers: { host: authority },
            agent,
            timeout: 10_000,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body });
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e) => {
          resolve({ status: 0, body: e.message });
        });
        req.end();
      });

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
