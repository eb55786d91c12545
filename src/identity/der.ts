/**
 * Minimal DER (ITU-T X.690 §10) reading and writing for the CA's hot path:
 * issuing an SVID is a fixed template (X509-SVID §4) with a handful of
 * per-request fields, so building the TBSCertificate directly and signing it
 * with node:crypto avoids a general ASN.1 object model per request. General
 * certificate parsing still goes through @peculiar/x509.
 *
 * The reader is for untrusted input (CSRs): it checks every length against
 * the buffer, accepts only definite lengths of at most 4 bytes, and throws
 * DerError on anything malformed.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One TLV element: tag byte, the value's bounds, and the whole element's bounds. */
export interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/** Reads the element starting at `offset` within `buf[offset, limit)`. */
export function readElement(buf: Uint8Array, offset = 0, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError('truncated element header');
  const tag = buf[offset] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[offset + 1] ?? 0;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length too large');
    if (pos + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos + i] ?? 0);
    pos += n;
  }
  if (pos + len > limit) throw new DerError('element exceeds its container');
  return { tag, start: offset, valueStart: pos, end: pos + len };
}

/** The children of a constructed element. */
export function children(buf: Uint8Array, el: DerElement): DerElement[] {
  if ((el.tag & 0x20) === 0) throw new DerError(`tag 0x${el.tag.toString(16)} is not constructed`);
  const out: DerElement[] = [];
  let pos = el.valueStart;
  while (pos < el.end) {
    const child = readElement(buf, pos, el.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** The bytes of a whole element. */
export function bytesOf(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.start, el.end);
}

/** The value bytes of an element. */
export function valueOf(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.valueStart, el.end);
}

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | out.length, ...out];
}

/** Encodes one TLV element. */
export function tlv(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body]);
}

export const seq = (...parts: readonly Uint8Array[]): Buffer => tlv(0x30, ...parts);

/** A positive INTEGER from big-endian magnitude bytes. */
export function integer(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(0x02, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

/** UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** BIT STRING with no unused bits. */
export const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), bytes);
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
