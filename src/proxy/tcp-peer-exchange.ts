/**
 * Peer metadata for TCP connections between sidecars, as Istio's
 * `envoy.filters.network.metadata_exchange` does it: a client sidecar that
 * relays opaque bytes over mesh mTLS offers the ALPN `istio-peer-exchange`;
 * when the server sidecar selects it, each side first writes one preamble —
 * Istio's magic number, a 4-byte length, then the node metadata (here the
 * same value the HTTP exchange carries in `x-envoy-peer-metadata`, see
 * telemetry/peer-metadata.ts) — and only then the application's bytes flow.
 * The app never sees the preamble; a peer that did not negotiate the ALPN
 * gets none and is reported from what mTLS proved alone.
 *
 * Hostile peers: a preamble must arrive within {@link PREAMBLE_TIMEOUT_MS},
 * carry the magic number and at most MAX_PEER_METADATA_BYTES; anything else
 * closes that connection (the caller's decision) and nothing is trusted that
 * the principal mTLS proved does not own (the exchange's `fromClient` /
 * `fromServer` checks).
 */
import type { Duplex } from 'node:stream';
import {
  MAX_PEER_METADATA_BYTES,
  PEER_METADATA_HEADER,
  type PeerMetadataExchange,
} from '../telemetry/index.js';

/** The ALPN that says "exchange metadata first" (Istio's). */
export const TCP_PEER_EXCHANGE_ALPN = 'istio-peer-exchange';
/** Istio's metadata-exchange magic number, first 4 bytes of a preamble. */
const MAGIC = 0x3d230467;
/** How long a peer may take to send its preamble. */
export const PREAMBLE_TIMEOUT_MS = 5_000;

/** The preamble carrying `value` (an encoded `x-envoy-peer-metadata`; empty = nothing to share). */
export function encodePreamble(value: string): Buffer {
  const payload = Buffer.from(value, 'latin1');
  const out = Buffer.allocUnsafe(8 + payload.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(payload.length, 4);
  payload.copy(out, 8);
  return out;
}

/** What {@link parsePreamble} found in the bytes read so far. */
export type PreambleParse =
  | { readonly kind: 'more' }
  | { readonly kind: 'bad'; readonly reason: string }
  | { readonly kind: 'done'; readonly value: string; readonly rest: Buffer };

/** Parses a preamble from the start of `bytes` (never throws: they come from the network). */
export function parsePreamble(bytes: Buffer): PreambleParse {
  if (bytes.length < 8) return { kind: 'more' };
  if (bytes.readUInt32BE(0) !== MAGIC) return { kind: 'bad', reason: 'no metadata magic number' };
  const length = bytes.readUInt32BE(4);
  if (length > MAX_PEER_METADATA_BYTES)
    return {
      kind: 'bad',
      reason: `metadata of ${String(length)} bytes (limit ${String(MAX_PEER_METADATA_BYTES)})`,
    };
  if (bytes.length < 8 + length) return { kind: 'more' };
  return {
    kind: 'done',
    value: bytes.subarray(8, 8 + length).toString('latin1'),
    rest: bytes.subarray(8 + length),
  };
}

/**
 * Reads the peer's preamble from `socket` and leaves the socket paused with
 * the bytes after it unshifted (nothing of the app's stream is lost). Resolves
 * the metadata value, or an Error naming why the peer is not to be served.
 */
export function readPreamble(
  socket: Duplex,
  timeoutMs = PREAMBLE_TIMEOUT_MS,
): Promise<string | Error> {
  return new Promise((resolve) => {
    let read: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (result: string | Error, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.pause();
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      read = read.length === 0 ? chunk : Buffer.concat([read, chunk]);
      const parsed = parsePreamble(read);
      if (parsed.kind === 'bad') settle(new Error(parsed.reason));
      else if (parsed.kind === 'done') settle(parsed.value, parsed.rest);
    };
    const onClose = (): void => {
      settle(new Error('closed before its metadata preamble'));
    };
    const timer = setTimeout(() => {
      settle(new Error(`no metadata preamble within ${String(timeoutMs)} ms`));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}

/**
 * Both preambles of a negotiated exchange: writes this proxy's (empty without an exchange),
 * then reads the peer's. Resolves the peer's metadata value and the bytes each preamble took
 * (left out of the byte metrics), or why the peer is not to be served.
 */
export async function swapPreambles(
  socket: Duplex,
  exchange: PeerMetadataExchange | undefined,
): Promise<{ value: string; wrote: number; read: number } | Error> {
  const own = encodePreamble(exchange?.headers[PEER_METADATA_HEADER] ?? '');
  socket.write(own);
  const value = await readPreamble(socket);
  if (value instanceof Error) return value;
  return { value, wrote: own.length, read: 8 + Buffer.byteLength(value, 'latin1') };
}
