/**
 * `palisade dashboard` under hostile input, as its own process (a crash shows
 * as an exit): oversized request heads, slow heads (slowloris), path
 * traversal on the static assets, DNS-rebinding Host names, a wrong token,
 * many concurrent tap streams (bounded), and a proxy admin whose /tap stream
 * is garbage (bad JSON lines, a line that never ends). The mesh is a
 * mesh.json naming one gateway proxy whose admin is a server this test runs.
 * Loopback 127.38.3.1 (dashboard) and 127.38.3.2 (the fake admin), ports 0.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnPalisade, tempDir } from '../helpers/index.js';

const HOST = '127.38.3.1';
const ADMIN = '127.38.3.2';

/** Raw request; resolves with what came back until close or `waitMs`. */
function raw(
  port: number,
  chunks: readonly string[],
  waitMs: number,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    const got: Buffer[] = [];
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text: Buffer.concat(got).toString('latin1'), closed });
    };
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      done();
    });
    const timer = setTimeout(done, waitMs);
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
    });
  });
}

const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const get = (path: string, host = HOST, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

/** Opens an SSE tap stream; resolves with the status and the first `bytes` of the body (or what came in `waitMs`). */
function tapStream(
  port: number,
  token: string | undefined,
  waitMs: number,
): Promise<{ status: number; body: string; close: () => void }> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: HOST,
        port,
        path: '/api/tap?workload=istio-ingressgateway.istio-system',
        agent: false,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('error', () => undefined);
        setTimeout(() => {
          resolve({ status: res.statusCode ?? 0, body, close: () => req.destroy() });
        }, waitMs);
      },
    );
    req.on('error', () => {
      resolve({ status: 0, body: '', close: () => undefined });
    });
  });
}

test('the dashboard survives hostile clients and a hostile proxy admin', async (t) => {
  // The fake proxy admin: /tap sends one good line, garbage lines, then a line that never ends.
  const taps = new Set<http.ServerResponse>();
  const admin = http.createServer((req, res) => {
    if (req.url === '/tap') {
      taps.add(res);
      res.on('close', () => taps.delete(res));
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"method":"GET","path":"/good","status":200}\n');
      res.write('{not json\n');
      res.write('[1,2\n');
      res.write('null\n');
      res.write('"a string"\n');
      res.write('{"method":"GET","path":"/after-garbage","status":200}\n');
      res.write(`{"path":"${'x'.repeat(2 * 1024 * 1024)}`);
      return;
    }
    res.writeHead(req.url === '/stats/prometheus' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end('');
  });
  await new Promise<void>((resolve) => admin.listen(0, ADMIN, resolve));
  t.after(() => {
    admin.closeAllConnections();
    admin.close();
  });
  const adminPort = (admin.address() as net.AddressInfo).port;

  const dir = tempDir('palisade-h8-dash-');
  t.after(dir.cleanup);
  mkdirSync(join(dir.path, 'config'));
  writeFileSync(
    join(dir.path, 'mesh.json'),
    JSON.stringify({
      name: 'h8',
      configDir: join(dir.path, 'config'),
      control: '127.38.3.9:9',
      proxies: [
        {
          name: 'istio-ingressgateway',
          nodeId:
            'router~127.38.3.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local',
          adminUrl: `http://${ADMIN}:${String(adminPort)}`,
        },
      ],
    }),
  );
  const token = 'h8-dashboard-secret-0123456789';
  writeFileSync(join(dir.path, 'token'), token);

  // Loopback without a token: Host checks apply.
  const dash = await spawnPalisade(
    ['dashboard', '--state-dir', dir.path, '--address', HOST, '--port', '0'],
    { ready: /Dashboard: http:\/\/[\d.]+:(\d+)\//, timeoutMs: 20_000 },
  );
  t.after(async () => {
    await dash.stop();
  });
  const port = Number(dash.match[1]);
  const pid = dash.child.pid;
  const alive = (): void => {
    assert.equal(dash.child.exitCode, null, `dashboard exited:\n${dash.output()}`);
    assert.equal(dash.child.pid, pid);
  };

  // Slowloris in the background: a head that never ends is dropped by the server.
  const slow = raw(port, ['GET / HTTP/1.1\r\n', `Host: ${HOST}\r\n`, 'X-a: b\r\n'], 25_000);

  // Oversized head → 431, connection closed.
  {
    const r = await raw(port, [get('/', HOST, `X-Big: ${'a'.repeat(64 * 1024)}\r\n`)], 5000);
    assert.equal(status(r.text), 431, r.text.slice(0, 80));
  }
  // DNS rebinding: non-loopback Host names are refused, loopback ones served.
  for (const host of ['evil.example', 'evil.example:20001', '10.1.2.3', '127.0.0.1.evil.example']) {
    const r = await raw(port, [get('/api/mesh', host)], 5000);
    assert.equal(status(r.text), 403, `Host ${host}: ${r.text.slice(0, 80)}`);
  }
  assert.equal(
    status((await raw(port, [get('/api/mesh', `localhost:${String(port)}`)], 5000)).text),
    200,
  );
  // Path traversal on the static assets: never a file from disk.
  for (const path of [
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/assets/..%2f..%2f..%2fetc%2fpasswd',
    '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/app.js/../../package.json',
    '/..\\..\\etc\\passwd',
    '/api/traces/..%2f..%2f..%2fetc%2fpasswd',
  ]) {
    const r = await raw(port, [get(path)], 5000);
    assert.ok([400, 404].includes(status(r.text)), `${path}: ${r.text.slice(0, 120)}`);
    assert.doesNotMatch(r.text, /root:x:0:0|"name": "palisade"/, path);
  }
  alive();

  // A proxy admin streaming garbage: bad lines are skipped, good ones relayed, the dashboard lives.
  {
    const s = await tapStream(port, undefined, 1500);
    assert.equal(s.status, 200);
    assert.match(s.body, /\/good/);
    assert.match(s.body, /\/after-garbage/);
    assert.doesNotMatch(s.body, /not json|xxxxxxxx/);
    s.close();
  }
  alive();
  // Many tap streams at once: a bounded number is served, the rest refused (503), and the process lives.
  {
    const streams = await Promise.all(
      Array.from({ length: 80 }, () => tapStream(port, undefined, 1000)),
    );
    const served = streams.filter((s) => s.status === 200).length;
    const refused = streams.filter((s) => s.status === 503).length;
    for (const s of streams) s.close();
    assert.ok(served >= 1 && served <= 32, `served ${String(served)}`);
    assert.equal(served + refused, 80);
    assert.ok(taps.size <= 32, `admin tap connections ${String(taps.size)}`);
  }
  alive();

  const slowResult = await slow;
  assert.ok(slowResult.closed, 'a head that never ends is dropped');
  assert.ok([0, 408].includes(status(slowResult.text)), slowResult.text.slice(0, 80));
  const rss = Number(
    /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1],
  );
  assert.ok(rss < 400 * 1024, `dashboard RSS ${String(rss)} kB`);
  // Still answering.
  assert.equal(status((await raw(port, [get('/')], 5000)).text), 200);
  alive();
});

