// The ingress gateway beyond HTTP/1.1, with real processes (`palisade control`
// + the ingress gateway) and Istio's own YAML, one listener port serving
// both of Istio's TLS modes side by side:
// - TLS PASSTHROUGH ("Ingress Gateway without TLS Termination"): the
//   gateway reads the SNI from the ClientHello and relays the client's TLS
//   untouched to the backend, which terminates it with its own certificate
//   (curl verifies that certificate against the backend's CA);
// - SIMPLE TLS for another host on the same port, offering HTTP/2 by ALPN:
//   gRPC through the ingress (grpc-js over TLS) and curl negotiating h2;
// - a TCP server (Istio's tcp-echo on 31400) relayed by `tcp` routes.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { runProcess, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startIngressGateway } from '../helpers/mesh-processes.js';
import { issueCert, makeCa } from '../helpers/openssl-pki.js';
import {
  EchoClientConstructor,
  echoCall,
  startEchoBackend,
  type EchoClient,
} from '../helpers/grpc-echo.js';

const GATEWAY_IP = '127.0.0.111';
const SECURE_IP = '127.0.0.112';
const TCP_IP = '127.0.0.113';
const GRPC_IP = '127.0.0.114';
/** Gateway port 443 is bound as 8443 (unprivileged), as Istio's charts map it. */
const HTTPS_PORT = 8443;
const TCP_PORT = 31400;

function indent(pem: string): string {
  return pem.trim().replace(/\n/g, '\n      ');
}

function mesh(ports: { secure: number; tcp: number; grpc: number }, pki: string): string {
  const pem = (f: string): string => indent(readFileSync(join(pki, f), 'utf8'));
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(ports.secure)}, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints: [{ address: ${SECURE_IP} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: tcp-echo, namespace: default }
spec:
  hosts: [tcp-echo.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(ports.tcp)}, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: ${TCP_IP} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: grpc-echo, namespace: default }
spec:
  hosts: [grpc-echo.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(ports.grpc)}, name: grpc, protocol: GRPC }]
  resolution: STATIC
  endpoints: [{ address: ${GRPC_IP} }]
