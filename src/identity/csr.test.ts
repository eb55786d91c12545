// The CSR a proxy sends, read by an independent parser (openssl) and by the CA.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { createCsr, createRootCa, generateKeyPair, signCsr } from './index.js';
import { parseCsr } from './csr-signing.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';

test('openssl verifies the CSR self-signature and reads O=Palisade and the SPIFFE ID SAN', async () => {
  const { csrPem } = await createCsr(ID, {
    extraSans: [
      { type: 'dns', value: 'web.default.svc' },
      { type: 'url', value: 'spiffe://cluster.local/ns/default/sa/other' },
    ],
  });
  assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
  const verify = (input: string | Buffer, inform: 'PEM' | 'DER'): { out: string; err: string } => {
    const r = spawnSync('openssl', ['req', '-verify', '-noout', '-text', '-inform', inform], {
      input,
      encoding: 'utf8',
    });
    return { out: r.stdout, err: r.stderr };
  };
  // OpenSSL 3.0 reports the self-signature check on stderr and exits 0 either way.
  const { out: text, err } = verify(csrPem, 'PEM');
  assert.match(err, /self-signature verify OK/);
  assert.match(text, /Subject: O\s?=\s?Palisade/);
  assert.match(text, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(
    text,
    /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web, URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/other, DNS:web\.default\.svc/,
  );
  // One flipped bit in the signed part (the subject's attribute type): openssl refuses the signature.
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[20] = (der[20] ?? 0) ^ 0x01;
  assert.match(verify(der, 'DER').err, /self-signature verify failure/);
});

test('the CA signs a CSR for the given key pair; an RSA key pair is refused with the reason', async () => {
  const keys = await generateKeyPair(false);
  const { csrPem } = await createCsr(ID, { keys });
  const parsed = parseCsr(csrPem);
  assert.equal(parsed.signatureValid, true);
  assert.deepEqual(parsed.names, [{ type: 'url', value: ID }]);
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const issued = await signCsr(ca, csrPem, { entitledSpiffeId: ID });
  assert.match(issued.certChainPem, /BEGIN CERTIFICATE/);

  const { webcrypto } = await import('node:crypto');
  const rsa = await webcrypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    false,
    ['sign', 'verify'],
  );
  await assert.rejects(createCsr(ID, { keys: rsa }), /ECDSA keys, not RSASSA-PKCS1-v1_5/);
});
