// A small mesh of real processes to attack: `palisade control`, the ingress
// gateway, the echo workload's sidecar (inbound, PERMISSIVE so plaintext
// reaches it over raw sockets) and a client sidecar (outbound port). The
// echo app records exactly the request line and headers each request arrived
// with, so a test can assert what an attack delivered — or that nothing did.
// A DENY `/admin*` AuthorizationPolicy guards both the gateway and the echo
// workload; an h2c-speaking backend sits behind the gateway on /h2c.
//
// Addresses: 127.32.0.0/16 only (this suite's range); the gateway's port 80 is
// bound as 8080 on its own address.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { waitFor } from '../helpers/index.js';
import {
  meshDirs,
  startControlPlane,
  startIngressGateway,
  startSidecar,
  type SidecarProcess,
} from '../helpers/mesh-processes.js';
import type { PalisadeProcess } from '../helpers/index.js';

export const APP_IP = '127.32.0.10';
export const ECHO_IP = '127.32.0.11';
export const GATEWAY_IP = '127.32.0.20';
export const CLIENT_IP = '127.32.0.30';
export const H2C_IP = '127.32.0.40';
export const GATEWAY_PORT = 8080;

/** One request as the app received it. */
export interface Received {
  readonly line: string;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly upgrade: boolean;
}

/** The echo app: answers 200 with the path; records every request head it parsed (and parse errors). */
export interface EchoApp {
  readonly port: number;
  readonly received: Received[];
  readonly parseErrors: string[];
  close(): void;
}

/** The path the echo app answers with {@link OBJECT_NAMED_FIELDS} as response fields. */
export const OBJECT_NAMED_RESPONSE_PATH = '/object-named-response-fields';
export const OBJECT_NAMED_FIELDS: readonly (readonly [string, string])[] = [
  ['constructor', 'c1'],
  ['toString', 't1'],
  ['hasOwnProperty', 'h1'],
  ['__proto__', 'p1'],
];

