#!/usr/bin/env node
// Marks the compiled CLI entry (package.json "bin") executable. tsc writes it
// 0644; npm sets the mode only when it links a bin at install time, and on a
// fresh clone `npm ci` runs before the first build, so `npx palisade` would
// find a file it may not execute ("palisade: Permission denied").
import { chmodSync, readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
for (const target of Object.values(pkg.bin ?? {})) chmodSync(new URL(target, root), 0o755);
