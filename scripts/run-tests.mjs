#!/usr/bin/env node
// Runs every test with node:test against the compiled output.
// On Node 20, `node --test DIR` with tsx silently runs zero tests, so this
// script lists the files explicitly: every `*.test.ts` under src/ and test/
// whose compiled twin exists in dist/ (a deleted source never runs stale JS).
// Usage: node scripts/run-tests.mjs [path-prefix ...]   e.g. src/identity test/e2e
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2).map((f) => f.replace(/\/$/, ''));
const sources = [...walk(join(root, 'src'), []), ...walk(join(root, 'test'), [])]
  .map((p) => relative(root, p).split(sep).join('/'))
  .filter((p) => filters.length === 0 || filters.some((f) => p.startsWith(f)))
  .sort();

const files = [];
for (const src of sources) {
  const js = join(root, 'dist', src.replace(/\.ts$/, '.js'));
  if (!existsSync(js)) {
    console.error(`run-tests: ${src} has no compiled output at ${js}; run npm run build`);
    process.exit(1);
  }
  files.push(js);
}
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

const concurrency = process.env.PALISADE_TEST_CONCURRENCY ?? '2';
// Node 20 applies --test-timeout to each test file's process as a whole. The
// three Bookinfo tests (walkthrough, screenshot, README) share one lock because
// they use the mesh's fixed addresses, so one of them may wait several minutes
// for the others before its own run starts: 15 minutes bounds a stuck file.
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=900000', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
