// The CSR signing service over real sockets: what it signs, and every refusal.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createCsr,
  createSvidSource,
  createTokenIssuer,
  exportPrivateKeyPem,
  generateKeyPair,
  initCaDirectory,
  issueSvid,
  loadCaDirectory,
  parseCertificates,
  spiffeIdOf,
  startCaServer,
  type LoadedCa,
} from '../../src/identity/index.js';
import { tempDir } from '../helpers/index.js';
import { generateKeyPairSync } from 'node:crypto';

interface Reply {
  status: number;
  body: { certChain?: string; error?: { code: string; message: string } };
}

function post(url: string, caPem: string, body: string | Buffer, token?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/sign`,
      {
        method: 'POST',
        ca: caPem,
        checkServerIdentity: () => undefined, // the test checks the CA's identity separately
        headers: {
          'content-type': 'application/json',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Reply['body'],
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function setup(t: {
  after: (fn: () => unknown) => void;
}): Promise<{ ca: LoadedCa; url: string; caPem: string; issued: string[] }> {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  await initCaDirectory(join(tmp.path, 'ca'), { trustDomain: 'cluster.local' });
  const ca = await loadCaDirectory(join(tmp.path, 'ca'));
  const issued: string[] = [];
  const server = await startCaServer({
    ca,
    onDecision: (d) => {
      if (d.serial !== undefined) issued.push(d.serial);
    },
  });
  t.after(() => server.close());
  return { ca, url: server.url, caPem: ca.trustBundle.toPem(), issued };
}

test('CSR service signs exactly the identity the token entitles and refuses everything else', async (t) => {
  const { ca, url, caPem, issued } = await setup(t);
  const id = 'spiffe://cluster.local/ns/default/sa/reviews';
  const token = await ca.tokens.mint({ namespace: 'default', serviceAccount: 'reviews' });

  const good = await createCsr(id);
  const ok = await post(url, caPem, JSON.stringify({ csr: good.csrPem, ttl: '1h' }), token);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const leaf = parseCertificates(ok.body.certChain ?? '')[0];
  assert.ok(leaf);
  assert.equal(spiffeIdOf(leaf), id);
  assert.equal(issued.length, 1);

  const expectRefusal = async (
    body: string | Buffer,
    tok: string | undefined,
    status: number,
    code: string,
  ): Promise<void> => {
    const before = issued.length;
    const r = await post(url, caPem, body, tok);
    assert.equal(r.status, status, `${code}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error?.code, code);
    assert.equal(issued.length, before, `${code}: nothing may be issued`);
  };

  // Another identity than the token's.
  const other = await createCsr('spiffe://cluster.local/ns/default/sa/ratings');
  await expectRefusal(
    JSON.stringify({ csr: other.csrPem }),
    token,
    403,
    'PAL_ERR_CA_IDENTITY_MISMATCH',
  );
  // Another trust domain.
  const otherTd = await createCsr('spiffe://evil.org/ns/default/sa/reviews');
  await expectRefusal(
    JSON.stringify({ csr: otherTd.csrPem }),
    token,
    403,
    'PAL_ERR_CA_IDENTITY_MISMATCH',
  );
  // The right identity plus an extra SAN.
  const extra = await createCsr(id, { extraSans: [{ type: 'dns', value: 'reviews.default.svc' }] });
  await expectRefusal(JSON.stringify({ csr: extra.csrPem }), token, 403, 'PAL_ERR_CSR_EXTRA_SAN');
  // No token, a token for another audience, an expired token, a forged token.
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem }),
    undefined,
    401,
    'PAL_ERR_TOKEN_MISSING',
  );
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem }),
    await ca.tokens.mint({ namespace: 'default', serviceAccount: 'reviews', audience: 'other' }),
    401,
    'PAL_ERR_TOKEN_INVALID',
  );
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem }),
    await ca.tokens.mint({ namespace: 'default', serviceAccount: 'reviews', ttlMs: -60_000 }),
    401,
    'PAL_ERR_TOKEN_INVALID',
  );
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const forger = createTokenIssuer({ privateKey, publicKey });
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem }),
    await forger.mint({ namespace: 'default', serviceAccount: 'reviews' }),
    401,
    'PAL_ERR_TOKEN_INVALID',
  );
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem }),
    'not.a.jwt',
    401,
    'PAL_ERR_TOKEN_INVALID',
  );
  // Malformed CSRs: garbage, truncated, not JSON, a CSR whose signature was tampered with.
  await expectRefusal(JSON.stringify({ csr: 'hello' }), token, 400, 'PAL_ERR_CSR_MALFORMED');
  await expectRefusal(
    JSON.stringify({ csr: good.csrPem.slice(0, 200) + '\n-----END CERTIFICATE REQUEST-----\n' }),
    token,
    400,
    'PAL_ERR_CSR_MALFORMED',
  );
  await expectRefusal('{"csr":', token, 400, 'PAL_ERR_CSR_MALFORMED');
  const der = Buffer.from(
    good.csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''),
    'base64',
  );
  der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const r = await post(url, caPem, JSON.stringify({ csr: tampered }), token);
  assert.ok(
    r.status === 400 &&
      ['PAL_ERR_CSR_SIGNATURE_INVALID', 'PAL_ERR_CSR_MALFORMED'].includes(r.body.error?.code ?? ''),
    JSON.stringify(r.body),
  );
  // Oversized body.
  await expectRefusal(Buffer.alloc(70 * 1024, 'a'), token, 413, 'PAL_ERR_CA_REQUEST_TOO_LARGE');
  assert.equal(issued.length, 1);
});

