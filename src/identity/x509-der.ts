/**
 * DER pieces shared by the certificates the CA issues and the CSRs workloads
 * send it (RFC 5280 §4.1, RFC 2986 §4).
 */
import { octetString, seq, tlv } from './der.js';

/** AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 §3.2; no parameters). */
export const ECDSA_WITH_SHA256 = Buffer.from([
  0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
]);

/** Subject "O=Palisade": the SPIFFE ID lives in the SAN; the subject only names the product. */
export const PALISADE_SUBJECT = seq(
  tlv(0x31, seq(Buffer.from([0x06, 0x03, 0x55, 0x04, 0x0a]), tlv(0x0c, Buffer.from('Palisade')))),
);

const OID_SAN = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);

/** A subjectAltName extension (not critical) with URIs and DNS names, in that order. */
export function sanExtension(uris: readonly string[], dnsNames: readonly string[]): Buffer {
  const names = [
    ...uris.map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
    ...dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
  ];
  return seq(OID_SAN, octetString(seq(...names)));
}
