// The DER reader faces untrusted CSRs: it must never read past its input and
// must fail with DerError (never another exception) on malformed bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { children, DerError, integer, readElement, seq, time, tlv, valueOf } from './der.js';

test('written elements read back', () => {
  const der = seq(
    integer(Buffer.from([0x00, 0x80])),
    tlv(0x04, Buffer.alloc(300, 1)),
    time(new Date('2030-01-02T03:04:05Z')),
  );
  const top = readElement(der);
  assert.equal(top.end, der.length);
  const [i, o, t] = children(der, top);
  assert.deepEqual([...valueOf(der, i!)], [0x00, 0x80]); // positive INTEGER keeps its 0x00 pad
  assert.equal(valueOf(der, o!).length, 300);
  assert.equal(Buffer.from(valueOf(der, t!)).toString('ascii'), '300102030405Z');
  assert.equal(time(new Date('2051-01-01T00:00:00Z'))[0], 0x18); // GeneralizedTime from 2050
});

test('property: arbitrary bytes either parse within bounds or throw DerError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        const el = readElement(bytes);
        assert.ok(el.end <= bytes.length && el.valueStart <= el.end);
        if (el.tag & 0x20) for (const c of children(bytes, el)) assert.ok(c.end <= el.end);
      } catch (err) {
        assert.ok(err instanceof DerError, String(err));
      }
    }),
    { numRuns: 5000 },
  );
});
