// CUSTOM AuthorizationPolicy with an envoyExtAuthzHttp provider, through real processes:
// `palisade control --mesh-config` (meshConfig extensionProviders) and a sidecar, with an
// ext_authz HTTP server written here. Behaviour checked against Istio's "External
// Authorization" task (istio.io/latest/docs/tasks/security/authorization/authz-custom/) and
// Envoy's ext_authz HTTP service docs: 200 allows and headersToUpstreamOnAllow reach the
// app; any other status is relayed with the provider's body and headersToDownstreamOnDeny;
// a provider that cannot be reached denies with statusOnError (403) when failOpen is false;
// requests no CUSTOM rule matches never reach the provider; a CUSTOM policy naming an
// unknown provider denies. The proxy's PID is the same after every request.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { extAuthzGrpcTypes } from '../../src/proxy/filters/authz/ext-authz-grpc.js';
import { waitFor } from '../helpers/index.js';
import {
  meshDirs,
  startControlPlane,
  startIngressGateway,
  startSidecar,
} from '../helpers/mesh-processes.js';

// This suite's loopback range (127.39.0.0/16).
const APP_IP = '127.39.0.1';
const INSTANCE_IP = '127.39.0.2';
const AUTHZ_IP = '127.39.0.3';

function mesh(port: number, provider: string): string {
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
kind: AuthorizationPolicy
metadata: { name: ext-authz, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: CUSTOM
  provider: { name: ${provider} }
  rules: [{ to: [{ operation: { paths: ["/headers*"] } }] }]
`;
}

const meshConfig = (authzPort: number): string => `apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |-
    extensionProviders:
      - name: sample-ext-authz-http
        envoyExtAuthzHttp:
          service: ${AUTHZ_IP}
          port: "${String(authzPort)}"
          timeout: 5s
          pathPrefix: /check
          includeRequestHeadersInCheck: [x-ext-authz]
          headersToUpstreamOnAllow: [x-ext-authz-check-result]
          headersToDownstreamOnDeny: [x-ext-authz-check-result]
`;

/**
 * An `envoy.service.auth.v3.Authorization/Check` server (Envoy's ext_authz v3 gRPC
 * protocol) on AUTHZ_IP, answering with `onCheck`; stopped after the test or by `stop()`.
 */
async function startCheckServer(
  t: TestContext,
  onCheck: (request: Record<string, unknown>, callback: grpc.sendUnaryData<object>) => void,
): Promise<{ port: number; stop: () => void }> {
  const { request, response } = await extAuthzGrpcTypes();
  const server = new grpc.Server();
  server.addService(
    {
      Check: {
        path: '/envoy.service.auth.v3.Authorization/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: object) =>
          Buffer.from(request.encode(request.fromObject(v)).finish()),
        requestDeserialize: (b: Buffer) =>
          request.toObject(request.decode(b), { longs: Number }) as Record<string, unknown>,
        responseSerialize: (v: object) =>
          Buffer.from(response.encode(response.fromObject(v)).finish()),
        responseDeserialize: (b: Buffer) => response.toObject(response.decode(b)),
      },
    },
    {
      Check: (
        call: grpc.ServerUnaryCall<Record<string, unknown>, object>,
        callback: grpc.sendUnaryData<object>,
      ) => {
        onCheck(call.request, callback);
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${AUTHZ_IP}:0`, grpc.ServerCredentials.createInsecure(), (error, p) => {
      if (error === null) resolve(p);
      else reject(error);
    });
  });
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    server.forceShutdown();
  };
  t.after(stop);
  return { port, stop };
}

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return getFrom(INSTANCE_IP, port, path, headers);
}

