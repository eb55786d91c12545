/** PEM helpers and key import/export over WebCrypto (ECDSA P-256 by default). */
// @peculiar/x509 2.x resolves its ASN.1 classes through tsyringe, which needs
// the Reflect metadata polyfill loaded before it.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** WebCrypto types from Node (the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type Algorithm = webcrypto.Algorithm;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The signature algorithm Palisade uses by default: ECDSA P-256 with SHA-256. */
export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const subtle = webcrypto.subtle;

/** Generates a key pair. `extractable` only when the key must be written to disk (CA roots). */
export async function generateKeyPair(extractable = false): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_ALGORITHM, extractable, ['sign', 'verify']);
}

function wrapPem(label: string, der: ArrayBuffer): string {
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
  return wrapPem('PRIVATE KEY', await subtle.exportKey('pkcs8', key));
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing. */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const m = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(pem);
  if (m === null) throw new Error('not a PKCS#8 PEM private key (expected "BEGIN PRIVATE KEY")');
  const der = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  return subtle.importKey('pkcs8', der, EC_ALGORITHM, false, ['sign']);
}

/** Parses every certificate in a PEM bundle. */
export function parseCertificates(pem: string): x509.X509Certificate[] {
  return pemBlocks(pem).map((b) => new x509.X509Certificate(b));
}

export { x509 };
