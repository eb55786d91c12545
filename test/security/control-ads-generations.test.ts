// Issue 15 item 5: a second ADS stream opened with a sidecar's token and node
// id, then closed, must not remove that sidecar's endpoint from the mesh (nor
// may a reconnect racing the old stream's close). The control plane keeps a
// node's streams in generation order and only the close of its last open
// stream disconnects it. Real control plane and sidecar processes; the
// attacker is a raw gRPC client. The endpoint is read from what the control
// plane pushes (the sidecar's own EDS, via its admin /config_dump) after a
// later config change has been pushed, so the check waits for an event.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { xdsChannelCredentials } from '../../src/xds/grpc-channel.js';
import { TYPE_URLS } from '../../src/xds/index.js';
import { runPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';
import { openRawAdsStream } from './ads-stream.js';

const APP_IP = '127.34.5.1';
const INSTANCE_IP = '127.34.5.2';
const WEB_EDS = 'outbound|8080||web.foo.svc.cluster.local';

interface Dump {
  configs: Record<string, { resources: Record<string, unknown>[] }>;
}

async function dump(admin: number): Promise<Dump> {
  return (await (await fetch(`http://127.0.0.1:${String(admin)}/config_dump`)).json()) as Dump;
}

function webEndpoints(d: Dump): string {
  const cla = d.configs['endpoint']?.resources.find((r) => r['cluster_name'] === WEB_EDS);
  return JSON.stringify(cla ?? null);
}

test(
  'closing a second ADS stream opened with a sidecar token and node id leaves its endpoint in the mesh',
  { timeout: 90_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    writeFileSync(
      join(dir.configDir, 'mesh.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: web, namespace: foo }
spec: { selector: { app: web }, ports: [{ name: http, port: 8080, targetPort: ${String(appPort)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(appPort)} }] }
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
    });
    t.after(() => proxy.stop());
    const proxyPid = proxy.child.pid;
    await waitFor(async () => webEndpoints(await dump(proxy.admin)).includes(INSTANCE_IP), 20_000);

    // The attacker: the sidecar's own token (stolen) and node id, on a stream of its own.
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
    assert.equal(token.code, 0, token.stderr);
    const node = {
      id: `sidecar~${INSTANCE_IP}~web-0.foo~foo.svc.cluster.local`,
      metadata: {
        NAMESPACE: 'foo',
        SERVICE_ACCOUNT: 'web',
        WORKLOAD_NAME: 'web',
        APP_ADDRESS: APP_IP,
      },
    };
    for (let round = 0; round < 2; round += 1) {
      const stream = openRawAdsStream(
        control.xds,
        xdsChannelCredentials({
          rootPem: readFileSync(join(dir.caDir, 'root-cert.pem'), 'utf8'),
          trustDomain: 'cluster.local',
        }),
        token.stdout.trim(),
        node,
      );
      stream.send(TYPE_URLS.cluster);
      // Authenticated and served: the control plane took it as a stream of this node.
      await waitFor(() => stream.responses.length > 0 || stream.status() !== undefined, 20_000);
      assert.equal(stream.status(), undefined, 'the stolen token is (still) valid for the node');
      stream.close();
    }

    // A later config change is pushed; by then any eviction the closes caused is pushed too.
    writeFileSync(
      join(dir.configDir, 'probe.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: probe, namespace: foo }
spec: { selector: { app: probe }, ports: [{ name: http, port: 8081 }] }
`,
    );
    const after = await waitFor(async () => {
      const d = await dump(proxy.admin);
      return d.configs['cluster']?.resources.some(
        (c) => c['name'] === 'outbound|8081||probe.foo.svc.cluster.local',
      )
        ? d
        : undefined;
    }, 20_000);
    assert.ok(after !== undefined);
    assert.ok(
      webEndpoints(after).includes(INSTANCE_IP),
      `web's endpoint must stay: ${webEndpoints(after)}`,
    );
    assert.equal(proxy.child.pid, proxyPid);
    assert.equal(proxy.child.exitCode, null, 'the sidecar keeps running');
  },
);
