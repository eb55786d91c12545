// A user's own PKI made with openssl, as Istio's ingress tasks make theirs:
// a self-signed CA and leaf certificates it signs (P-256, two days).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess } from './index.js';

/** `openssl req` arguments for a new unencrypted P-256 key. */
const NEW_P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  const result = await runProcess('openssl', args, { cwd: dir, timeoutMs: 20_000 });
  assert.equal(result.code, 0, `openssl ${args.join(' ')}: ${result.stderr}`);
}

/** Writes `<name>.key` and a self-signed `<name>.crt` with subject CN=`cn` into `dir`. */
export async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-x509',
    ...NEW_P256_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${cn}`,
    '-days',
    '2',
  ]);
}

/**
 * Writes `<name>.key` and `<name>.crt` signed by the CA `<ca>.crt`/`<ca>.key`; `extensions`
 * is an openssl extension file's text (e.g. `subjectAltName=DNS:a.example.com`).
 */
export async function issueCert(
  dir: string,
  ca: string,
  name: string,
  cn: string,
  extensions: string,
): Promise<void> {
  await openssl(dir, [
    'req',
    ...NEW_P256_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}
