// The registry and docs/errors.md must list the same codes (STYLE.md §2).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, PalisadeError, isPalisadeError } from './index.js';

const docsPath = new URL('../../../docs/errors.md', import.meta.url);

test('docs/errors.md documents exactly the registered codes', () => {
  const docs = readFileSync(docsPath, 'utf8');
  const documented = new Set([...docs.matchAll(/^\|\s*`(PAL_ERR_[A-Z0-9_]+)`/gm)].map((m) => m[1]));
  const registered = new Set(Object.keys(ERROR_CODES));
  const undocumented = [...registered].filter((c) => !documented.has(c));
  const stale = [...documented].filter((c) => c !== undefined && !registered.has(c));
  assert.deepEqual(undocumented, [], 'codes missing from docs/errors.md');
  assert.deepEqual(stale, [], 'docs/errors.md lists codes that are not registered');
});

test('every code is PAL_ERR_ upper snake case with a summary and an exit status', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^PAL_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/);
    assert.ok(info.summary.length > 10, `${code} needs a summary`);
    assert.ok(Number.isInteger(info.exit) && info.exit > 0, `${code} needs an exit status`);
  }
});

test('PalisadeError carries code, path and narrows with isPalisadeError', () => {
  const err = new PalisadeError('PAL_ERR_VALIDATION', 'bad', { path: 'spec.x' });
  assert.ok(isPalisadeError(err, 'PAL_ERR_VALIDATION'));
  assert.ok(!isPalisadeError(err, 'PAL_ERR_USAGE'));
  assert.equal(err.path, 'spec.x');
  assert.equal(err.summary, ERROR_CODES.PAL_ERR_VALIDATION.summary);
});
