/**
 * Reads the server name (SNI) from a TLS ClientHello without terminating TLS,
 * as Envoy's tls_inspector does for TLS passthrough (RFC 8446 §4.1.2,
 * RFC 6066 §3). Only the first record is read: a ClientHello fits one record
 * (16 KiB) in practice.
 */

/** What the bytes read so far say about the ClientHello. */
export type ClientHelloState =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'not-tls' }
  | { readonly kind: 'hello'; readonly serverName: string | undefined };

/** The most a peeked ClientHello record may span (record header + 2^14 bytes). */
export const MAX_CLIENT_HELLO_BYTES = 5 + 16_384;

/** Parses the first TLS record in `data`; `incomplete` until the whole record has arrived. */
export function readClientHello(data: Buffer): ClientHelloState {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] !== 0x16) return { kind: 'not-tls' };
  if (data.length < 5) return { kind: 'incomplete' };
  const recordLength = data.readUInt16BE(3);
  if (recordLength > 16_384) return { kind: 'not-tls' };
  if (data.length < 5 + recordLength) return { kind: 'incomplete' };
  const body = data.subarray(5, 5 + recordLength);
  if (body[0] !== 0x01 || body.length < 4) return { kind: 'not-tls' };
  return { kind: 'hello', serverName: serverNameOf(body) };
}

/** The host_name of the server_name extension in a ClientHello handshake message. */
function serverNameOf(handshake: Buffer): string | undefined {
  // Truncated to the record: a longer message's tail is simply not read.
  const end = Math.min(handshake.length, 4 + handshake.readUIntBE(1, 3));
  let at = 4 + 2 + 32; // type + length, legacy_version, random
  const skip = (lengthBytes: number): boolean => {
    if (at + lengthBytes > end) return false;
    at += lengthBytes + handshake.readUIntBE(at, lengthBytes);
    return at <= end;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session id, cipher suites, compression
  if (at + 2 > end) return undefined;
  const extensionsEnd = Math.min(end, at + 2 + handshake.readUInt16BE(at));
  at += 2;
  while (at + 4 <= extensionsEnd) {
    const type = handshake.readUInt16BE(at);
    const length = handshake.readUInt16BE(at + 2);
    at += 4;
    if (type === 0x0000) {
      const listEnd = Math.min(at + length, extensionsEnd);
      let entry = at + 2;
      while (entry + 3 <= listEnd) {
        const nameType = handshake[entry];
        const nameLength = handshake.readUInt16BE(entry + 1);
        if (entry + 3 + nameLength > listEnd) return undefined;
        if (nameType === 0)
          return handshake
            .toString('ascii', entry + 3, entry + 3 + nameLength)
            .toLowerCase()
            .replace(/\.$/, '');
        entry += 3 + nameLength;
      }
      return undefined;
    }
    at += length;
  }
  return undefined;
}
