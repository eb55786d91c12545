// The proxy's gRPC stream (node:http2, no grpc-js) against real servers on
// loopback: a grpc-js server over TLS that presents the control plane's
// SPIFFE ID (messages both ways, metadata and status arrive), the same server
// with another SPIFFE ID (refused before any message), and raw HTTP/2 servers
// that misbehave — a message over the size limit, a compressed message, a
// non-gRPC answer, a trailers-only status, a message cut by the stream's end,
// a message split into one-byte DATA frames. Each ends the call with a status
// that says why, once, and never emits a partial message.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  controlPlaneSpiffeId,
  createRootCa,
  exportCaPem,
  exportPrivateKeyPem,
  generateKeyPair,
  issueSvid,
  type CaMaterial,
} from '../../identity/index.js';
import { xdsTlsOptions } from '../transport.js';
import { GRPC_STATUS, openGrpcStream, type GrpcStatus, type GrpcStream } from './grpc-stream.js';

const PATH = '/test.Echo/Chat';

interface Outcome {
  readonly messages: Buffer[];
  readonly status: GrpcStatus;
  readonly ends: number;
}

function outcome(stream: GrpcStream, onMessage?: (m: Buffer) => void): Promise<Outcome> {
  const messages: Buffer[] = [];
  let ends = 0;
  return new Promise((resolve) => {
    stream.on('message', (m: Buffer) => {
      messages.push(Buffer.from(m));
      onMessage?.(m);
    });
    stream.on('end', (status: GrpcStatus) => {
      ends += 1;
      // Let any late duplicate 'end' show up before reporting.
      setTimeout(() => {
        resolve({ messages, status, ends });
      }, 50);
    });
  });
}

async function serverCert(
  ca: CaMaterial,
  spiffeId: string,
): Promise<{ cert: string; key: string }> {
  const keys = await generateKeyPair(true);
  const issued = await issueSvid(ca, {
    spiffeId,
    publicKey: keys.publicKey,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { cert: issued.certChainPem, key: await exportPrivateKeyPem(keys.privateKey) };
}

async function echoServer(
  credentials: grpc.ServerCredentials,
): Promise<{ port: number; seen: string[]; stop(): void }> {
  const server = new grpc.Server();
  const seen: string[] = [];
  const raw = (b: Buffer): Buffer => b;
  server.addService(
    {
      Chat: {
        path: PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    },
    {
      Chat(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
        seen.push(String(call.metadata.get('authorization')[0] ?? ''));
        call.on('data', (m: Buffer) => {
          if (m.toString() === 'bye') {
            call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: 'said bye' });
            return;
          }
          call.write(Buffer.concat([Buffer.from('echo:'), m]));
        });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, p) => {
      if (error) reject(error);
      else resolve(p);
    });
  });
  return {
    port,
    seen,
    stop: () => {
      server.forceShutdown();
    },
  };
}

/** A grpc-js echo server over TLS whose certificate (from a fresh root) names `spiffeId`. */
async function tlsEchoServer(
  t: { after(fn: () => void): void },
  spiffeId: string,
): Promise<{
  server: Awaited<ReturnType<typeof echoServer>>;
  tls: NonNullable<ReturnType<typeof xdsTlsOptions>>;
}> {
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const rootPem = (await exportCaPem(ca)).certPem;
  const cert = await serverCert(ca, spiffeId);
  const server = await echoServer(
    grpc.ServerCredentials.createSsl(null, [
      { cert_chain: Buffer.from(cert.cert), private_key: Buffer.from(cert.key) },
    ]),
  );
  t.after(() => {
    server.stop();
  });
  const tls = xdsTlsOptions({ rootPem, trustDomain: 'cluster.local' });
  assert.ok(tls);
  return { server, tls };
}

test('TLS to a grpc-js server with the control plane SPIFFE ID: messages both ways, metadata, the status', async (t) => {
  const { server, tls } = await tlsEchoServer(t, controlPlaneSpiffeId('cluster.local'));
  const stream = openGrpcStream({
    address: `127.0.0.1:${String(server.port)}`,
    path: PATH,
    authority: 'localhost',
    tls,
    metadata: { authorization: 'Bearer t0k' },
  });
  const done = outcome(stream, (m) => {
    if (m.toString() === 'echo:one') stream.write(Buffer.alloc(70_000, 0x61));
    else stream.write(Buffer.from('bye'));
  });
  stream.write(Buffer.from('one'));
  const result = await done;
  assert.deepEqual(
    result.messages.map((m) => m.length),
    [8, 70_005],
  );
  assert.deepEqual(result.status, { code: GRPC_STATUS.FAILED_PRECONDITION, details: 'said bye' });
  assert.equal(result.ends, 1);
  assert.deepEqual(server.seen, ['Bearer t0k']);
});

test('a server with another SPIFFE ID (same root) is refused before any message', async (t) => {
  const { server, tls } = await tlsEchoServer(t, 'spiffe://cluster.local/ns/default/sa/reviews');
  const stream = openGrpcStream({
    address: `127.0.0.1:${String(server.port)}`,
    path: PATH,
    authority: 'localhost',
    tls,
  });
  const done = outcome(stream);
  stream.write(Buffer.from('secret'));
  const result = await done;
  assert.equal(result.status.code, GRPC_STATUS.UNAVAILABLE);
  assert.match(result.status.details, /spiffe|SPIFFE|identity/);
  assert.deepEqual(result.messages, []);
  assert.deepEqual(server.seen, []);
});

