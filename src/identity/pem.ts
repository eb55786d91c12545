/**
 * PEM helpers and key import/export over WebCrypto (ECDSA P-256 by default).
 * No ASN.1 library here: the proxy's path to its SVID (key, CSR, PEM) loads
 * only this, der.ts and csr.ts; certificate parsing with @peculiar/x509 is in
 * x509.ts.
 */
import { webcrypto } from 'node:crypto';

/** WebCrypto types from Node (the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type Algorithm = webcrypto.Algorithm;

/** The signature algorithm Palisade uses by default: ECDSA P-256 with SHA-256. */
export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const subtle = webcrypto.subtle;

/** Generates a key pair. `extractable` only when the key must be written to disk (CA roots). */
export async function generateKeyPair(extractable = false): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_ALGORITHM, extractable, ['sign', 'verify']);
}

/** DER bytes as one PEM block of `label`. */
export function wrapPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Splits a PEM bundle into its blocks of one label. */
export function pemBlocks(pem: string, label = 'CERTIFICATE'): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g');
  return (pem.match(re) ?? []).map((b) => `${b}\n`);
}

/** Exports a private key as PKCS#8 PEM. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return wrapPem('PRIVATE KEY', new Uint8Array(await subtle.exportKey('pkcs8', key)));
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing. */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const m = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(pem);
  if (m === null) throw new Error('not a PKCS#8 PEM private key (expected "BEGIN PRIVATE KEY")');
  const der = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  return subtle.importKey('pkcs8', der, EC_ALGORITHM, false, ['sign']);
}
