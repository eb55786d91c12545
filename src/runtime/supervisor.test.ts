import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffDelay, createSupervisor, type SupervisorEvent } from './supervisor.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('backoff doubles from the initial delay and is capped', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffDelay(n, 100, 500)),
    [100, 200, 400, 500, 500],
  );
});

test('a crashing process is restarted with growing delays, then marked failed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pal-sup-'));
  const events: SupervisorEvent[] = [];
  const sup = createSupervisor({
    logDir: join(dir, 'logs'),
    initialBackoffMs: 10,
    maxRestarts: 3,
    onEvent: (e) => events.push(e),
  });
  // Stopped before its directory goes: a supervisor still running would reopen a log there.
  t.after(async () => {
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  sup.start({
    name: 'crasher',
    command: process.execPath,
    args: ['-e', 'console.log("boom"); process.exit(3)'],
  });
  await until(() => sup.failed().includes('crasher'), 'crasher to fail');
  const restarts = events.filter((e) => e.type === 'restarting');
  assert.deepEqual(
    restarts.map((e) => e.delayMs),
    [10, 20, 40],
  );
  assert.equal(events.filter((e) => e.type === 'started').length, 4);
  assert.ok(events.some((e) => e.type === 'exited' && e.code === 3));
  const log = readFileSync(join(dir, 'logs', 'crasher.log'), 'utf8');
  assert.equal(log.split('boom').length - 1, 4, 'each run appends to the log');
});

test('stop() ends every process group: no leader or grandchild survives', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pal-sup-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const pidFile = join(dir, 'grandchild.pid');
  const sup = createSupervisor({ logDir: join(dir, 'logs'), stopGraceMs: 2_000 });
  // The leader ignores SIGTERM (so SIGKILL after the grace is exercised) and
  // starts a grandchild that would otherwise be orphaned.
  const script = `
    const { spawn } = require('node:child_process');
    const fs = require('node:fs');
    const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    fs.writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
    process.on('SIGTERM', () => {});
    setInterval(() => {}, 1000);`;
  sup.start({ name: 'parent', command: process.execPath, args: ['-e', script] });
  sup.start({
    name: 'plain',
    command: process.execPath,
    args: ['-e', 'setInterval(() => {}, 1000)'],
  });
  await until(
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0,
    'grandchild pid',
  );
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  const pids = [...sup.pids().values(), grandchild];
  assert.equal(pids.length, 3);
  for (const pid of pids) assert.ok(alive(pid), `pid ${String(pid)} runs before stop`);
  await sup.stop();
  await until(() => pids.every((pid) => !alive(pid)), 'every pid to be gone');
  assert.equal(sup.pids().size, 0);
});

test('the restart budget is per window: after the back-off the process is tried again (CrashLoopBackOff)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pal-sup-'));
  const events: SupervisorEvent[] = [];
  const sup = createSupervisor({
    logDir: join(dir, 'logs'),
    initialBackoffMs: 10,
    maxBackoffMs: 40,
    maxRestarts: 2,
    // Wide enough that three quick crashes fall in it even on a loaded machine.
    restartWindowMs: 5_000,
    onEvent: (e) => events.push(e),
  });
  // Stopped before its directory goes: a supervisor still running would reopen a log there.
  t.after(async () => {
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  sup.start({ name: 'crasher', command: process.execPath, args: ['-e', 'process.exit(3)'] });
  // Two restarts spend the budget; the back-off ends when the oldest leaves the window, and
  // the process runs again (Kubernetes never gives up on a crash-looping container).
  await until(
    () => {
      const first = events.findIndex((e) => e.type === 'failed');
      return first !== -1 && events.slice(first).some((e) => e.type === 'started');
    },
    'a start after the back-off',
    600,
  );
  const failed = events.filter((e) => e.type === 'failed');
  for (const e of failed) {
    assert.equal(e.restarts, 2);
    assert.equal(e.windowMs, 5_000);
    assert.ok(
      e.delayMs > 0 && e.delayMs <= 5_000,
      `back-off ${String(e.delayMs)} within the window`,
    );
  }
  const firstFailed = events.indexOf(failed[0] as SupervisorEvent);
  assert.ok(
    events.slice(firstFailed).some((e) => e.type === 'started'),
    'started again after the back-off',
  );
});

test('a run that lasted stableAfterMs resets the backoff to its initial delay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pal-sup-'));
  const counter = join(dir, 'runs');
  const events: SupervisorEvent[] = [];
  const sup = createSupervisor({
    logDir: join(dir, 'logs'),
    initialBackoffMs: 10,
    maxRestarts: 10,
    // A crash comes well within this even on a loaded machine; run 3 outlives it.
    stableAfterMs: 5_000,
    onEvent: (e) => events.push(e),
  });
  // Stopped before its directory goes: a supervisor still running would reopen a log there.
  t.after(async () => {
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  // Runs 1–2 crash at once; run 3 is stable (it exits only after a stable period); run 4 crashes.
  const script = `
    const fs = require('node:fs');
    const n = (fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')) : 0) + 1;
    fs.writeFileSync(${JSON.stringify(counter)}, String(n));
    if (n === 3) setTimeout(() => process.exit(1), 7000);
    else if (n < 5) process.exit(1);
    else setInterval(() => {}, 1000);`;
  sup.start({ name: 'flaky', command: process.execPath, args: ['-e', script] });
  await until(() => events.filter((e) => e.type === 'started').length >= 5, 'five runs', 600);
  assert.deepEqual(
    events.filter((e) => e.type === 'restarting').map((e) => e.delayMs),
    [10, 20, 10, 20],
  );
});
