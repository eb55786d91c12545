/**
 * The proxy's tap (admin `/tap`): a real HTTP stream of JSON lines while the
 * client stays connected, the bounded ring of recent requests, denials kept
 * apart with their policy, and the cap on concurrent streams.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { rbacDeniedDetails } from '../telemetry-hooks.js';
import { createProxyTap, TAP_MAX_SUBSCRIBERS, TAP_RECENT, type TapEvent } from './tap.js';

const event = (i: number, over: Partial<TapEvent> = {}): TapEvent => ({
  time: new Date().toISOString(),
  direction: 'inbound',
  method: 'GET',
  path: `/r/${String(i)}`,
  status: 200,
  durationMs: 1,
  sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/a',
  destination: 'inbound|9080',
  mtls: true,
  ...over,
});

test('GET /tap streams each finished request as a JSON line; recent and denies are bounded rings', async (t) => {
  const tap = createProxyTap();
  const server = http.createServer((req, res) => {
    tap.handle(req, res, new URL(req.url ?? '/', 'http://admin'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    tap.close();
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  const lines: TapEvent[] = [];
  const streamed = new Promise<void>((resolve, reject) => {
    http
      .get(`${base}/tap`, (res) => {
        assert.equal(res.headers['content-type'], 'application/x-ndjson');
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            lines.push(JSON.parse(buf.slice(0, nl)) as TapEvent);
            buf = buf.slice(nl + 1);
            if (lines.length === 2) {
              res.destroy();
              resolve();
            }
          }
        });
        // Recorded once the stream is open.
        tap.record(event(1));
        tap.record(
          event(2, {
            status: 403,
            policy: 'default/deny-all',
            details: rbacDeniedDetails('default/deny-all'),
          }),
        );
      })
      .on('error', reject);
  });
  await streamed;
  assert.deepEqual(
    lines.map((l) => [l.path, l.status, l.policy]),
    [
      ['/r/1', 200, undefined],
      ['/r/2', 403, 'default/deny-all'],
    ],
  );
  for (let i = 0; i < TAP_RECENT + 50; i += 1) tap.record(event(100 + i));
  assert.equal(tap.recent().length, TAP_RECENT);
  assert.equal(tap.recent().at(-1)?.path, `/r/${String(100 + TAP_RECENT + 49)}`);
  const denies = (await (await fetch(`${base}/tap/denies`)).json()) as { denies: TapEvent[] };
  assert.deepEqual(
    denies.denies.map((d) => d.details),
    ['rbac_access_denied_matched_policy[ns[default]-policy[deny-all]]'],
  );
  const recent = (await (await fetch(`${base}/tap?recent=1`)).json()) as { requests: TapEvent[] };
  assert.equal(recent.requests.length, TAP_RECENT);
  assert.equal((await fetch(`${base}/tap`, { method: 'POST' })).status, 405);
});

test('at most TAP_MAX_SUBSCRIBERS streams at a time', async (t) => {
  const tap = createProxyTap();
  const server = http.createServer((req, res) => {
    tap.handle(req, res, new URL(req.url ?? '/', 'http://admin'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    tap.close();
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  const open: http.ClientRequest[] = [];
  t.after(() => {
    for (const r of open) r.destroy();
  });
  const statuses: number[] = [];
  for (let i = 0; i <= TAP_MAX_SUBSCRIBERS; i += 1)
    statuses.push(
      await new Promise<number>((resolve, reject) => {
        const req = http.get(`${base}/tap`, { agent: false }, (res) => {
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        open.push(req);
      }),
    );
  assert.deepEqual(statuses, [...Array<number>(TAP_MAX_SUBSCRIBERS).fill(200), 503]);
});

test("Envoy's RBAC denial detail names the policy in Istio's form", () => {
  assert.equal(
    rbacDeniedDetails('default/deny-reviews-to-ratings'),
    'rbac_access_denied_matched_policy[ns[default]-policy[deny-reviews-to-ratings]]',
  );
});
