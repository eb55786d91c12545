// The loopback-mode preload: a plain `fetch('http://details:9080/…')` in a Node
// app started with NODE_OPTIONS=--import=<preload> and HTTP_PROXY goes to the
// proxy as an absolute-form request (no CONNECT), and without HTTP_PROXY the
// preload changes nothing.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

const PRELOAD = new URL('./http-proxy.js', import.meta.url).href;

test('the preload makes fetch use HTTP_PROXY with absolute-form requests', async (t) => {
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}`);
    res.end('{"from":"proxy"}');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => proxy.close());
  const port = (proxy.address() as AddressInfo).port;
  const script =
    "fetch('http://details:9080/details/0').then(async (r) => console.log(r.status, await r.text()), (e) => console.log('error', e.cause?.code ?? e.message))";
  const child = await new Promise<{ stdout: string }>((resolve) => {
    // Asynchronous: the proxy runs in this process.
    const c = spawn(process.execPath, ['-e', script], {
      env: {
        PATH: process.env['PATH'] ?? '',
        NODE_OPTIONS: `--import=${PRELOAD}`,
        HTTP_PROXY: `http://127.0.0.1:${String(port)}`,
      },
    });
    let stdout = '';
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    c.on('close', () => {
      resolve({ stdout });
    });
  });
  assert.equal(child.stdout.trim(), '200 {"from":"proxy"}');
  assert.deepEqual(seen, ['GET http://details:9080/details/0 host=details:9080']);

  const without = spawnSync(process.execPath, ['-e', script], {
    env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: `--import=${PRELOAD}` },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.match(
    without.stdout,
    /^error /,
    'no HTTP_PROXY: fetch resolves the name itself (and fails here)',
  );
  assert.equal(seen.length, 1);
});
