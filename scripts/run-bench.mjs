#!/usr/bin/env node
// Runs the benchmarks under bench/ (compiled to dist/bench/). Each benchmark
// measures Palisade beside a reference in the same run and prints ratios.
// Usage: node scripts/run-bench.mjs [name ...]   e.g. csr-sign authz
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'bench');
const srcDir = join(root, 'bench');
const wanted = process.argv.slice(2);
const names = readdirSync(srcDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .filter((n) => wanted.length === 0 || wanted.includes(n))
  .sort();
if (names.length === 0) {
  console.error('run-bench: no benchmark matched');
  process.exit(1);
}
let failed = 0;
for (const name of names) {
  const js = join(dir, `${name}.bench.js`);
  if (!existsSync(js)) {
    console.error(`run-bench: ${name} is not compiled; run npm run build`);
    process.exit(1);
  }
  console.log(`\n=== bench: ${name} ===`);
  const r = spawnSync(process.execPath, ['--expose-gc', js], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
