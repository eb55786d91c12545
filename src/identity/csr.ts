/**
 * The certificate signing request a workload sends the CA (PKCS #10, RFC 2986
 * §4): subject O=Palisade, the workload's public key, and an extensionRequest
 * attribute (PKCS #9 §5.4.2) holding one subjectAltName extension with the
 * SPIFFE ID, self-signed with ECDSA P-256 / SHA-256. Built with the DER writer
 * the CA issues with, so asking for an SVID loads no ASN.1 library.
 */
import { KeyObject, sign, webcrypto } from 'node:crypto';
import { bitString, integer, seq, tlv } from './der.js';
import { generateKeyPair, wrapPem, type CryptoKeyPair } from './pem.js';
import { ECDSA_WITH_SHA256, PALISADE_SUBJECT, sanExtension } from './x509-der.js';

const OID_EXTENSION_REQUEST = Buffer.from([
  0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e,
]);

/**
 * A PEM CSR for `spiffeId` (plus `extraSans`) over `keys` (a new P-256 pair
 * when not given). Only ECDSA keys sign CSRs here.
 */
export async function createCsr(
  spiffeId: string,
  options: {
    readonly extraSans?: readonly { type: 'dns' | 'url'; value: string }[];
    readonly keys?: CryptoKeyPair;
  } = {},
): Promise<{ csrPem: string; keys: CryptoKeyPair }> {
  const keys = options.keys ?? (await generateKeyPair(false));
  if (keys.privateKey.algorithm.name !== 'ECDSA')
    throw new Error(`createCsr signs with ECDSA keys, not ${keys.privateKey.algorithm.name}`);
  const extra = options.extraSans ?? [];
  const san = sanExtension(
    [spiffeId, ...extra.filter((n) => n.type === 'url').map((n) => n.value)],
    extra.filter((n) => n.type === 'dns').map((n) => n.value),
  );
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const info = seq(
    integer(Buffer.from([0])), // version v1(0)
    PALISADE_SUBJECT,
    spki,
    tlv(0xa0, seq(OID_EXTENSION_REQUEST, tlv(0x31, seq(san)))), // [0] attributes
  );
  // node:crypto writes ECDSA signatures in DER, as X.509 wants them (RFC 5480 §2.2.3).
  const signature = sign('sha256', info, KeyObject.from(keys.privateKey));
  return {
    csrPem: wrapPem('CERTIFICATE REQUEST', seq(info, ECDSA_WITH_SHA256, bitString(signature))),
    keys,
  };
}