function getFrom(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

test('CUSTOM with an envoyExtAuthzHttp provider: allow, deny, provider down, unknown provider', async (t) => {
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
  // The sample ext_authz server of Istio's task: allows when `x-ext-authz: allow`.
  const checks: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const authz = http.createServer((req, res) => {
    checks.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.headers['x-ext-authz'] === 'allow') {
      res.writeHead(200, { 'x-ext-authz-check-result': 'allowed', 'x-not-listed': 'secret' });
      res.end();
    } else {
      res.writeHead(401, { 'x-ext-authz-check-result': 'denied', 'x-not-listed': 'secret' });
      res.end('denied by ext_authz');
    }
  });
  await new Promise<void>((resolve) => authz.listen(0, AUTHZ_IP, resolve));
  t.after(() => {
    authz.closeAllConnections();
    authz.close();
  });
  const authzPort = (authz.address() as AddressInfo).port;
  const port = (app.address() as AddressInfo).port;
  writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(port, 'sample-ext-authz-http'));
  const meshFile = join(dir.path, 'meshconfig.yaml');
  writeFileSync(meshFile, meshConfig(authzPort));

  const control = await startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', meshFile]);
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

  await waitFor(async () => (await get(port, '/ip')).status === 200, 20_000).catch(
    (error: unknown) => {
      throw new Error(
        `no 200 through the sidecar: ${String(error)}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
      );
    },
  );
  // No CUSTOM rule matches /ip: the provider is not asked.
  assert.equal(checks.length, 0);

  const allowed = await get(port, '/headers?a=1', { 'x-ext-authz': 'allow', 'x-other': 'o' });
  assert.equal(allowed.status, 200, allowed.body);
  assert.equal(allowed.body, 'app /headers?a=1');
  assert.equal(seen.at(-1)?.['x-ext-authz-check-result'], 'allowed');
  assert.equal(seen.at(-1)?.['x-not-listed'], undefined);
  // The check request: the client's method, pathPrefix + path, the listed headers only.
  const check = checks.at(-1);
  assert.ok(check !== undefined);
  assert.equal(check.method, 'GET');
  assert.equal(check.url, '/check/headers?a=1');
  assert.equal(check.headers['x-ext-authz'], 'allow');
  assert.equal(check.headers['x-other'], undefined);

  const denied = await get(port, '/headers', { 'x-ext-authz': 'deny' });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, 'denied by ext_authz');
  assert.equal(denied.headers['x-ext-authz-check-result'], 'denied');
  assert.equal(denied.headers['x-not-listed'], undefined);
  const appRequests = seen.length;

  // Provider down (failOpen false): statusOnError, 403 by default; the app is not reached.
  authz.closeAllConnections();
  await new Promise<void>((resolve) => {
    authz.close(() => {
      resolve();
    });
  });
  const down = await get(port, '/headers', { 'x-ext-authz': 'allow' });
  assert.equal(down.status, 403);
  assert.equal(seen.length, appRequests);
  assert.equal((await get(port, '/ip')).status, 200);

  // A CUSTOM policy naming a provider meshConfig does not define denies what it matches.
  writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(port, 'no-such-provider'));
  await waitFor(
    async () =>
      (await get(port, '/headers', { 'x-ext-authz': 'allow' })).body === 'RBAC: access denied',
    20_000,
  );
  assert.equal((await get(port, '/headers')).status, 403);
  assert.equal((await get(port, '/ip')).status, 200);
  assert.equal(proxy.child.pid, pid);
  assert.equal(proxy.child.exitCode, null);
});

// envoyExtAuthzGrpc: the Envoy ext_authz v3 gRPC protocol (envoy.service.auth.v3.Authorization/
// Check), served here with @grpc/grpc-js. status.code OK allows and ok_response.headers reach the
// app; a denial returns denied_response's status, headers and body; a provider that cannot be
// reached denies with 403 (failOpen false).
test('CUSTOM with an envoyExtAuthzGrpc provider: Check allows with headers, denies with its status, down → 403', async (t) => {
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
  const checks: Record<string, unknown>[] = [];
  const server = await startCheckServer(t, (request, callback) => {
    checks.push(request);
    const attributes = request['attributes'] as {
      request: { http: { headers: Record<string, string> } };
    };
    if (attributes.request.http.headers['x-ext-authz'] === 'allow')
      callback(null, {
        status: { code: 0 },
        ok_response: {
          headers: [{ header: { key: 'x-ext-authz-check-result', value: 'allowed' } }],
        },
      });
    else
      callback(null, {
        status: { code: 7 },
        denied_response: {
          status: { code: 401 },
          headers: [{ header: { key: 'x-ext-authz-check-result', value: 'denied' } }],
          body: 'denied by ext_authz grpc',
        },
      });
  });
  const grpcPort = server.port;
  const port = (app.address() as AddressInfo).port;
  writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(port, 'sample-ext-authz-grpc'));
  const meshFile = join(dir.path, 'meshconfig.yaml');
  writeFileSync(
    meshFile,
    `extensionProviders:
  - name: sample-ext-authz-grpc
    envoyExtAuthzGrpc: { service: ${AUTHZ_IP}, port: ${String(grpcPort)}, timeout: 5s }
`,
  );
  const control = await startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', meshFile]);
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
  await waitFor(async () => (await get(port, '/ip')).status === 200, 20_000).catch(
    (error: unknown) => {
      throw new Error(
        `no 200 through the sidecar: ${String(error)}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
      );
    },
  );
  assert.equal(checks.length, 0);
  const allowed = await get(port, '/headers?x=1', { 'x-ext-authz': 'allow' });
  assert.equal(allowed.status, 200, allowed.body);
  assert.equal(seen.at(-1)?.['x-ext-authz-check-result'], 'allowed');
  const http1 = (checks.at(-1)?.['attributes'] as { request: { http: Record<string, unknown> } })
    .request.http;
  assert.equal(http1['method'], 'GET');
  assert.equal(http1['path'], '/headers?x=1');

  const denied = await get(port, '/headers', { 'x-ext-authz': 'deny' });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, 'denied by ext_authz grpc');
  assert.equal(denied.headers['x-ext-authz-check-result'], 'denied');

  server.stop();
  const down = await get(port, '/headers', { 'x-ext-authz': 'allow' });
  assert.equal(down.status, 403);
  assert.equal((await get(port, '/ip')).status, 200);
  assert.equal(proxy.child.pid, pid);
  assert.equal(proxy.child.exitCode, null);
});

