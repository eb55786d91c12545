import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIELD_VALUE } from './head-parser.js';
import { fieldValueEnd } from './field-scan.js';

/** The byte-by-byte answer the word scan must give. */
function byTable(raw: Buffer, i: number): number {
  while (i < raw.length && FIELD_VALUE[raw[i] ?? 0] === 1) i += 1;
  return i;
}

test('the word scan stops where the table does, for every byte value at every alignment', () => {
  // A pool larger than one value, so values start at every offset modulo 4.
  const pool = Buffer.alloc(64);
  let checked = 0;
  for (let offset = 0; offset < 4; offset += 1)
    for (let length = 1; length <= 13; length += 1)
      for (let at = 0; at < length; at += 1)
        for (let byte = 0; byte < 256; byte += 1) {
          const raw = pool.subarray(offset, offset + length);
          // Allowed bytes of both kinds (visible ASCII and obs-text) around the one under test.
          for (let k = 0; k < length; k += 1) raw[k] = k % 3 === 0 ? 0xe9 : 0x61 + k;
          raw[at] = byte;
          for (const from of [0, 1, 2, 3])
            if (from < length)
              assert.equal(
                fieldValueEnd(raw, from),
                byTable(raw, from),
                `byte 0x${byte.toString(16)} at ${String(at)}, length ${String(length)}, offset ${String(offset)}, from ${String(from)}`,
              );
          checked += 1;
        }
  assert.ok(checked > 40_000);
});

test('a value runs to its CR; HTAB, SP, DEL-adjacent and high bytes inside it', () => {
  const raw = Buffer.from('x-a: a\tb c\x7e\x80\xff~end\r\nrest', 'latin1');
  const start = 5;
  assert.equal(fieldValueEnd(raw, start), raw.indexOf('\r\n'));
  for (const bad of [0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x7f]) {
    const copy = Buffer.from(raw);
    copy[9] = bad;
    assert.equal(fieldValueEnd(copy, start), 9, `0x${bad.toString(16)}`);
  }
});
