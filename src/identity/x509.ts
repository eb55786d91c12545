/**
 * Certificate parsing with @peculiar/x509 (the CA, inspection, trust bundles).
 * Kept apart from pem.ts so that modules which only need keys and PEM do not
 * load the ASN.1 library (~9 MB of resident memory in every proxy).
 */
// @peculiar/x509 2.x resolves its ASN.1 classes through tsyringe, which needs
// the Reflect metadata polyfill loaded before it.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { pemBlocks } from './pem.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Parses every certificate in a PEM bundle. */
export function parseCertificates(pem: string): x509.X509Certificate[] {
  return pemBlocks(pem).map((b) => new x509.X509Certificate(b));
}

export { x509 };
