// `palisade up` started by another program with a pipe for stdin stops its mesh when that
// program dies without stopping it (a test file killed by its timeout, a crashed
// supervisor): the pipe's end is the signal. Before, the control plane, gateways and apps
// stayed up on their fixed ports and the next Bookinfo test collided with them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, tempDir, waitFor } from '../helpers/index.js';
import { bookinfoLock } from '../helpers/tools.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

test('up stops its mesh when the process that started it dies', async (t) => {
  // The mesh's gateways and control plane use the fixed addresses the Bookinfo tests use.
  const lock = await bookinfoLock();
  t.after(() => lock.release());
  const dir = tempDir();
  t.after(() => {
    dir.cleanup();
  });
  const meshDir = join(dir.path, 'tiny');
  mkdirSync(meshDir);
  writeFileSync(
    join(meshDir, 'mesh.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
  );
  // The parent: starts `up` with stdin a pipe it never closes, prints up's PID, then idles.
  const parent = spawn(
    process.execPath,
    [
      '-e',
      `const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify([
        CLI,
        'up',
        '-f',
        meshDir,
        '--state-dir',
        join(dir.path, 'state'),
        '--isolation',
        'loopback',
      ])}, { stdio: ['pipe', 'inherit', 'inherit'] });
       console.log('UP ' + c.pid); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  parent.stdout.on('data', (d: Buffer) => (output += d.toString()));
  parent.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let upPid = 0;
  t.after(() => {
    parent.kill('SIGKILL');
    if (upPid !== 0 && alive(upPid)) process.kill(upPid, 'SIGTERM');
  });
  await waitFor(() => /Ctrl-C stops the mesh/.test(output), 90_000).catch((error: unknown) => {
    throw new Error(`up did not start: ${String(error)}\n${output}`);
  });
  upPid = Number(/^UP (\d+)$/m.exec(output)?.[1]);
  assert.ok(upPid > 0, output);
  const control = Number(/^Control: \S+:(\d+)/m.exec(output)?.[1]);
  assert.ok(await accepts(control), 'the control plane answers while the parent lives');

  parent.kill('SIGKILL');
  await waitFor(() => !alive(upPid), 30_000).catch((error: unknown) => {
    throw new Error(`up outlived its parent: ${String(error)}\n${output}`);
  });
  assert.equal(await accepts(control), false, 'the control plane stopped with up');
});