const GATEWAY_IP = '127.39.0.10';
const BACKEND_IP = '127.39.0.11';

// Istio's "External Authorization" task applies CUSTOM at the ingress gateway too: the
// gateway relays the provider's denial and forwards headersToUpstreamOnAllow.
test('ingress gateway: CUSTOM with an envoyExtAuthzHttp provider before routing', async (t) => {
  const dir = await meshDirs(t);
  const seen: http.IncomingHttpHeaders[] = [];
  const backend = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end(`backend ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => backend.listen(0, BACKEND_IP, resolve));
  t.after(() => {
    backend.closeAllConnections();
    backend.close();
  });
  const authz = http.createServer((req, res) => {
    const ok = req.headers['x-ext-authz'] === 'allow';
    res.writeHead(ok ? 200 : 403, { 'x-ext-authz-check-result': ok ? 'allowed' : 'denied' });
    res.end(ok ? '' : 'denied at the edge');
  });
  await new Promise<void>((resolve) => authz.listen(0, AUTHZ_IP, resolve));
  t.after(() => {
    authz.closeAllConnections();
    authz.close();
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
metadata: { name: ext-authz, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: CUSTOM
  provider: { name: edge-authz }
  rules: [{ to: [{ operation: { paths: ["/private*"] } }] }]
`,
  );
  const meshFile = join(dir.path, 'meshconfig.yaml');
  writeFileSync(
    meshFile,
    `extensionProviders:
  - name: edge-authz
    envoyExtAuthzHttp:
      service: ${AUTHZ_IP}
      port: ${String((authz.address() as AddressInfo).port)}
      includeRequestHeadersInCheck: [x-ext-authz]
      headersToUpstreamOnAllow: [x-ext-authz-check-result]
      headersToDownstreamOnDeny: [x-ext-authz-check-result]
`,
  );
  const control = await startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', meshFile]);
  t.after(() => control.stop());
  const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
  t.after(() => gateway.stop());
  const pid = gateway.child.pid;
  const edge = (path: string, headers: Record<string, string> = {}) =>
    getFrom(GATEWAY_IP, 8080, path, headers);
  await waitFor(async () => (await edge('/public')).status === 200, 20_000).catch(
    (error: unknown) => {
      throw new Error(
        `no 200 through the gateway: ${String(error)}\n--- control\n${control.output()}\n--- gateway\n${gateway.output()}`,
      );
    },
  );
  const ok = await edge('/private/a', { 'x-ext-authz': 'allow' });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(seen.at(-1)?.['x-ext-authz-check-result'], 'allowed');
  const no = await edge('/private/a');
  assert.equal(no.status, 403);
  assert.equal(no.body, 'denied at the edge');
  assert.equal(no.headers['x-ext-authz-check-result'], 'denied');
  assert.equal(gateway.child.pid, pid);
  assert.equal(gateway.child.exitCode, null);
});

const TCP_APP_IP = '127.39.0.20';
const TCP_INSTANCE_IP = '127.39.0.21';

/** Sends `line` over plain TCP and returns what came back before the peer closed (or 3 s). */
function echo(port: number, line: string): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: TCP_INSTANCE_IP, port });
    let data = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => {
      done(false);
    }, 3_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(line));
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) done(false);
    });
    socket.on('close', () => {
      done(true);
    });
    socket.on('error', () => {
      done(true);
    });
  });
}