---
apiVersion: v1
kind: Secret
metadata: { name: grpc-credential, namespace: istio-system }
type: kubernetes.io/tls
stringData:
  tls.crt: |
      ${pem('ingress.crt')}
  tls.key: |
      ${pem('ingress.key')}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https-passthrough, protocol: HTTPS }
      hosts: [secure.example.com]
      tls: { mode: PASSTHROUGH }
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: [grpc.example.com]
      tls: { mode: SIMPLE, credentialName: grpc-credential }
    - port: { number: ${String(TCP_PORT)}, name: tcp, protocol: TCP }
      hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com]
  gateways: [edge]
  tls:
    - match: [{ port: 443, sniHosts: [secure.example.com] }]
      route: [{ destination: { host: secure.example.com, port: { number: ${String(ports.secure)} } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: grpc, namespace: default }
spec:
  hosts: [grpc.example.com]
  gateways: [edge]
  http:
    - route: [{ destination: { host: grpc-echo.example.com, port: { number: ${String(ports.grpc)} } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: tcp-echo, namespace: default }
spec:
  hosts: ['*']
  gateways: [edge]
  tcp:
    - match: [{ port: ${String(TCP_PORT)} }]
      route: [{ destination: { host: tcp-echo.example.com, port: { number: ${String(ports.tcp)} } } }]
`;
}

/** curl through the gateway, resolving `host` to it. */
function curl(host: string, args: readonly string[]): ReturnType<typeof runProcess> {
  return runProcess('curl', [
    '-sS',
    '--max-time',
    '10',
    '--resolve',
    `${host}:${String(HTTPS_PORT)}:${GATEWAY_IP}`,
    ...args,
    `https://${host}:${String(HTTPS_PORT)}/`,
  ]);
}

/** One line to the TCP port, the first line back. */
function tcpExchange(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: GATEWAY_IP, port: TCP_PORT });
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer over TCP (got ${JSON.stringify(got)})`));
    }, 5000);
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(got.trim());
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!got.includes('\n')) reject(new Error('closed without an answer'));
    });
  });
}

test(
  'ingress gateway: TLS passthrough by SNI, HTTP/2 and gRPC over SIMPLE TLS on the same port, TCP routes',
  { timeout: 120_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const { configDir, caDir } = dir;
    const pki = join(dir.path, 'pki');
    mkdirSync(pki);
    await makeCa(pki, 'example', 'example.com CA');
    await issueCert(
      pki,
      'example',
      'secure',
      'secure.example.com',
      'subjectAltName=DNS:secure.example.com',
    );
    await issueCert(
      pki,
      'example',
      'ingress',
      'grpc.example.com',
      'subjectAltName=DNS:grpc.example.com',
    );

    // The passthrough backend terminates TLS itself and says which SNI it was asked for.
    const secure = https.createServer(
      { cert: readFileSync(join(pki, 'secure.crt')), key: readFileSync(join(pki, 'secure.key')) },
      (req, res) => {
        const socket = req.socket;
        const sni = socket instanceof TLSSocket ? String(socket.servername) : 'none';
        res.end(`secure backend, SNI ${sni}`);
      },
    );
    await new Promise<void>((resolve) => secure.listen(0, SECURE_IP, resolve));
    const echoTcp = net.createServer((socket) => {
      socket.on('data', (d: Buffer) => socket.write(`tcp-echo ${d.toString()}`));
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => echoTcp.listen(0, TCP_IP, resolve));
    const grpcEcho = await startEchoBackend('grpc-echo', { host: GRPC_IP });
    t.after(async () => {
      secure.closeAllConnections();
      await new Promise((resolve) => secure.close(resolve));
      await new Promise((resolve) => echoTcp.close(resolve));
      await grpcEcho.close();
    });
    const port = (server: net.Server): number => (server.address() as net.AddressInfo).port;
    writeFileSync(
      join(configDir, 'mesh.yaml'),
      mesh({ secure: port(secure), tcp: port(echoTcp), grpc: grpcEcho.port }, pki),
    );

    const control = await startControlPlane(configDir, caDir);
    t.after(() => control.stop());
    const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
    t.after(() => gateway.stop());

    const cacert = join(pki, 'example.crt');
    const passthrough = await waitFor(
      async () => {
        const r = await curl('secure.example.com', ['--cacert', cacert]);
        return r.code === 0 ? r : undefined;
      },
      30_000,
      250,
    ).catch((error: unknown) => {
      const last = String(error);
      return assert.fail(
        `${last}\n--- gateway ---\n${gateway.output()}\n--- control ---\n${control.output()}`,
      );
    });
    assert.ok(passthrough !== undefined);
    assert.equal(
      passthrough.stdout,
      'secure backend, SNI secure.example.com',
      "the backend's own certificate verified: the gateway relayed the TLS untouched",
    );
    // openssl as an independent client: the certificate presented is the backend's.
    const shown = await runProcess(
      'openssl',
      [
        's_client',
        '-connect',
        `${GATEWAY_IP}:${String(HTTPS_PORT)}`,
        '-servername',
        'secure.example.com',
        '-CAfile',
        cacert,
        '-verify_return_error',
      ],
      { input: 'Q\n', timeoutMs: 10_000 },
    );
    assert.match(shown.stdout, /subject=\s*CN\s*=\s*secure\.example\.com/, shown.stdout);
    assert.match(shown.stdout, /Verify return code: 0 \(ok\)/);

    // An SNI no chain serves is refused in the handshake (the gateway has no certificate for it).
    const unknown = await runProcess('curl', [
      '-sS',
      '--max-time',
      '10',
      '-k',
      '--resolve',
      `other.example.com:${String(HTTPS_PORT)}:${GATEWAY_IP}`,
      `https://other.example.com:${String(HTTPS_PORT)}/`,
    ]);
    assert.notEqual(unknown.code, 0, 'an unknown SNI is not served');

    // SIMPLE TLS on the same port: the gateway's certificate, ALPN h2.
    const h2 = await curl('grpc.example.com', [
      '--cacert',
      cacert,
      '--http2',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version}',
      '-H',
      'content-type: application/grpc',
    ]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.equal(h2.stdout, '2', 'the gateway negotiated HTTP/2');

    // gRPC through the ingress: TLS to the gateway (its credential), h2c to the backend.
    const stub = new EchoClientConstructor(
      `${GATEWAY_IP}:${String(HTTPS_PORT)}`,
      grpc.credentials.createSsl(readFileSync(cacert)),
      {
        'grpc.ssl_target_name_override': 'grpc.example.com',
        'grpc.default_authority': 'grpc.example.com',
      },
    ) as unknown as EchoClient;
    t.after(() => {
      stub.close();
    });
    const reply = await echoCall(stub, { 'x-test': 'through the ingress' }, 5000);
    assert.equal(reply.code, grpc.status.OK, JSON.stringify(reply));
    assert.equal(reply.server, 'grpc-echo');
    const seen = reply.reply?.headers ?? {};
    assert.equal(seen['x-test'], 'through the ingress');
    assert.equal(seen['x-forwarded-proto'], 'https');

    // TCP server: bytes relayed both ways.
    assert.equal(await tcpExchange('hello'), 'tcp-echo hello');
  },
);
