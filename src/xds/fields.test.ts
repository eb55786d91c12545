// The allow-list helpers tie the proxy's NACK lists to the shared xDS types.
// The `@ts-expect-error` lines are the real test: `npm run build` fails if
// any of them compiles (a list naming a field the type lacks, or leaving one out).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allFieldsOf, fieldsOf } from './fields.js';

type Sample = { a?: number; b: string; c?: { d: boolean } };

test('allow-lists are checked against the type they guard', () => {
  assert.deepEqual([...allFieldsOf<Sample>()('a', 'b', 'c')], ['a', 'b', 'c']);
  assert.deepEqual([...fieldsOf<Sample>()('c')], ['c']);
  // @ts-expect-error a field of the type is left out
  allFieldsOf<Sample>()('a', 'b');
  // @ts-expect-error `d` is not a field of the type
  fieldsOf<Sample>()('a', 'd');
  // @ts-expect-error `d` is not a field of the type, even with every real one named
  allFieldsOf<Sample>()('a', 'b', 'c', 'd');
});
