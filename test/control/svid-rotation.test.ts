// SVID rotation under load: a sidecar whose certificate lives 4 s rotates it
// about every 2 s (half life) while a client keeps opening new mTLS
// connections and reusing keep-alive ones. Every request must succeed, and the
// client must see several server certificates (serials) over the run.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.0.0.71';
const INSTANCE_IP = '127.0.0.72';

test(
  'a sidecar rotating its SVID every ~2 s under load fails no request',
  { timeout: 60_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const { configDir, caDir } = dir;
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => app.close());
    const port = (app.address() as AddressInfo).port;
    writeFileSync(
      join(configDir, 'mesh.yaml'),
      `apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(port)} }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`,
    );
    const control = await startControlPlane(configDir, caDir);
    t.after(() => control.stop());
    const proxy = await startSidecar(control, {
      namespace: 'foo',
      name: 'web',
      instanceIp: INSTANCE_IP,
      appIp: APP_IP,
      dir: dir.path,
      extraArgs: ['--svid-ttl', '4s'],
    });
    t.after(() => proxy.stop());
    assert.equal(
      (
        await runPalisade([
          'ca',
          'issue',
          '--dir',
          caDir,
          '--spiffe-id',
          'spiffe://cluster.local/ns/bar/sa/client',
          '--out',
          join(dir.path, 'client'),
        ])
      ).code,
      0,
    );
    const tls = {
      ca: readFileSync(join(caDir, 'root-cert.pem')),
      cert: readFileSync(join(dir.path, 'client-cert.pem')),
      key: readFileSync(join(dir.path, 'client-key.pem')),
      // The server is identified by its SPIFFE ID, not a DNS name.
      checkServerIdentity: () => undefined,
    };
    const fresh = new https.Agent({ ...tls, keepAlive: false });
    const pooled = new https.Agent({ ...tls, keepAlive: true, maxSockets: 2 });
    t.after(() => {
      fresh.destroy();
      pooled.destroy();
    });
    const call = (agent: https.Agent): Promise<{ status: number; serial: string }> =>
      new Promise((resolve) => {
        const req = https.get(
          { host: INSTANCE_IP, port, path: '/', agent, timeout: 5000 },
          (res) => {
            const socket = res.socket;
            const serial =
              socket instanceof TLSSocket ? socket.getPeerCertificate().serialNumber : '';
            res.resume();
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, serial });
            });
          },
        );
        req.on('error', () => {
          resolve({ status: 0, serial: '' });
        });
        req.on('timeout', () => {
          req.destroy();
        });
      });
    await waitFor(async () => ((await call(fresh)).status === 200 ? true : undefined), 20_000);

    const serials = new Set<string>();
    const failures: number[] = [];
    let requests = 0;
    const deadline = Date.now() + 9000;
    const worker = async (agent: https.Agent): Promise<void> => {
      while (Date.now() < deadline && requests < 5000) {
        requests += 1;
        const r = await call(agent);
        if (r.status !== 200) failures.push(r.status);
        else serials.add(r.serial);
      }
    };
    await Promise.all([worker(fresh), worker(fresh), worker(pooled), worker(pooled)]);
    assert.deepEqual(
      failures,
      [],
      `${String(failures.length)} of ${String(requests)} requests failed`,
    );
    assert.ok(
      serials.size >= 3,
      `the server certificate should rotate several times in 9 s (saw ${String(serials.size)} serials over ${String(requests)} requests)`,
    );
  },
);
