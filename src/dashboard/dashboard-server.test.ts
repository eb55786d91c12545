/**
 * The dashboard's own access: loopback by default (and then only loopback
 * Host names, against DNS rebinding); any other bind address only with a
 * token, which every request must present (constant-time compared). Served
 * over real sockets; the mesh data is a fixed stand-in.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { test } from 'node:test';
import { PalisadeError } from '../errors/index.js';
import { startDashboardServer, tokenMatches } from './dashboard-server.js';
import type { MeshData } from './mesh-data.js';

const DATA: MeshData = {
  state: () => ({
    name: 'm',
    stateDir: '/nonexistent',
    configDir: '/nonexistent',
    control: '127.0.0.1:1',
    proxies: [],
  }),
  workloads: () => [],
  graph: () => ({ nodes: [], edges: [], windowSeconds: 0, generatedAt: new Date(0).toISOString() }),
  top: () => [],
  scrape: () => Promise.resolve(),
  syncStatus: () => Promise.reject(new Error('no control plane')),
  close: () => undefined,
};

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      })
      .on('error', reject);
  });
}

test('loopback by default: the UI and /api/graph answer; a non-loopback Host is refused (DNS rebinding)', async (t) => {
  const server = await startDashboardServer({ data: DATA, port: 0 });
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await get(server.url);
  assert.equal(page.status, 200);
  assert.match(page.body, /<script src="\/app\.js"/);
  assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org)/, 'no asset from another origin');
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  const js = await get(`${server.url}app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'] ?? '', /javascript/);
  const graph = await get(`${server.url}api/graph`);
  assert.equal(graph.status, 200);
  assert.deepEqual(Object.keys(JSON.parse(graph.body) as object).slice(0, 2), ['nodes', 'edges']);
  const rebound = await get(`${server.url}api/graph`, { host: 'attacker.example:80' });
  assert.equal(rebound.status, 403);
  const traces = await get(`${server.url}api/traces`);
  assert.equal(traces.status, 404);
  assert.match(traces.body, /palisade up --tracing/);
});

test('a non-loopback bind address needs a token: refused without one, and then every request must carry it', async (t) => {
  await assert.rejects(
    startDashboardServer({ data: DATA, host: '0.0.0.0', port: 0 }),
    (e: unknown) => e instanceof PalisadeError && e.code === 'PAL_ERR_DASHBOARD_TOKEN_REQUIRED',
  );
  await assert.rejects(
    startDashboardServer({ data: DATA, host: '0.0.0.0', port: 0, token: 'short' }),
    (e: unknown) => e instanceof PalisadeError && e.code === 'PAL_ERR_DASHBOARD_TOKEN_REQUIRED',
  );
  const token = 'd20-test-token-0123456789abcdef';
  const server = await startDashboardServer({ data: DATA, host: '0.0.0.0', port: 0, token });
  t.after(() => server.close());
  const port = new URL(server.url).port;
  const base = `http://127.0.0.1:${port}/`;
  assert.equal((await get(`${base}api/graph`)).status, 401);
  assert.equal((await get(base)).status, 401);
  assert.equal((await get(`${base}api/graph`, { authorization: `Bearer ${token}x` })).status, 401);
  assert.equal((await get(`${base}api/graph`, { authorization: `Bearer ${token}` })).status, 200);
  // Opening the URL with ?token= trades it for an HttpOnly cookie and drops it from the address.
  const first = await get(`${base}?token=${token}`);
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, '/');
  const cookie = (first.headers['set-cookie'] ?? [])[0] ?? '';
  assert.match(cookie, /HttpOnly; SameSite=Strict/);
  const page = await get(base, { cookie: cookie.split(';')[0] ?? '' });
  assert.equal(page.status, 200);
  assert.equal((await get(base, { cookie: 'palisade_dashboard_token=nope' })).status, 401);
});

test('token comparison: equal only for the same string, any length', () => {
  assert.equal(tokenMatches('abc', 'abc'), true);
  assert.equal(tokenMatches('abc', 'abd'), false);
  assert.equal(tokenMatches('abc', 'abcd'), false);
  assert.equal(tokenMatches('abc', ''), false);
  assert.equal(tokenMatches('abc', undefined), false);
});
