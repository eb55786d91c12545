// Issue 15 item 10: a proxy re-reads its service-account token file at every
// certificate renewal. Kubernetes projected tokens are short-lived and the
// kubelet rewrites the file before they expire ("Launch a Pod using service
// account token projection": "The application is responsible for reloading
// the token when it rotates"); a renewal that kept the start-up token would
// fail once that token expired. Here the file is first replaced with a token
// the CA rejects (so the renewal must fail — proof the file was read again),
// then with a fresh valid token (so the next renewal must succeed with it).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.34.10.1';
const INSTANCE_IP = '127.34.10.2';

async function serial(adminPort: number): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${String(adminPort)}/certs`);
  const body = (await res.json()) as {
    certificates: { cert_chain: { serial_number: string }[] }[];
  };
  return body.certificates[0]?.cert_chain[0]?.serial_number;
}

test(
  'SVID renewal uses the token file as it is now, not the token read at start-up',
  { timeout: 90_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => app.close());
    const port = (app.address() as AddressInfo).port;
    writeFileSync(
      join(dir.configDir, 'mesh.yaml'),
      `apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(port)} }] }
`,
    );
    const control = await startControlPlane(dir.configDir, dir.caDir);
    t.after(() => control.stop());
    const proxy = await startSidecar(control, {
      namespace: 'foo',
      name: 'web',
      instanceIp: INSTANCE_IP,
      appIp: APP_IP,
      dir: dir.path,
      // Renewal at about half life: every ~2 s.
      extraArgs: ['--svid-ttl', '4s'],
    });
    t.after(() => proxy.stop());
    const tokenFile = join(dir.path, 'web.token');
    const first = await waitFor(() => serial(proxy.admin), 20_000);

    // A token the CA refuses: the next renewal must present it and fail.
    writeFileSync(tokenFile, 'rotated.not-a.token');
    await waitFor(
      () =>
        proxy
          .output()
          .split('\n')
          .some((line) => line.includes('CA request failed') && line.includes('token')),
      30_000,
      100,
    );
    const during = await serial(proxy.admin);

    // A fresh valid token: the retry must use it and install a new certificate.
    const fresh = await runPalisade([
      'ca',
      'token',
      '--dir',
      dir.caDir,
      '--namespace',
      'foo',
      '--service-account',
      'web',
    ]);
    assert.equal(fresh.code, 0, fresh.stderr);
    writeFileSync(tokenFile, fresh.stdout.trim());
    const after = await waitFor(async () => {
      const s = await serial(proxy.admin);
      return s !== undefined && s !== during ? s : undefined;
    }, 30_000);
    assert.notEqual(after, first);
  },
);