export async function startEchoApp(ip: string): Promise<EchoApp> {
  const received: Received[] = [];
  const parseErrors: string[] = [];
  const record = (req: http.IncomingMessage, body: string, upgrade: boolean): void => {
    received.push({
      line: `${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`,
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body,
      upgrade,
    });
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      record(req, Buffer.concat(chunks).toString('latin1'), false);
      const body = JSON.stringify({ url: req.url });
      if (req.url === OBJECT_NAMED_RESPONSE_PATH) {
        // Response fields named after Object's own properties (raw pairs keep the names).
        res.writeHead(200, [...OBJECT_NAMED_FIELDS.flat(), 'content-type', 'application/json']);
        res.end(body);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo': 'yes' });
      res.end(body);
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    record(req, '', true);
    socket.on('error', () => socket.destroy());
    socket.end(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
  });
  server.on('clientError', (error: Error & { rawPacket?: Buffer }, socket) => {
    parseErrors.push(`${error.message}: ${error.rawPacket?.toString('latin1') ?? ''}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    parseErrors,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * A backend that accepts `Upgrade: h2c` (RFC 7540 §3.2, what the attack needs): it answers
 * 101 and serves HTTP/2 on the connection; every HTTP/2 request it gets is recorded.
 */
export async function startH2cBackend(ip: string): Promise<{
  readonly port: number;
  readonly upgrades: string[];
  readonly h2Requests: string[];
  close(): void;
}> {
  const upgrades: string[] = [];
  const h2Requests: string[] = [];
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    h2Requests.push(String(headers[':path']));
    stream.respond({ ':status': 200 });
    stream.end('h2c backend');
  });
  const server = http.createServer((req, res) => {
    res.end('h2c backend (HTTP/1.1)');
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(`${req.url ?? ''} ${String(req.headers.upgrade)}`);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    h2.emit('connection', socket);
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    upgrades,
    h2Requests,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function meshYaml(echoPort: number, h2cPort: number): string {
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
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: client, namespace: sec }
spec: { serviceAccount: client, labels: { app: client }, command: node, ports: [{ name: http, port: 18081 }] }
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
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: gateway-deny-admin, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: h2c, namespace: sec }
spec:
  hosts: [h2c.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(h2cPort)}, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: ${H2C_IP} }]
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
    - match: [{ uri: { prefix: /h2c } }]
      route: [{ destination: { host: h2c.example.com, port: { number: ${String(h2cPort)} } } }]
    - match: [{ uri: { prefix: /ws } }]
      rewrite: { uri: /rewritten-ws }
      headers: { request: { set: { x-route-feature: applied } } }
      route: [{ destination: { host: echo.sec.svc.cluster.local, port: { number: ${String(echoPort)} } } }]
    - route: [{ destination: { host: echo.sec.svc.cluster.local, port: { number: ${String(echoPort)} } } }]
`;
}

/** The running mesh: where to send attacks, and the processes whose PIDs must not change. */
export interface HostileMesh {
  readonly app: EchoApp;
  readonly h2c: Awaited<ReturnType<typeof startH2cBackend>>;
  readonly control: PalisadeProcess;
  readonly gateway: SidecarProcess;
  readonly echo: SidecarProcess;
  readonly client: SidecarProcess;
  /** The three entry points: host, port, and how a request names its target there. */
  readonly entries: readonly Entry[];
}

export interface Entry {
  readonly name: 'gateway' | 'outbound' | 'inbound';
  readonly host: string;
  readonly port: number;
  /** The request target for `path` at this entry (absolute-form on the outbound port). */
  target(path: string): string;
  /** The Host header value. */
  readonly authority: string;
  /** The proxy process serving this entry. */
  readonly proc: SidecarProcess;
}

/** Starts the whole mesh for test `t` (everything stopped when it ends) and waits until every entry serves. */
export async function startHostileMesh(t: {
  after(fn: () => unknown): void;
}): Promise<HostileMesh> {
  const dir = await meshDirs(t);
  const app = await startEchoApp(APP_IP);
  t.after(() => {
    app.close();
  });
  const h2c = await startH2cBackend(H2C_IP);
  t.after(() => {
    h2c.close();
  });
  writeFileSync(join(dir.configDir, 'mesh.yaml'), meshYaml(app.port, h2c.port));
  const control = await startControlPlane(dir.configDir, dir.caDir);
  t.after(() => control.stop());
  // One at a time: three proxies starting at once on a loaded machine can miss their start-up timeout.
  const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
  t.after(() => gateway.stop());
  const echo = await startSidecar(control, {
    namespace: 'sec',
    name: 'echo',
    instanceIp: ECHO_IP,
    appIp: APP_IP,
    dir: dir.path,
  });
  t.after(() => echo.stop());
  const client = await startSidecar(control, {
    namespace: 'sec',
    name: 'client',
    instanceIp: CLIENT_IP,
    appIp: APP_IP,
    dir: dir.path,
  });
  t.after(() => client.stop());
  const echoAuthority = `echo.sec.svc.cluster.local:${String(app.port)}`;
  const entries: Entry[] = [
    {
      name: 'gateway',
      host: GATEWAY_IP,
      port: GATEWAY_PORT,
      target: (p) => p,
      authority: 'www.example.com',
      proc: gateway,
    },
    {
      name: 'outbound',
      host: CLIENT_IP,
      port: client.outbound,
      target: (p) => `http://${echoAuthority}${p}`,
      authority: echoAuthority,
      proc: client,
    },
    {
      name: 'inbound',
      host: ECHO_IP,
      port: app.port,
      target: (p) => p,
      authority: echoAuthority,
      proc: echo,
    },
  ];
  const mesh = { app, h2c, control, gateway, echo, client, entries };
  for (const entry of entries)
    await waitFor(
      async () => {
        const r = await exchange(entry, request(entry, 'GET', '/ready'));
        return r.status === 200;
      },
      40_000,
      200,
    ).catch((error: unknown) => {
      throw new Error(
        `${entry.name} never served: ${String(error)}\n--- control\n${control.output()}\n--- ${entry.name}\n${entry.proc.output()}`,
      );
    });
  return mesh;
}

/** A well-formed HTTP/1.1 request head for `entry` (extra header lines appended as given). */
export function request(entry: Entry, method: string, path: string, extra = ''): string {
  return `${method} ${entry.target(path)} HTTP/1.1\r\nHost: ${entry.authority}\r\n${extra}\r\n`;
}

/** What came back on a raw connection: the first response, or nothing before the close. */
export interface Exchange {
  /** 0 when the connection closed without a response. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Every byte received. */
  readonly raw: string;
}

function firstResponse(raw: string): Exchange | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = raw.slice(0, end);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const rest = raw.slice(end + 4);
  if (status === 101) return { status, head, body: '', raw };
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  if (length !== undefined)
    return rest.length >= Number(length)
      ? { status, head, body: rest.slice(0, Number(length)), raw }
      : undefined;
  if (/\r\ntransfer-encoding: *chunked/i.test(head))
    return rest.includes('0\r\n\r\n') ? { status, head, body: rest, raw } : undefined;
  return undefined;
}

/**
 * Sends `bytes` on a new connection and resolves with the first complete response, or
 * status 0 once the proxy closes without one (bounded: 10 s, then the socket is destroyed).
 */
export function exchange(
  entry: { host: string; port: number },
  bytes: string | Buffer,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(entry.port, entry.host);
    let raw = '';
    let done = false;
    const finish = (result: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      finish({ status: -1, head: '', body: '', raw });
    }, 10_000);
    socket.on('connect', () => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    });
    socket.on('data', (chunk: Buffer) => {
      raw += chunk.toString('latin1');
      const response = firstResponse(raw);
      if (response !== undefined) finish(response);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      finish(firstResponse(raw) ?? { status: 0, head: raw, body: '', raw });
    });
  });
}

/** Asserts every proxy process still runs with the PID it started with. */
export function assertAlive(mesh: HostileMesh, pids: ReadonlyMap<string, number>): void {
  for (const proc of [mesh.gateway, mesh.echo, mesh.client, mesh.control]) {
    const pid = proc.child.pid ?? -1;
    assert.equal(proc.child.exitCode, null, `process ${String(pid)} exited:\n${proc.output()}`);
    assert.equal(proc.child.signalCode, null, `process ${String(pid)} was killed`);
    process.kill(pid, 0);
  }
  for (const [name, pid] of pids) {
    const proc = name === 'gateway' ? mesh.gateway : name === 'echo' ? mesh.echo : mesh.client;
    assert.equal(proc.child.pid, pid, `${name} PID changed`);
    const unexpected = proc
      .output()
      .split('\n')
      .filter((line) => /contained|unexpected error/.test(line));
    assert.deepEqual(unexpected, [], `${name} hit an unexpected error`);
  }
}

/** PIDs of the three proxies now. */
export function pidsOf(mesh: HostileMesh): Map<string, number> {
  return new Map([
    ['gateway', mesh.gateway.child.pid ?? -1],
    ['echo', mesh.echo.child.pid ?? -1],
    ['client', mesh.client.child.pid ?? -1],
  ]);
}