/** A plaintext HTTP/2 server whose every stream is answered by `answer`. */
async function rawServer(
  answer: (stream: http2.ServerHttp2Stream) => void,
): Promise<{ port: number; stop(): Promise<void> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    answer(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

function frame(payload: Buffer, compressed = 0, length = payload.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed;
  prefix.writeUInt32BE(length, 1);
  return Buffer.concat([prefix, payload]);
}

const HOSTILE: [string, (s: http2.ServerHttp2Stream) => void, number, RegExp, number][] = [
  [
    'a length prefix over the 4 MiB limit',
    (s) => {
      s.respond(GRPC_HEADERS);
      s.write(frame(Buffer.from('x'), 0, 5 * 1024 * 1024));
    },
    GRPC_STATUS.RESOURCE_EXHAUSTED,
    /larger than max/,
    0,
  ],
  [
    'a compressed message nobody negotiated',
    (s) => {
      s.respond(GRPC_HEADERS);
      s.write(frame(Buffer.from('ok')));
      s.write(frame(Buffer.from('zz'), 1));
    },
    GRPC_STATUS.INTERNAL,
    /compressed/,
    1,
  ],
  [
    'an HTML 404',
    (s) => {
      s.respond({ ':status': 404, 'content-type': 'text/html' });
      s.end('<h1>no</h1>');
    },
    GRPC_STATUS.UNIMPLEMENTED,
    /HTTP 404 text\/html/,
    0,
  ],
  [
    'a trailers-only status with a percent-encoded message',
    (s) => {
      s.respond(
        { ...GRPC_HEADERS, 'grpc-status': '16', 'grpc-message': 'bad%20token%20%E2%9C%97' },
        { endStream: true },
      );
    },
    GRPC_STATUS.UNAUTHENTICATED,
    /^bad token ✗$/,
    0,
  ],
  [
    'a message cut off by the end of the stream',
    (s) => {
      s.respond(GRPC_HEADERS);
      s.end(frame(Buffer.from('whole')).subarray(0, 7));
    },
    GRPC_STATUS.UNKNOWN,
    /inside a message/,
    0,
  ],
  [
    'a message in one-byte DATA frames, then OK',
    (s) => {
      s.respond(GRPC_HEADERS, { waitForTrailers: true });
      s.on('wantTrailers', () => {
        s.sendTrailers({ 'grpc-status': '0' });
      });
      const bytes = frame(Buffer.from('split'));
      let i = 0;
      const next = (): void => {
        if (i < bytes.length) s.write(bytes.subarray(i, ++i), next);
        else s.end();
      };
      next();
    },
    GRPC_STATUS.OK,
    /^$/,
    1,
  ],
  [
    'a connection torn down mid-call',
    (s) => {
      s.respond(GRPC_HEADERS);
      s.write(frame(Buffer.from('a')));
      setTimeout(() => s.session?.destroy(), 20);
    },
    GRPC_STATUS.UNAVAILABLE,
    /./,
    1,
  ],
];

for (const [what, answer, code, details, count] of HOSTILE) {
  test(`a misbehaving server: ${what}`, async (t) => {
    const server = await rawServer(answer);
    t.after(() => server.stop());
    const stream = openGrpcStream({
      address: `127.0.0.1:${String(server.port)}`,
      path: PATH,
      authority: 'localhost',
    });
    const result = await outcome(stream);
    assert.equal(result.status.code, code, result.status.details);
    assert.match(result.status.details, details);
    assert.equal(result.messages.length, count);
    assert.equal(result.ends, 1);
  });
}

test('nothing listening: UNAVAILABLE, once', async () => {
  const server = await rawServer(() => undefined);
  const { port } = server;
  await server.stop();
  const stream = openGrpcStream({
    address: `127.0.0.1:${String(port)}`,
    path: PATH,
    authority: 'localhost',
  });
  const result = await outcome(stream);
  assert.equal(result.status.code, GRPC_STATUS.UNAVAILABLE);
  assert.match(result.status.details, /ECONNREFUSED/);
  assert.equal(result.ends, 1);
});

test('keepalive: pings answered keep the call; a frozen server (SIGSTOP) ends it UNAVAILABLE', async (t) => {
  // The server is another process so that it can be frozen as a hung host would be.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const h2 = require('node:http2');
       const s = h2.createServer();
       s.on('stream', (st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }); });
       s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve) => {
    child.stdout.once('data', (d: Buffer) => {
      resolve(Number(d.toString().trim()));
    });
  });
  const stream = openGrpcStream({
    address: `127.0.0.1:${String(port)}`,
    path: PATH,
    authority: 'localhost',
    keepalive: { intervalMs: 100, timeoutMs: 300 },
  });
  let ended: GrpcStatus | undefined;
  stream.on('end', (status: GrpcStatus) => (ended = status));
  const endedYet = (): GrpcStatus | undefined => ended;
  await new Promise<void>((resolve) => stream.once('headers', resolve));
  // Several pings go out and are answered: the call stays up.
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.equal(ended, undefined);
  child.kill('SIGSTOP');
  for (let i = 0; i < 100 && endedYet() === undefined; i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(endedYet(), {
    code: GRPC_STATUS.UNAVAILABLE,
    details: 'keepalive ping not answered within 300 ms',
  });
});
