// StringMemo: each key computed once while kept, undefined answers kept too,
// never more than its entries (cleared when full), long keys never kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StringMemo } from './string-memo.js';

test('a key is computed once while kept, an undefined answer included', () => {
  const calls: string[] = [];
  const memo = new StringMemo((k) => {
    calls.push(k);
    return k === 'none' ? undefined : k.length;
  }, 4);
  assert.equal(memo.get('abc'), 3);
  assert.equal(memo.get('abc'), 3);
  assert.equal(memo.get('none'), undefined);
  assert.equal(memo.get('none'), undefined);
  assert.deepEqual(calls, ['abc', 'none']);
});

test('never more than its entries; long keys are computed each time and not kept', () => {
  let calls = 0;
  const memo = new StringMemo(
    (k) => {
      calls += 1;
      return k.toUpperCase();
    },
    3,
    5,
  );
  for (let i = 0; i < 10; i += 1) {
    assert.equal(memo.get(`k${String(i)}`), `K${String(i)}`);
    assert.ok(memo.size <= 3, `size ${String(memo.size)}`);
  }
  assert.equal(calls, 10);
  const before = memo.size;
  assert.equal(memo.get('longer'), 'LONGER');
  assert.equal(memo.get('longer'), 'LONGER');
  assert.equal(calls, 12, 'a key over keyChars is computed every time');
  assert.equal(memo.size, before, 'and never kept');
});
