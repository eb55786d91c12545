/**
 * A CUSTOM AuthorizationPolicy's external authorizer answering hostile, through
 * a real control plane and sidecar (test/policy/ext-authz.test.ts has the
 * well-behaved cases). Envoy's ext_authz contract: a failed check (connection
 * reset, timeout, an answer that does not parse, a body over the limit) is an
 * error and denies with statusOnError unless failure_mode_allow; a parsed
 * non-OK answer always denies. So with failOpen false nothing hostile reaches
 * the app; with failOpen true the errors do and the denials still do not. The
 * sidecar's PID is the same throughout.
 * - HTTP provider (failOpen false): a raw TCP server answering redirects,
 *   oversized bodies and heads, a body slower than the timeout, a reset in
 *   the middle of the body, control characters in a header, a garbage status
 *   line, a broken chunked body.
 * - gRPC provider (failOpen true): a raw HTTP/2 server answering a CheckResponse
 *   that is not protobuf, a wrong content-type, a reset stream, a denial
 *   whose header values carry control and non-Latin-1 characters, a denial
 *   with an out-of-range status, and 2,000 headers to add on allow.
 * Loopback 127.38.6.0/24.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { extAuthzGrpcTypes } from '../../src/proxy/filters/authz/ext-authz-grpc.js';
import { waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.38.6.1';
const INSTANCE_IP = '127.38.6.2';
const AUTHZ_IP = '127.38.6.3';

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
  rules: [{ to: [{ operation: { paths: ["/x/*"] } }] }]
`;
}

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: INSTANCE_IP, port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error(`timeout on ${path}`)));
  });
}

async function startApp(t: TestContext): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const app = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end(`app ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  return { port: (app.address() as AddressInfo).port, seen };
}

async function startMesh(
  t: TestContext,
  appPort: number,
  provider: string,
  meshConfig: string,
): Promise<{ pid: number | undefined; alive: () => void; output: () => string }> {
  const dir = await meshDirs(t);
  writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(appPort, provider));
  const meshFile = join(dir.path, 'meshconfig.yaml');
  writeFileSync(meshFile, meshConfig);
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
  await waitFor(async () => (await get(appPort, '/ip')).status === 200, 20_000).catch(
    (error: unknown) => {
      throw new Error(`no 200 through the sidecar: ${String(error)}\n${proxy.output()}`);
    },
  );
  const pid = proxy.child.pid;
  return {
    pid,
    output: () => proxy.output(),
    alive: () => {
      assert.equal(proxy.child.exitCode, null, `sidecar exited:\n${proxy.output()}`);
      assert.equal(proxy.child.pid, pid);
    },
  };
}

/** HTTP/1.1 answers per mode (the check path is /check/x/<mode>). */
const HTTP_ANSWERS: Record<string, (s: net.Socket) => void> = {
  redirect: (s) =>
    s.end(
      'HTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    ),
  bigbody: (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n');
    s.end(Buffer.alloc(1048576, 0x61));
  },
  bighead: (s) =>
    s.end(
      `HTTP/1.1 200 OK\r\nx-ext-authz-check-result: ${'a'.repeat(100_000)}\r\nContent-Length: 0\r\n\r\n`,
    ),
  slowbody: (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\na');
    const timer = setInterval(() => {
      if (!s.destroyed) s.write('a');
    }, 1000);
    s.on('close', () => {
      clearInterval(timer);
    });
    setTimeout(() => s.destroy(), 8000);
  },
  reset: (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
    setTimeout(() => s.resetAndDestroy(), 50);
  },
  resetbeforehead: (s) => {
    s.resetAndDestroy();
  },
  ctlchar: (s) =>
    s.end(
      'HTTP/1.1 200 OK\r\nx-ext-authz-check-result: a\x01b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    ),
  garbage: (s) => s.end('HTTP/1.1 2000 WHAT\r\n\x00\x01\x02\r\n\r\n'),
  notHttp: (s) => s.end('SSH-2.0-OpenSSH_9.6\r\n'),
  badchunk: (s) =>
    s.end(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnope\r\n',
    ),
};

test('HTTP ext_authz answering hostile: every request is denied (failOpen false), the sidecar lives', async (t) => {
  const app = await startApp(t);
  const sockets = new Set<net.Socket>();
  const authz = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const mode = /^\w+ \/check\/x\/(\w+)/.exec(head)?.[1] ?? '';
      const answer = HTTP_ANSWERS[mode];
      if (answer !== undefined) answer(s);
      else s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => authz.listen(0, AUTHZ_IP, resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    authz.close();
  });
  const authzPort = (authz.address() as AddressInfo).port;
  const { alive } = await startMesh(
    t,
    app.port,
    'hostile-http',
    `extensionProviders:
  - name: hostile-http
    envoyExtAuthzHttp:
      service: ${AUTHZ_IP}
      port: "${String(authzPort)}"
      timeout: 2s
      pathPrefix: /check
      headersToUpstreamOnAllow: [x-ext-authz-check-result]
      headersToDownstreamOnDeny: [x-ext-authz-check-result]
`,
  );
  // The well-behaved answer allows: the provider is wired.
  const ok = await get(app.port, '/x/ok');
  assert.equal(ok.status, 200, ok.body);
  const reached = app.seen.length;
  for (const mode of Object.keys(HTTP_ANSWERS)) {
    const r = await get(app.port, `/x/${mode}`);
    if (mode === 'redirect') {
      // A parsed non-200 answer is a denial with that status; Location is not a listed header.
      assert.equal(r.status, 302, `${mode}: ${r.body}`);
      assert.equal(r.headers.location, undefined);
    } else assert.equal(r.status, 403, `${mode}: ${String(r.status)} ${r.body.slice(0, 80)}`);
    assert.doesNotMatch(r.body, /^app /, mode);
    alive();
  }
  assert.equal(app.seen.length, reached, `reached the app: ${app.seen.slice(reached).join(' ')}`);
  assert.equal((await get(app.port, '/x/ok')).status, 200);
  alive();
});

/** gRPC answers per mode, written by hand on HTTP/2 (the mode is the request path's last segment). */
function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, Buffer.from(message)]);
}

