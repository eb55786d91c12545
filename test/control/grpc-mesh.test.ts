// gRPC across the mesh with real processes: `palisade control` and two
// sidecars (`palisade proxy`), STRICT mTLS and an AuthorizationPolicy. The
// test is the client app: @grpc/grpc-js with `grpc_proxy` pointing at the
// client's sidecar (CONNECT, then h2c). The client sidecar speaks HTTP/2 over
// mTLS (ALPN h2, secure naming) to the server's sidecar, which checks the
// policy per call and reaches the gRPC app over h2c. A call the policy denies
// fails with PERMISSION_DENIED "RBAC: access denied" and never reaches the app.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../helpers/index.js';
import {
  meshDirs,
  startControlPlane,
  startSidecar,
  type SidecarProcess,
} from '../helpers/mesh-processes.js';
import {
  EchoClientConstructor,
  echoCall,
  startEchoBackend,
  type EchoClient,
} from '../helpers/grpc-echo.js';

const APP_IP = '127.0.0.101';
const ECHO_IP = '127.0.0.102';
const CLIENT_IP = '127.0.0.103';

function mesh(port: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: grpc }
spec:
  selector: { app: echo }
  ports: [{ name: grpc, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: echo, namespace: grpc }
spec:
  serviceAccount: echo
  labels: { app: echo }
  command: node
  ports: [{ name: grpc, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: client, namespace: grpc }
spec: { serviceAccount: client, labels: { app: client }, command: node, ports: [{ name: http, port: 18080 }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-only, namespace: grpc }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/grpc/sa/client"] } }]
      to: [{ operation: { paths: ["/palisade.test.Echo/Echo"] } }]
`;
}

test(
  'gRPC through two sidecars over mTLS (HTTP/2 end to end) with an AuthorizationPolicy per method',
  { timeout: 90_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const { configDir, caDir } = dir;
    const echo = await startEchoBackend('echo-app', { host: APP_IP });
    t.after(() => echo.close());
    writeFileSync(join(configDir, 'mesh.yaml'), mesh(echo.port));

    const control = await startControlPlane(configDir, caDir);
    t.after(() => control.stop());
    const sidecar = async (name: string, instanceIp: string): Promise<SidecarProcess> => {
      const proc = await startSidecar(control, {
        namespace: 'grpc',
        name,
        instanceIp,
        appIp: APP_IP,
        dir: dir.path,
      });
      t.after(() => proc.stop());
      return proc;
    };
    const server = await sidecar('echo', ECHO_IP);
    const client = await sidecar('client', CLIENT_IP);

    const saved = process.env['grpc_proxy'];
    process.env['grpc_proxy'] = `http://${CLIENT_IP}:${String(client.outbound)}`;
    const stub = new EchoClientConstructor(
      `echo.grpc.svc.cluster.local:${String(echo.port)}`,
      grpc.credentials.createInsecure(),
    ) as unknown as EchoClient;
    if (saved === undefined) delete process.env['grpc_proxy'];
    else process.env['grpc_proxy'] = saved;
    t.after(() => {
      stub.close();
    });

    // Both sidecars need their certificates and config first.
    const first = await waitFor(
      async () => {
        const r = await echoCall(stub, {}, 2000);
        return r.code === grpc.status.OK ? r : undefined;
      },
      30_000,
      250,
    );
    assert.ok(first !== undefined);
    assert.equal(first.server, 'echo-app');
    assert.equal(
      first.reply?.headers?.['x-forwarded-client-cert'],
      'URI=spiffe://cluster.local/ns/grpc/sa/client',
      'the app sees the verified client identity',
    );

    const callsBefore = echo.calls;
    const denied = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const stream = stub.Count({ n: 3 }, new grpc.Metadata());
      stream.on('data', () => {
        reject(new Error('a denied call got a message'));
      });
      stream.on('error', resolve);
    });
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    assert.equal(denied.details, 'RBAC: access denied');
    assert.equal(echo.calls, callsBefore, 'a denied call reached the app');

    for (let i = 0; i < 10; i += 1)
      assert.equal((await echoCall(stub)).code, grpc.status.OK, `call ${String(i)}`);

    // The server's sidecar reports the calls as Istio does: gRPC over mTLS, status from trailers.
    const metrics = await (
      await fetch(`http://127.0.0.1:${String(server.admin)}/stats/prometheus`)
    ).text();
    const lines = metrics.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    const with_ = (...labels: string[]): string[] =>
      lines.filter((l) => labels.every((label) => l.includes(label)));
    assert.equal(
      with_(
        'reporter="destination"',
        'request_protocol="grpc"',
        'grpc_response_status="0"',
        'connection_security_policy="mutual_tls"',
        'source_principal="spiffe://cluster.local/ns/grpc/sa/client"',
      ).length,
      1,
      metrics,
    );
    assert.equal(with_('reporter="destination"', 'grpc_response_status="7"').length, 1);
    assert.match(server.output(), /"protocol":"HTTP\/2"/, 'the sidecar hop is HTTP/2');
  },
);