// Istio builds envoy.filters.network.ext_authz for an envoyExtAuthzGrpc provider on TCP ports
// (extauthz.go generateGRPCConfig): the CheckRequest carries the peers and no request; a
// denial, or a provider that cannot be reached with failOpen false, closes the connection.
test('CUSTOM on a TCP port with an envoyExtAuthzGrpc provider: the network ext_authz filter decides each connection', async (t) => {
  const dir = await meshDirs(t);
  const apps = [0, 1].map(() =>
    net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    }),
  );
  const ports: number[] = [];
  for (const app of apps) {
    await new Promise<void>((resolve) => app.listen(0, TCP_APP_IP, resolve));
    ports.push((app.address() as AddressInfo).port);
    t.after(() => app.close());
  }
  const [checked = 0, unchecked = 0] = ports;
  const checks: Record<string, unknown>[] = [];
  let verdict: 'allow' | 'deny' = 'allow';
  const server = await startCheckServer(t, (request, callback) => {
    checks.push(request);
    callback(null, { status: { code: verdict === 'allow' ? 0 : 7 } });
  });
  const grpcPort = server.port;
  writeFileSync(
    join(dir.configDir, 'mesh.yaml'),
    `apiVersion: v1
kind: Service
metadata: { name: tcp-echo, namespace: foo }
spec:
  selector: { app: tcp-echo }
  ports:
    - { name: tcp-a, port: ${String(checked)} }
    - { name: tcp-b, port: ${String(unchecked)} }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: tcp-echo, namespace: foo }
spec:
  serviceAccount: tcp-echo
  labels: { app: tcp-echo }
  command: node
  ports:
    - { name: tcp-a, port: ${String(checked)} }
    - { name: tcp-b, port: ${String(unchecked)} }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-authz-tcp, namespace: foo }
spec:
  selector: { matchLabels: { app: tcp-echo } }
  action: CUSTOM
  provider: { name: sample-ext-authz-grpc }
  rules: [{ to: [{ operation: { ports: ["${String(checked)}"] } }] }]
`,
  );
  const meshFile = join(dir.path, 'meshconfig.yaml');
  writeFileSync(
    meshFile,
    `extensionProviders:
  - name: sample-ext-authz-grpc
    envoyExtAuthzGrpc: { service: ${AUTHZ_IP}, port: ${String(grpcPort)}, timeout: 2s }
`,
  );
  const control = await startControlPlane(dir.configDir, dir.caDir, ['--mesh-config', meshFile]);
  t.after(() => control.stop());
  const proxy = await startSidecar(control, {
    namespace: 'foo',
    name: 'tcp-echo',
    instanceIp: TCP_INSTANCE_IP,
    appIp: TCP_APP_IP,
    dir: dir.path,
    metadata: { PROXY_TYPE: 'sidecar' },
  });
  t.after(() => proxy.stop());
  const pid = proxy.child.pid;
  await waitFor(async () => (await echo(unchecked, 'ping\n')).data === 'ping\n', 20_000).catch(
    async (error: unknown) => {
      throw new Error(
        `no echo through the sidecar: ${String(error)} ${JSON.stringify(await echo(unchecked, 'ping\n'))}\n--- control\n${control.output()}\n--- proxy\n${proxy.output()}`,
      );
    },
  );
  // No CUSTOM rule matches the other port: the provider is never asked.
  assert.equal(checks.length, 0);

  const allowed = await echo(checked, 'hello\n');
  assert.equal(allowed.data, 'hello\n');
  assert.equal(checks.length, 1);
  const attributes = checks[0]?.['attributes'] as {
    source: { address: { socket_address: { address: string } } };
    destination: { address: { socket_address: { port_value: number } } };
    request?: unknown;
  };
  assert.equal(attributes.source.address.socket_address.address, '127.0.0.1');
  assert.deepEqual(attributes.destination.address.socket_address, {
    address: TCP_INSTANCE_IP,
    port_value: checked,
  });
  assert.equal(attributes.request, undefined, 'a network check carries no request');

  verdict = 'deny';
  const denied = await echo(checked, 'hello\n');
  assert.deepEqual(denied, { data: '', closed: true });
  assert.equal(checks.length, 2);

  server.stop();
  const down = await echo(checked, 'hello\n');
  assert.deepEqual(down, { data: '', closed: true }, 'failOpen false: a dead provider closes');
  assert.equal((await echo(unchecked, 'still\n')).data, 'still\n');
  assert.equal(proxy.child.pid, pid);
  assert.equal(proxy.child.exitCode, null);
});