test('with a token, a wrong or missing token is 401 and the right one is served', async (t) => {
  const dir = tempDir('palisade-h8-dash-');
  t.after(dir.cleanup);
  mkdirSync(join(dir.path, 'config'));
  writeFileSync(
    join(dir.path, 'mesh.json'),
    JSON.stringify({
      name: 'h8',
      configDir: join(dir.path, 'config'),
      control: '127.38.3.9:9',
      proxies: [],
    }),
  );
  const token = 'h8-dashboard-secret-0123456789';
  writeFileSync(join(dir.path, 'token'), token);
  const dash = await spawnPalisade(
    [
      'dashboard',
      '--state-dir',
      dir.path,
      '--address',
      HOST,
      '--port',
      '0',
      '--token-file',
      join(dir.path, 'token'),
    ],
    { ready: /Dashboard: http:\/\/[\d.]+:(\d+)\//, timeoutMs: 20_000 },
  );
  t.after(async () => {
    await dash.stop();
  });
  const port = Number(dash.match[1]);
  for (const presented of [
    '',
    'Bearer ',
    'Bearer x',
    `Bearer ${token.slice(0, -1)}`,
    `Bearer ${token}x`,
    `Basic ${token}`,
  ]) {
    const r = await raw(
      port,
      [get('/api/mesh', HOST, presented === '' ? '' : `Authorization: ${presented}\r\n`)],
      5000,
    );
    assert.equal(status(r.text), 401, `${presented}: ${r.text.slice(0, 80)}`);
  }
  for (const cookie of ['palisade_dashboard_token=wrong', 'palisade_dashboard_token=%E0%A4%A']) {
    const r = await raw(port, [get('/api/mesh', HOST, `Cookie: ${cookie}\r\n`)], 5000);
    assert.equal(status(r.text), 401, `${cookie}: ${r.text.slice(0, 80)}`);
  }
  const ok = await raw(port, [get('/api/mesh', HOST, `Authorization: Bearer ${token}\r\n`)], 5000);
  assert.equal(status(ok.text), 200);
  assert.equal(dash.child.exitCode, null, dash.output());
});
