/**
 * Where the client's connections read (pool-connection.ts, with Node's `onread`): regions of
 * shared slabs, each byte written by one read only, so what a read handed on stays valid.
 */
/** A slab is shared by the connections; a connection reads into one region of it at a time. */
const SLAB_BYTES = 256 * 1024;
const REGION_BYTES = 16 * 1024;
/** A region with less room than this after a read is left for a fresh one. */
export const MIN_READ_ROOM = 2048;
let slab: Buffer = Buffer.alloc(0);
let slabUsed = 0;

/**
 * A region of a slab no other read uses. A connection reads into the rest of its region until
 * little room is left, so a byte of a slab is written once: the chunks handed on (body
 * chunks, a partial head kept for the next read) stay valid without a copy.
 */
export function readRegion(): Buffer {
  if (slabUsed + REGION_BYTES > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const region = slab.subarray(slabUsed, slabUsed + REGION_BYTES);
  slabUsed += REGION_BYTES;
  return region;
}