test('SVID rotation: a TLS server keeps serving across three rotations with no failed handshakes', async (t) => {
  const { ca, url, caPem } = await setup(t);
  const source = createSvidSource({
    caUrl: url,
    caTrustBundlePem: caPem,
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    token: await ca.tokens.mint({ namespace: 'default', serviceAccount: 'reviews' }),
    ttl: '3s',
    jitter: 0.1,
  });
  t.after(() => {
    source.close();
  });
  const first = await source.start();
  const serials = [first.serial];
  const server = createServer(
    {
      cert: first.certChainPem,
      key: first.keyPem,
      ca: first.trustBundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s: TLSSocket) => {
      s.end('ok');
    },
  );
  source.on(
    'rotated',
    (snap: { serial: string; certChainPem: string; keyPem: string; trustBundlePem: string }) => {
      serials.push(snap.serial);
      server.setSecureContext({
        cert: snap.certChainPem,
        key: snap.keyPem,
        ca: snap.trustBundlePem,
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;

  const clientKeys = await generateKeyPair(true);
  const clientCert = await issueSvid(ca.signer, {
    spiffeId: 'spiffe://cluster.local/ns/default/sa/productpage',
    publicKey: clientKeys.publicKey,
  });
  const clientKey = await exportPrivateKeyPem(clientKeys.privateKey);
  let ok = 0;
  let failed = 0;
  const seenSerials = new Set<string>();
  const deadline = Date.now() + 20_000;
  while (serials.length < 4 && Date.now() < deadline) {
    const result = await new Promise<boolean>((resolve) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        cert: clientCert.certChainPem,
        key: clientKey,
        ca: caPem,
        checkServerIdentity: () => undefined,
      });
      let data = '';
      sock.on('secureConnect', () => {
        const serial = sock.getPeerCertificate().serialNumber;
        seenSerials.add(serial.toLowerCase());
      });
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () => {
        resolve(data === 'ok');
      });
      sock.on('error', () => {
        resolve(false);
      });
    });
    if (result) ok += 1;
    else failed += 1;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(serials.length >= 4, `expected three rotations, saw ${serials.length - 1}`);
  assert.equal(new Set(serials).size, serials.length, 'every rotation brings a new serial');
  assert.equal(failed, 0, `failed handshakes: ${failed} of ${ok + failed}`);
  assert.ok(ok > 10);
  assert.ok(seenSerials.size >= 3, `clients saw ${seenSerials.size} distinct server certificates`);
});

test('the SVID client retries with backoff while the CA is down, then succeeds', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  await initCaDirectory(join(tmp.path, 'ca'), { trustDomain: 'cluster.local' });
  const ca = await loadCaDirectory(join(tmp.path, 'ca'));
  // Reserve a port, start nothing there yet.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const source = createSvidSource({
    caUrl: `https://127.0.0.1:${port}`,
    caTrustBundlePem: ca.trustBundle.toPem(),
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'web',
    token: await ca.tokens.mint({ namespace: 'default', serviceAccount: 'web' }),
    minBackoffMs: 50,
    maxBackoffMs: 400,
  });
  t.after(() => {
    source.close();
  });
  let retries = 0;
  source.on('retry', () => {
    retries += 1;
  });
  const started = source.start();
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(retries >= 2, `retried ${retries} times while the CA was down`);
  const server = await startCaServer({ ca, port });
  t.after(() => server.close());
  const snap = await started;
  assert.equal(snap.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
});
