// CSR parsing faces untrusted bytes: fuzz it, and sign a CSR made by openssl.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPalisadeError } from '../errors/index.js';
import { createCsr, createRootCa, parseCertificates, signCsr, spiffeIdOf } from './index.js';
import { parseCsr } from './csr-signing.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';

test('a CSR made by openssl (P-256 and RSA-2048) is signed for its entitled identity', async () => {
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const dir = mkdtempSync(join(tmpdir(), 'palisade-csr-'));
  try {
    for (const keyArgs of [
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-newkey', 'rsa:2048'],
    ]) {
      execFileSync(
        'openssl',
        [
          'req',
          '-new',
          ...keyArgs,
          '-nodes',
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          join(dir, 'r.csr'),
          '-subj',
          '/O=test',
          '-addext',
          `subjectAltName=URI:${ID}`,
        ],
        { stdio: 'ignore' },
      );
      const issued = await signCsr(ca, readFileSync(join(dir, 'r.csr'), 'utf8'), {
        entitledSpiffeId: ID,
      });
      const leaf = parseCertificates(issued.certChainPem)[0];
      assert.ok(leaf);
      assert.equal(spiffeIdOf(leaf), ID);
    }
    // A 1024-bit RSA key is refused.
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'rsa:1024',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'r.csr'),
        '-subj',
        '/O=test',
        '-addext',
        `subjectAltName=URI:${ID}`,
      ],
      { stdio: 'ignore' },
    );
    await assert.rejects(
      signCsr(ca, readFileSync(join(dir, 'r.csr'), 'utf8'), { entitledSpiffeId: ID }),
      /at least 2048 bits/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('property: any corruption of a CSR is refused with a Palisade error, never a crash or an SVID', async () => {
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const { csrPem } = await createCsr(ID);
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      async (flips) => {
        const bytes = Buffer.from(der);
        for (const [at, mask] of flips) bytes[at] = (bytes[at] ?? 0) ^ mask;
        const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${bytes.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
        try {
          const issued = await signCsr(ca, pem, { entitledSpiffeId: ID });
          // Only a flip that leaves signed content intact could pass (e.g. in unused bits); the identity must still be right.
          assert.equal(spiffeIdOf(parseCertificates(issued.certChainPem)[0]!), ID);
        } catch (err) {
          assert.ok(isPalisadeError(err), String(err));
        }
      },
    ),
    { numRuns: 300 },
  );
  assert.throws(
    () => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----'),
    /PEM|parsed/,
  );
});

test('a CSR over 16 KiB is refused before it is parsed', async () => {
  const ca = await createRootCa({ trustDomain: 'cluster.local' });
  const huge = `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(17 * 1024)}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(signCsr(ca, huge, { entitledSpiffeId: ID }), (error: unknown) => {
    assert.equal((error as { code?: string }).code, 'PAL_ERR_CA_REQUEST_TOO_LARGE');
    return true;
  });
});
