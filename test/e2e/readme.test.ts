// The README, re-read by running it (issue 16): every ```sh block is run in
// order from the repository root with bash (stdout and stderr together), and
// when a ```text block follows it directly, what the commands printed must be
// that text. In the expected text, `…` inside a line stands for any
// characters (a version, a serial, a temporary path) and a line that is only
// `…` for any number of lines. The first block (`npm install` / `npm start` /
// `npm test`) is not run as such: the mesh is started the way `npm start`
// starts it (the command after its build step, in the background, on its
// default addresses and ports) and its output is compared with the text
// block that follows; `npm install` and `npm test` are what runs this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runProcess, spawnPalisade } from '../helpers/index.js';
import { bookinfoLock } from '../helpers/tools.js';

interface Block {
  readonly lang: string;
  readonly text: string;
  readonly line: number;
}

/** Fenced blocks in order; `next` says whether a block directly follows the previous one. */
function fencedBlocks(markdown: string): (Block & { directlyAfterPrevious: boolean })[] {
  const out: (Block & { directlyAfterPrevious: boolean })[] = [];
  const lines = markdown.split('\n');
  let between: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? '');
    if (open === null) {
      between.push(lines[i] ?? '');
      continue;
    }
    const body: string[] = [];
    const start = i + 1;
    for (i += 1; i < lines.length && lines[i] !== '```'; i += 1) body.push(lines[i] ?? '');
    out.push({
      lang: open[1] ?? '',
      text: body.join('\n'),
      line: start,
      directlyAfterPrevious: between.every((l) => l.trim() === ''),
    });
    between = [];
  }
  return out;
}

/** Whether `actual` lines are what `expected` shows (`…` wildcards, see above). */
export function matchesShown(expected: readonly string[], actual: readonly string[]): boolean {
  const [first, ...rest] = expected;
  if (first === undefined) return actual.length === 0;
  if (first.trim() === '…') {
    for (let skip = 0; skip <= actual.length; skip += 1)
      if (matchesShown(rest, actual.slice(skip))) return true;
    return false;
  }
  const [line, ...others] = actual;
  if (line === undefined) return false;
  const pattern = first
    .trimEnd()
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${pattern}$`).test(line.trimEnd()) && matchesShown(rest, others);
}

const lines = (text: string): string[] => text.replace(/\n+$/, '').split('\n');

test(
  'every command in the README works and prints what the README shows',
  { timeout: 600_000 },
  async (t) => {
    const blocks = fencedBlocks(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
    const runnable = blocks
      .map((b, i) => ({ ...b, expected: blocks[i + 1] }))
      .filter((b) => b.lang === 'sh')
      .map((b) => ({
        ...b,
        expected:
          b.expected?.lang === 'text' && b.expected.directlyAfterPrevious ? b.expected : undefined,
      }));
    const [startBlock, ...commands] = runnable;
    assert.ok(
      startBlock !== undefined && /^npm start\b/m.test(startBlock.text),
      'the first block has npm start',
    );
    assert.ok(
      commands.length >= 8,
      `README has its walkthrough (${String(commands.length)} blocks)`,
    );

    // Undone last-first: the mesh, then the lock.
    const cleanups: (() => unknown)[] = [];
    t.after(async () => {
      for (const undo of cleanups.reverse()) await undo();
    });
    const lock = await bookinfoLock();
    cleanups.push(() => lock.release());

    // `npm start` = build, then this command (the build already ran: tests run on dist/).
    const start = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts['start'];
    const m = /^npm run build --silent && node dist\/src\/cli\/main\.js (.+)$/.exec(start ?? '');
    assert.ok(m?.[1] !== undefined, `npm start is build + palisade: ${String(start)}`);
    const mesh = await spawnPalisade(m[1].split(' '), {
      ready: /Ctrl-C stops the mesh/,
      timeoutMs: 150_000,
      cwd: REPO_ROOT,
    });
    cleanups.push(async () => {
      assert.equal(await mesh.stop(20_000), 0, 'the mesh stops cleanly (Ctrl-C)');
    });
    // What npm start prints is the first text block after it (prose in between).
    const shown = blocks.find((b) => b.line > startBlock.line && b.lang === 'text');
    assert.ok(shown !== undefined, 'the README shows what npm start prints');
    const printed = mesh
      .output()
      .split('\n')
      .filter((l) => !l.startsWith('palisade up: ') && !l.startsWith('{'));
    const upTo = printed.findIndex((l) => l.startsWith('Ctrl-C stops the mesh'));
    assert.ok(
      matchesShown(lines(shown.text), printed.slice(0, upTo + 1)),
      `README.md:${String(shown.line)} shows\n${shown.text}\nnpm start printed\n${printed.join('\n')}`,
    );

    for (const block of commands) {
      const r = await runProcess('bash', ['-c', `exec 2>&1\n${block.text}`], {
        cwd: REPO_ROOT,
        timeoutMs: 120_000,
      });
      if (block.expected === undefined) continue;
      assert.ok(
        matchesShown(lines(block.expected.text), lines(r.stdout)),
        `README.md:${String(block.line)}\n${block.text}\nshows\n${block.expected.text}\nbut printed (exit ${String(r.code)})\n${r.stdout}`,
      );
    }
  },
);

test('the README matcher: … stands for characters in a line, or for lines', () => {
  assert.ok(matchesShown(['a …', 'b'], ['a 12', 'b']));
  assert.ok(!matchesShown(['a …', 'b'], ['a 12', 'c']));
  assert.ok(matchesShown(['x', '…', 'z'], ['x', '1', '2', 'z']));
  assert.ok(matchesShown(['x', '…', 'z'], ['x', 'z']));
  assert.ok(!matchesShown(['x'], ['x', 'extra']));
  assert.ok(matchesShown(['(a.b) [c]'], ['(a.b) [c]']));
  assert.ok(!matchesShown(['(a.b)'], ['(axb)']));
});