test('gRPC ext_authz answering hostile: errors fail open (failOpen true), denials still deny, the sidecar lives', async (t) => {
  const app = await startApp(t);
  const { request, response } = await extAuthzGrpcTypes();
  const encode = (v: object): Uint8Array => response.encode(response.fromObject(v)).finish();
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const check = request.toObject(request.decode(body.subarray(5))) as {
        attributes?: { request?: { http?: { path?: string } } };
      };
      const mode = /\/x\/(\w+)/.exec(check.attributes?.request?.http?.path ?? '')?.[1] ?? 'ok';
      const reply = (message: Uint8Array, headers: http2.OutgoingHttpHeaders = {}): void => {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', ...headers },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => {
          stream.sendTrailers({ 'grpc-status': '0' });
        });
        stream.end(grpcFrame(message));
      };
      switch (mode) {
        case 'notproto':
          reply(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
          return;
        case 'wrongtype':
          stream.respond({ ':status': 200, 'content-type': 'text/html' });
          stream.end('<html>hello</html>');
          return;
        case 'reset':
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.write(Buffer.from([0, 0, 0, 0, 50, 0x0a]));
          setTimeout(() => {
            stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          }, 20);
          return;
        case 'denyctl':
          reply(
            encode({
              status: { code: 7 },
              denied_response: {
                status: { code: 401 },
                headers: [
                  { header: { key: 'x-ext-authz-check-result', value: 'a\u0001b\u007f€😀' } },
                  { header: { key: 'bad key', value: 'v' } },
                ],
                body: 'denied \u0000 body',
              },
            }),
          );
          return;
        case 'denystatus':
          reply(encode({ status: { code: 7 }, denied_response: { status: { code: 999 } } }));
          return;
        case 'manyheaders':
          reply(
            encode({
              status: { code: 0 },
              ok_response: {
                headers: Array.from({ length: 2000 }, (_, i) => ({
                  header: { key: `x-h-${String(i)}`, value: 'v'.repeat(100) },
                })),
              },
            }),
          );
          return;
        case 'allowctl':
          reply(
            encode({
              status: { code: 0 },
              ok_response: {
                headers: [{ header: { key: 'x-ext-authz-check-result', value: 'ok\u0001€' } }],
              },
            }),
          );
          return;
        default:
          reply(encode({ status: { code: 0 } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, AUTHZ_IP, resolve));
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const grpcPort = (server.address() as AddressInfo).port;
  const { alive, output } = await startMesh(
    t,
    app.port,
    'hostile-grpc',
    `extensionProviders:
  - name: hostile-grpc
    envoyExtAuthzGrpc: { service: ${AUTHZ_IP}, port: ${String(grpcPort)}, timeout: 2s, failOpen: true }
`,
  );
  assert.equal((await get(app.port, '/x/ok')).status, 200);
  // Failed checks: failOpen lets the request through (Envoy failure_mode_allow).
  for (const mode of ['notproto', 'wrongtype', 'reset']) {
    const r = await get(app.port, `/x/${mode}`);
    assert.equal(r.status, 200, `${mode}: ${String(r.status)} ${r.body.slice(0, 80)}`);
    assert.equal(r.body, `app /x/${mode}`);
    alive();
  }
  // Parsed denials deny even with failOpen; bad header values never break the reply.
  const denied = await get(app.port, '/x/denyctl');
  assert.equal(denied.status, 401, `${denied.body}\n${output().slice(-3000)}`);
  assert.equal(denied.body, 'denied \u0000 body');
  assert.equal(denied.headers['x-ext-authz-check-result'], undefined);
  assert.doesNotMatch(denied.body, /^app /);
  alive();
  const badStatus = await get(app.port, '/x/denystatus');
  assert.equal(badStatus.status, 403, badStatus.body);
  alive();
  // Allowed with a header value Node cannot send: that header is dropped, the request goes on.
  const allowCtl = await get(app.port, '/x/allowctl');
  assert.equal(allowCtl.status, 200, `${allowCtl.body}\n${output().slice(-2000)}`);
  assert.equal(allowCtl.body, 'app /x/allowctl');
  alive();
  // 2,000 headers to add (220 KB): the proxy stays up and answers (the app may refuse the size).
  const many = await get(app.port, '/x/manyheaders');
  assert.ok(many.status >= 200 && many.status < 600, String(many.status));
  alive();
  assert.equal((await get(app.port, '/x/ok')).status, 200);
  alive();
});
