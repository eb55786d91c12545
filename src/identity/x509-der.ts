/**
 * DER pieces shared by the certificates the CA issues and the CSRs workloads
 * send it (RFC 5280 §4.1, RFC 2986 §4).
 */
import { isIPv4, isIPv6 } from 'node:net';
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

/** The 4 or 16 bytes of an IPv4/IPv6 address (an iPAddress GeneralName, RFC 5280 §4.2.1.6). */
function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  const h = groups(head);
  const t = ip.includes('::') ? groups(tail) : [];
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** A subjectAltName extension (not critical) with URIs, DNS names and IP addresses, in that order. */
export function sanExtension(
  uris: readonly string[],
  dnsNames: readonly string[],
  ips: readonly string[] = [],
): Buffer {
  const names = [
    ...uris.map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
    ...dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...ips.map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  return seq(OID_SAN, octetString(seq(...names)));
}
