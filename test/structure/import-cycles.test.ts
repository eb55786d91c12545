// No import cycle in src/ (STYLE.md §1: capability folders compose, they do not
// import each other back). A small graph check over the TypeScript sources:
// every relative `import`/`export … from` is an edge; a cycle fails the test
// with its path, e.g. `a.ts → b.ts → a.ts`. Runtime imports must be acyclic,
// and so must type-only ones (a type cycle is a layering mistake even though
// TypeScript erases it).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../../../', import.meta.url).pathname;
const SRC = join(ROOT, 'src');

function sources(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) sources(p, out);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Imports of one file (relative specifiers, `.js` → `.ts`); `runtimeOnly` skips type-only ones. */
export function runtimeImports(file: string, text: string, runtimeOnly = true): string[] {
  const out: string[] = [];
  const re =
    /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[4] ?? m[5];
    if (spec === undefined) continue;
    if (!runtimeOnly) {
      out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      continue;
    }
    if (m[2] !== undefined) continue;
    // `import { type A, type B } from` is type-only too.
    const names = m[3] ?? '';
    const inner = /^\{([^}]*)\}$/.exec(names.trim())?.[1];
    if (
      inner !== undefined &&
      inner
        .split(',')
        .map((n) => n.trim())
        .every((n) => n === '' || /^type\s/.test(n))
    )
      continue;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const found = visit(next);
        if (found !== undefined) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys())
    if (state.get(node) === undefined) {
      const found = visit(node);
      if (found !== undefined) return found;
    }
  return undefined;
}

test('the checker finds a cycle and ignores type-only imports', () => {
  assert.deepEqual(
    runtimeImports('/x/a.ts', "import type { B } from './b.js';\nimport { type C } from './c.js';"),
    [],
  );
  assert.deepEqual(
    runtimeImports('/x/a.ts', "import { b } from './b.js';\nexport * from '../y/c.js';"),
    ['/x/b.ts', '/y/c.ts'],
  );
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
  ]);
  assert.deepEqual(findCycle(graph), ['a', 'b', 'c', 'a']);
  assert.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    undefined,
  );
});

for (const runtimeOnly of [true, false])
  test(`src/ has no ${runtimeOnly ? 'runtime' : 'type-level'} import cycle`, () => {
    const graph = new Map<string, string[]>();
    for (const file of sources(SRC))
      graph.set(file, runtimeImports(file, readFileSync(file, 'utf8'), runtimeOnly));
    const cycle = findCycle(graph);
    assert.equal(
      cycle?.map((f) => relative(ROOT, f)).join(' → '),
      undefined,
      'an import cycle in src/',
    );
  });
