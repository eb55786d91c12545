// Real node:tls mTLS handshakes with issued SVIDs, including the ways they
// must fail: another root, an expired certificate, the wrong SPIFFE ID.
import assert from 'node:assert/strict';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  createRootCa,
  exportCaPem,
  exportPrivateKeyPem,
  generateKeyPair,
  issueSvid,
  spiffeServerIdentityCheck,
  verifyPeerIdentity,
  type CaMaterial,
} from '../../src/identity/index.js';

async function svid(
  ca: CaMaterial,
  id: string,
  window?: { notBefore: Date; notAfter: Date },
): Promise<{ cert: string; key: string }> {
  const keys = await generateKeyPair(true);
  const issued = await issueSvid(ca, {
    spiffeId: id,
    publicKey: keys.publicKey,
    ...(window ?? {}),
  });
  return { cert: issued.certChainPem, key: await exportPrivateKeyPem(keys.privateKey) };
}

interface Outcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly serverSawPeer?: string;
}

/** One handshake: a server requiring client certs, a client checking the server's SPIFFE ID. */
async function handshake(
  server: { cert: string; key: string; ca: string },
  client: { cert: string; key: string; ca: string; allowedServerIds: string[] },
): Promise<Outcome> {
  let serverSawPeer: string | undefined;
  const srv = createServer(
    {
      cert: server.cert,
      key: server.key,
      ca: server.ca,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s: TLSSocket) => {
      serverSawPeer = s.getPeerCertificate().subjectaltname;
      s.end('hello');
    },
  );
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<Outcome>((resolve) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        cert: client.cert,
        key: client.key,
        ca: client.ca,
        checkServerIdentity: spiffeServerIdentityCheck(client.allowedServerIds),
      });
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () => {
        resolve(
          data === 'hello'
            ? { ok: true, ...(serverSawPeer === undefined ? {} : { serverSawPeer }) }
            : { ok: false, error: 'connection closed without data' },
        );
      });
      sock.on('error', (e: Error) => {
        resolve({ ok: false, error: e.message });
      });
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

test('mTLS with SVIDs: success, and failure for another root, an expired cert, and the wrong SPIFFE ID', async () => {
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const other = await createRootCa({ trustDomain: 'cluster.local' });
  const caPem = (await exportCaPem(ca)).certPem;
  const serverId = 'spiffe://cluster.local/ns/default/sa/reviews';
  const clientId = 'spiffe://cluster.local/ns/default/sa/productpage';
  const server = { ...(await svid(ca, serverId)), ca: caPem };
  const client = { ...(await svid(ca, clientId)), ca: caPem, allowedServerIds: [serverId] };

  const ok = await handshake(server, client);
  assert.deepEqual(ok, { ok: true, serverSawPeer: `URI:${clientId}` });

  // A client certificate from another root is refused by the server.
  const foreign = await handshake(server, { ...client, ...(await svid(other, clientId)) });
  assert.equal(foreign.ok, false);

  // A server certificate from another root is refused by the client.
  const foreignServer = await handshake({ ...server, ...(await svid(other, serverId)) }, client);
  assert.equal(foreignServer.ok, false);
  assert.match(foreignServer.error ?? '', /certificate/i);

  // An expired client certificate is refused.
  const past = {
    notBefore: new Date(Date.now() - 7200_000),
    notAfter: new Date(Date.now() - 3600_000),
  };
  const expired = await handshake(server, { ...client, ...(await svid(ca, clientId, past)) });
  assert.equal(expired.ok, false);
  // An expired server certificate is refused by the client.
  const expiredServer = await handshake({ ...server, ...(await svid(ca, serverId, past)) }, client);
  assert.equal(expiredServer.ok, false);
  assert.match(expiredServer.error ?? '', /expired/i);

  // Secure naming: a valid certificate for another identity is refused.
  const impostor = await handshake(
    { ...server, ...(await svid(ca, 'spiffe://cluster.local/ns/default/sa/ratings')) },
    client,
  );
  assert.equal(impostor.ok, false);
  assert.match(
    impostor.error ?? '',
    /spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings is not allowed/,
  );
});

test('verifyPeerIdentity fails closed on no SAN, several URIs, invalid IDs', () => {
  assert.throws(() => verifyPeerIdentity(undefined, ['spiffe://a/b']), /exactly one SPIFFE ID/);
  assert.throws(
    () => verifyPeerIdentity({ subjectaltname: 'DNS:x' }, ['spiffe://a/b']),
    /exactly one SPIFFE ID/,
  );
  assert.throws(
    () =>
      verifyPeerIdentity({ subjectaltname: 'URI:spiffe://a/b, URI:spiffe://a/c' }, [
        'spiffe://a/b',
      ]),
    /exactly one/,
  );
  assert.throws(
    () => verifyPeerIdentity({ subjectaltname: 'URI:spiffe://A/b' }, ['spiffe://A/b']),
    /not a valid SPIFFE ID/,
  );
  assert.equal(
    verifyPeerIdentity({ subjectaltname: 'URI:spiffe://a/b' }, ['spiffe://a/b']),
    'spiffe://a/b',
  );
});
