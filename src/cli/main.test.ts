import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPalisade } from '../../test/helpers/index.js';

test('palisade --help lists the commands and exits 0', async () => {
  const r = await runPalisade(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: palisade <command>/);
  assert.match(r.stdout, /start/);
});

test('an unknown command exits 2 and names it', async () => {
  const r = await runPalisade(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('palisade start --help explains the main job (the Bookinfo mesh) and exits 0', async () => {
  const r = await runPalisade(['start', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /palisade up -f examples\/bookinfo/);
});
