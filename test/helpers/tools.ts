// Real peers the tests drive (prometheus, chromium, …) and the lock every test
// that runs the Bookinfo mesh on its fixed loopback addresses takes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Finds a program the test needs. Outside CI a missing one makes the test skip
 * with a message saying how to install it; in CI (CI=true, set by .ci/run)
 * nothing skips: `skip` is false and the test must fail on `path` undefined.
 */
export function findTool(
  command: string,
  install: string,
): { path: string | undefined; skip: string | false } {
  const which = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : undefined;
  const path = found !== undefined && found !== '' && existsSync(found) ? found : undefined;
  if (path !== undefined || process.env['CI'] === 'true') return { path, skip: false };
  const message = `no \`${command}\` on PATH (install it: ${install})`;
  console.log(`# skipped: ${message}`);
  return { path, skip: message };
}

/**
 * Holds an exclusive lock for tests that start the Bookinfo mesh: it binds
 * fixed loopback addresses (127.10.x, 127.11.x, 127.12.x) and default ports,
 * so two such tests (run concurrently by `npm test`) must take turns. The lock
 * is flock(1) held by a child process until `release()`. It is a different
 * file from the one people wrap whole runs in (/tmp/palisade-e2e.lock), so a
 * run wrapped in that lock does not deadlock here.
 */
export async function bookinfoLock(
  // Other tests with fixed machine-wide names (network namespaces) pass their own lock file.
  file = '/tmp/palisade-bookinfo-tests.lock',
): Promise<{ release: () => Promise<void> }> {
  const child = spawn('flock', ['-w', '900', file, '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('locked')) resolve();
    });
    child.once('exit', (code) => {
      reject(new Error(`flock exited (${String(code)}) without the lock ${file}`));
    });
  });
  return {
    release: async () => {
      child.stdin.end();
      await exited;
    },
  };
}
