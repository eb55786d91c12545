// A fresh clone passes its own tests (issue 16): the committed HEAD is cloned
// (`git clone --no-local`) into a new temporary folder with nothing beside it —
// not the team's `shared` folder — and the test files that used to read that
// folder (the Pod Security fixture test, whose upstream fixtures are now
// vendored under test/fixtures/pod-security and which checks every fixture was
// read) are built and run there, and pass. Nothing in the clone names a path
// outside the repository. (The CLI tests over the same fixtures run in the
// main suite; repeating them here only doubled their minutes.)
import assert from 'node:assert/strict';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runProcess, tempDir } from '../helpers/index.js';

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

test(
  'a fresh clone with nothing beside it builds and passes the tests that used to read outside it',
  { timeout: 1_200_000 },
  async (t) => {
    const dir = tempDir('palisade-clone-');
    t.after(dir.cleanup);
    const clone = join(dir.path, 'palisade');
    const cloned = await runProcess('git', ['clone', '-q', '--no-local', REPO_ROOT, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(existsSync(join(dir.path, 'shared')), false);
    assert.ok(existsSync(join(clone, 'test', 'fixtures', 'pod-security', 'LICENSE')));
    assert.ok(existsSync(join(clone, 'test', 'fixtures', 'pod-security', 'SOURCES.md')));

    // No file of the repository points outside it (.ci is the machine's, not the product's).
    const outside = ['..', 'shared'].join('/');
    const grep = await runProcess('git', [
      '-C',
      clone,
      'grep',
      '-n',
      '-e',
      outside,
      '--',
      '.',
      ':!.ci',
    ]);
    assert.equal(grep.code, 1, `references to ${outside}:\n${grep.stdout}`);

    // The dependencies are the ones installed here (npm ci would need the network).
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    // `npm run build`, as README's `npm start` and `npm test` do (it also marks the CLI executable).
    const build = await runProcess('npm', ['run', 'build', '--silent'], {
      cwd: clone,
      timeoutMs: 600_000,
    });
    assert.equal(build.code, 0, build.stdout + build.stderr);
    // The README's `npx palisade …` on the fresh build (CI once failed: "palisade: Permission denied").
    const npx = await runProcess('npx', ['--no', 'palisade', 'help'], {
      cwd: clone,
      timeoutMs: 60_000,
    });
    assert.equal(npx.code, 0, npx.stdout + npx.stderr);
    assert.match(npx.stdout + npx.stderr, /Usage: palisade/);
    const run = await runProcess(
      process.execPath,
      ['scripts/run-tests.mjs', 'test/kubernetes/pod-security-fixtures.test.ts'],
      {
        cwd: clone,
        timeoutMs: 900_000,
        // Without NODE_TEST_CONTEXT the inner runner reports as a top-level run (TAP on stdout).
        env: { ...withoutTestContext(), PALISADE_TEST_CONCURRENCY: '1' },
      },
    );
    assert.equal(run.code, 0, run.stdout.slice(-4000) + run.stderr.slice(-2000));
    assert.match(run.stdout, /^# fail 0$/m);
    assert.match(run.stdout, /^ok \d+ - every fixture was read$/m);
  },
);
