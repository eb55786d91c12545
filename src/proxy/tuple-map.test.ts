// TupleMap: a key is its parts, each compared as a Map key is; no two
// different tuples share a value, whatever their parts look like as text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TupleMap } from './tuple-map.js';

test('tuples that would join to the same text are different keys', () => {
  const m = new TupleMap<string>(3);
  const peer = { workload: 'a' };
  const keys: unknown[][] = [
    ['a', 'b', 1],
    ['a', 'b', '1'],
    ['a|b', '', 1],
    ['a', 'b|', 1],
    [undefined, 'b', 1],
    ['', 'b', 1],
    [null, 'b', 1],
    [peer, 'b', 1],
    [{ workload: 'a' }, 'b', 1],
    ['a', 'b', true],
  ];
  keys.forEach((k, i) => {
    m.set(k, `v${String(i)}`);
  });
  assert.equal(m.size, keys.length);
  keys.forEach((k, i) => {
    assert.equal(m.get(k), `v${String(i)}`);
  });
  assert.equal(m.get(['a', 'b', 2]), undefined);
  assert.equal(m.get(['z', 'b', 1]), undefined);
  m.set(['a', 'b', 1], 'again');
  assert.equal(m.size, keys.length, 'a replaced value is not a new one');
  assert.deepEqual(
    [...m.values()].sort(),
    [...keys.map((_, i) => `v${String(i)}`).slice(1), 'again'].sort(),
  );
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.get(['a', 'b', 1]), undefined);
  assert.deepEqual([...m.values()], []);
});

test('a key of the wrong length is an error, not a lookup of something else', () => {
  const m = new TupleMap<number>(2);
  assert.throws(() => m.get(['a']), /2/);
  assert.throws(() => {
    m.set(['a', 'b', 'c'], 1);
  }, /2/);
  assert.throws(() => new TupleMap(0), RangeError);
});
