// Hostile requests against real `palisade proxy` processes over raw sockets
// (issue 15 items 1, 2, 4, 8): the ingress gateway, a sidecar's outbound port
// and a sidecar's inbound port each get the same attacks. After every attack
// the test checks what the echo app received (the exact request line and
// headers) — or that nothing reached it — and at the end that every proxy
// still runs with the PID it started with.
//
// Expected answers follow Envoy's documented behaviour: 426 for HTTP/1.0 and
// 0.9 without accept_http_10 (Istio's default), 501 for a Transfer-Encoding
// other than chunked, 400 for a fragment in the path (Envoy rejects `#`), for
// two Host headers and for anything the HTTP/1 parser refuses (CL+TE,
// repeated Content-Length, obs-fold, bare CR/LF, NUL); the path is normalised
// as Istio's default pathNormalization BASE (Envoy's normalize_path, RFC 3986
// §6.2.2) and the app receives exactly the path that was routed and
// authorised ("Authorization Policy Normalization" in Istio's security best
// practices; the CVE-2019-9901 class). Upgrades: only websocket (Istio's
// upgrade_configs); `Upgrade: h2c` is refused so HTTP/2 inside a tunnel cannot
// skip the gateway's AuthorizationPolicy.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { normalizePath } from '../../src/policy/path-normalization.js';
import {
  assertAlive,
  exchange,
  GATEWAY_IP,
  GATEWAY_PORT,
  pidsOf,
  request,
  OBJECT_NAMED_FIELDS,
  OBJECT_NAMED_RESPONSE_PATH,
  startHostileMesh,
  type Entry,
  type HostileMesh,
  type Received,
} from './hostile-mesh.js';

/** Runs `attack` and returns what the app received meanwhile. */
async function delivered<T>(
  mesh: HostileMesh,
  attack: () => Promise<T>,
): Promise<{ result: T; received: Received[] }> {
  const before = mesh.app.received.length;
  const result = await attack();
  // A request the proxy forwarded is recorded when its response went out, before the proxy's
  // answer reached us: nothing to wait for.
  return { result, received: mesh.app.received.slice(before) };
}

const SMUGGLED = 'smuggled';

/** Request-smuggling and framing attacks: [name, payload for an entry, statuses allowed]. */
function smugglingCorpus(e: Entry): [string, string, readonly number[]][] {
  const h = `Host: ${e.authority}\r\n`;
  const start = (m: string, p: string): string => `${m} ${e.target(p)} HTTP/1.1\r\n${h}`;
  const inner = `GET /admin-${SMUGGLED} HTTP/1.1\r\nHost: ${e.authority}\r\n\r\n`;
  return [
    [
      'CL.TE',
      `${start('POST', '/ok')}Content-Length: ${String(5 + inner.length)}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'TE.CL',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${inner}\r\n0\r\n\r\n`,
      [400],
    ],
    [
      'TE identity, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [501],
    ],
    [
      'TE gzip, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [501],
    ],
    [
      'two TE headers',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'TE chunked, chunked',
      `${start('POST', '/ok')}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'TE xchunked',
      `${start('POST', '/ok')}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${inner}`,
      [400, 501],
    ],
    [
      'space before colon',
      `${start('POST', '/ok')}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${inner}`,
      [400],
    ],
    [
      'duplicate Content-Length',
      `${start('POST', '/ok')}Content-Length: 0\r\nContent-Length: ${String(inner.length)}\r\n\r\n${inner}`,
      [400],
    ],
    [
      'Content-Length list',
      `${start('POST', '/ok')}Content-Length: 0, ${String(inner.length)}\r\n\r\n${inner}`,
      [400],
    ],
    ['Content-Length +0', `${start('POST', '/ok')}Content-Length: +0\r\n\r\n${inner}`, [400]],
    [
      'obs-fold',
      `${start('GET', '/ok')}X-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n${inner}`,
      [400],
    ],
    ['bare CR in a header', `${start('GET', '/ok')}X-A: a\rX-B: b\r\n\r\n${inner}`, [400]],
    [
      'bare LF line endings',
      `GET ${e.target('/ok')} HTTP/1.1\nHost: ${e.authority}\n\n${inner}`,
      [400],
    ],
    ['NUL in a header value', `${start('GET', '/ok')}X-A: a\u0000b\r\n\r\n${inner}`, [400]],
    ['NUL in the path', `GET ${e.target('/ok\u0000')} HTTP/1.1\r\n${h}\r\n`, [400]],
    // llhttp (lenient here) reads `GET  /ok` as `GET /ok`: parsed as one request, so forwarded as one.
    ['two spaces in the request line', `GET  ${e.target('/ok')} HTTP/1.1\r\n${h}\r\n`, [200, 400]],
    ['header name with a space', `${start('GET', '/ok')}X A: b\r\n\r\n`, [400]],
    ['oversized header', `${start('GET', '/ok')}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, [431]],
    ['two Host headers', `${start('GET', '/ok')}Host: evil.example.com\r\n\r\n`, [400]],
    ['HTTP/2.0 request line', `GET ${e.target('/ok')} HTTP/2.0\r\n${h}\r\n`, [400]],
    ['HTTP/3.0 request line', `GET ${e.target('/ok')} HTTP/3.0\r\n${h}\r\n`, [400]],
    ['HTTP/1.2 request line', `GET ${e.target('/ok')} HTTP/1.2\r\n${h}\r\n`, [400]],
    ['HTTP/1.0', `GET ${e.target('/ok')} HTTP/1.0\r\n${h}\r\n`, [426]],
    ['HTTP/0.9', `GET ${e.target('/ok')}\r\n\r\n`, [0, 426]],
    [
      'chunked body hiding a request',
      `${start('POST', '/ok')}Transfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`,
      [200],
    ],
    ['https absolute-form', `GET https://${e.authority}/ok HTTP/1.1\r\n${h}\r\n`, [400]],
    ['OPTIONS *', `OPTIONS * HTTP/1.1\r\n${h}\r\n`, [400]],
    // The gateway and inbound ports serve h2c with prior knowledge (the preface starts a
    // session); the outbound port is an HTTP/1.1 proxy, where it is a bad request line.
    ...(e.name === 'outbound'
      ? [
          ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [0, 400]] as [
            string,
            string,
            number[],
          ],
        ]
      : []),
  ];
}

/** Paths with encodings that tried to slip past `/admin*` (CVE-2019-9901 and relatives). */
const PATH_CORPUS = [
  '/admin',
  '/admin/../ok',
  '/ok/../admin',
  '/ok/./../admin/x',
  '/./admin',
  '/%61dmin',
  '/%2e%2e/admin',
  '/ok/%2e%2e/admin',
  '/ok/%2E%2E/admin',
  '/ok/.%2e/admin',
  '/ok/%2e./admin',
  '//admin',
  '/ok//../admin',
  '/admin%2F..%2Fok',
  '/ok%2F..%2Fadmin',
  '/ok%2f..%2fadmin',
  '/ok%5C..%5Cadmin',
  '/ok%5c..%5cadmin',
  '/ok\\..\\admin',
  '/admin;x=1',
  '/ok;/../admin',
  '/ok/..;/admin',
  '/ADMIN',
  '/Admin',
  '/%41dmin',
  '/%2561dmin',
  '/%252e%252e/admin',
  '/ok#/../admin',
  '/admin#x',
  '/ok?x=/../admin',
  '/ok?%2e%2e',
  '/%00admin',
  '/admin%',
  '/ok/%zz',
  '/ok/%u002e',
  '/ok/%e2%80%ae',
  '/ok/\u00e9',
];

test(
  'hostile requests through the gateway, a sidecar outbound port and an inbound port',
  { timeout: 240_000 },
  async (t) => {
    const mesh = await startHostileMesh(t);
    const pids = pidsOf(mesh);

    await t.test('item 1: an HTTP/2.0 request line is a 400 and crashes nothing', async () => {
      for (const entry of mesh.entries) {
        const { result, received } = await delivered(mesh, () =>
          exchange(entry, `GET ${entry.target('/productpage')} HTTP/2.0\r\nHost: x\r\n\r\n`),
        );
        assert.equal(result.status, 400, `${entry.name}: ${result.raw}`);
        assert.deepEqual(received, [], entry.name);
        // The same connection shape again: the process is still there and serving.
        const after = await exchange(entry, request(entry, 'GET', '/after'));
        assert.equal(after.status, 200, `${entry.name} serves after the attack`);
      }
      assertAlive(mesh, pids);
    });

    await t.test(
      'item 8: Envoy framing answers (501, 400, 426) and nothing forwarded',
      async () => {
        for (const entry of mesh.entries) {
          const h = `Host: ${entry.authority}\r\n`;
          const cases: [string, string, number][] = [
            [
              'TE identity, chunked',
              `POST ${entry.target('/ok')} HTTP/1.1\r\n${h}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`,
              501,
            ],
            ['two Host', `GET ${entry.target('/ok')} HTTP/1.1\r\n${h}Host: other\r\n\r\n`, 400],
            ['HTTP/1.0', `GET ${entry.target('/ok')} HTTP/1.0\r\n${h}\r\n`, 426],
          ];
          for (const [name, payload, status] of cases) {
            const { result, received } = await delivered(mesh, () => exchange(entry, payload));
            assert.equal(result.status, status, `${entry.name} ${name}: ${result.raw}`);
            assert.deepEqual(received, [], `${entry.name} ${name}`);
          }
          // HTTP/0.9 (a request line, no headers): 426 or a close, never the app.
          const { result, received } = await delivered(mesh, () =>
            exchange(entry, `GET ${entry.target('/ok')}\r\n\r\n`),
          );
          assert.ok([0, 426].includes(result.status), `${entry.name} HTTP/0.9: ${result.raw}`);
          assert.deepEqual(received, []);
        }
        assertAlive(mesh, pids);
      },
    );

    await t.test('request smuggling corpus: answered or closed, nothing smuggled', async () => {
      for (const entry of mesh.entries)
        for (const [name, payload, statuses] of smugglingCorpus(entry)) {
          const { result, received } = await delivered(mesh, () => exchange(entry, payload));
          assert.ok(
            statuses.includes(result.status),
            `${entry.name} ${name}: got ${String(result.status)}, want ${statuses.join('/')}\n${result.raw.slice(0, 300)}`,
          );
          assert.deepEqual(
            received.map((r) => r.url),
            // Answered locally: nothing reached the app. Forwarded: exactly the one request the
            // client framed, never the one hidden inside it.
            result.status === 200 ? ['/ok'] : [],
            `${entry.name} ${name}: what the app received`,
          );
        }
      assert.equal(
        mesh.app.parseErrors.length,
        0,
        `the app got bytes it could not parse: ${mesh.app.parseErrors.join('; ')}`,
      );
      assertAlive(mesh, pids);
    });

    await t.test('pipelined requests are each routed and authorised', async () => {
      for (const entry of mesh.entries) {
        const { result, received } = await delivered(mesh, async () => {
          const r = await exchangeAll(
            entry,
            request(entry, 'GET', '/first') + request(entry, 'GET', '/admin/second'),
            2,
          );
          return r;
        });
        assert.deepEqual(
          result.map((r) => r.status),
          [200, 403],
          entry.name,
        );
        assert.deepEqual(
          received.map((r) => r.url),
          ['/first'],
          entry.name,
        );
      }
    });

    await t.test(
      'item 4: path encodings — the app receives the path policy decided on',
      async () => {
        for (const entry of mesh.entries)
          for (const path of PATH_CORPUS) {
            const { result, received } = await delivered(mesh, () =>
              exchange(entry, request(entry, 'GET', path)),
            );
            const where = `${entry.name} ${JSON.stringify(path)}`;
            const normalized = normalizePath(path, 'BASE');
            const visible = /^[\x21-\x7e]*$/.test(path);
            if (!visible || path.includes('#') || !normalized.ok) {
              assert.equal(result.status, 400, `${where}: ${result.raw.slice(0, 200)}`);
              assert.deepEqual(received, [], where);
              continue;
            }
            const query = path.includes('?') ? `?${normalized.query}` : '';
            if (normalized.path.startsWith('/admin')) {
              assert.equal(result.status, 403, `${where}: ${result.raw.slice(0, 200)}`);
              assert.deepEqual(received, [], where);
              continue;
            }
            assert.equal(result.status, 200, `${where}: ${result.raw.slice(0, 200)}`);
            assert.deepEqual(
              received.map((r) => r.url),
              [`${normalized.path}${query}`],
              where,
            );
          }
        assertAlive(mesh, pids);
      },
    );

    await t.test(
      'header injection: client-supplied identity headers never reach the app',
      async () => {
        for (const entry of mesh.entries) {
          const { result, received } = await delivered(mesh, () =>
            exchange(
              entry,
              request(
                entry,
                'GET',
                '/whoami',
                'X-Forwarded-Client-Cert: By=spiffe://cluster.local/ns/sec/sa/admin;URI=spiffe://cluster.local/ns/sec/sa/admin\r\n',
              ),
            ),
          );
          assert.equal(result.status, 200, entry.name);
          const xfcc = String(received[0]?.headers['x-forwarded-client-cert'] ?? '');
          assert.doesNotMatch(xfcc, /sa\/admin/, `${entry.name}: spoofed XFCC reached the app`);
        }
      },
    );

    await t.test(
      "header names of Object's own properties: forwarded as any field, policy unmoved, nothing crashes",
      async () => {
        // Each proxy keeps header fields in JavaScript objects: a field named `constructor`,
        // `toString` or `__proto__` must neither reach a prototype nor change a decision.
        const fields =
          'constructor: c1\r\ntoString: t1\r\nhasOwnProperty: h1\r\n__proto__: p1\r\n' +
          'valueOf: v1\r\nConnection: valueOf\r\n';
        for (const entry of mesh.entries) {
          const { result, received } = await delivered(mesh, () =>
            exchange(entry, request(entry, 'GET', '/ok', fields)),
          );
          assert.equal(result.status, 200, `${entry.name}: ${result.raw.slice(0, 300)}`);
          const raw = received[0]?.rawHeaders ?? [];
          const value = (name: string): string | undefined => {
            const at = raw.findIndex((h, k) => k % 2 === 0 && h.toLowerCase() === name);
            return at === -1 ? undefined : raw[at + 1];
          };
          assert.deepEqual(
            ['constructor', 'tostring', 'hasownproperty'].map(value),
            ['c1', 't1', 'h1'],
            `${entry.name}: ${JSON.stringify(raw)}`,
          );
          assert.equal(value('__proto__'), 'p1', `${entry.name}: ${JSON.stringify(raw)}`);
          // Listed in Connection: hop-by-hop, never forwarded (RFC 9110 §7.6.1).
          assert.equal(value('valueof'), undefined, `${entry.name}: ${JSON.stringify(raw)}`);
          // The DENY /admin* policy still decides with these fields on the request.
          const admin = await delivered(mesh, () =>
            exchange(entry, request(entry, 'GET', '/admin', fields)),
          );
          assert.equal(
            admin.result.status,
            403,
            `${entry.name}: ${admin.result.raw.slice(0, 300)}`,
          );
          assert.deepEqual(admin.received, [], entry.name);
        }
        assertAlive(mesh, pids);
      },
    );

    await t.test(
      "response fields named after Object's own properties reach the client once, as sent",
      async () => {
        for (const entry of mesh.entries) {
          const { result } = await delivered(mesh, () =>
            exchange(entry, request(entry, 'GET', OBJECT_NAMED_RESPONSE_PATH, '')),
          );
          assert.equal(result.status, 200, `${entry.name}: ${result.raw.slice(0, 300)}`);
          const head = result.raw.slice(0, result.raw.indexOf('\r\n\r\n'));
          const lines = head.split('\r\n').slice(1);
          for (const [name, sent] of OBJECT_NAMED_FIELDS) {
            const got = lines
              .filter((l) => l.slice(0, l.indexOf(':')).toLowerCase() === name.toLowerCase())
              .map((l) => l.slice(l.indexOf(':') + 1).trim());
            assert.deepEqual(got, [sent], `${entry.name} ${name}: ${head}`);
          }
        }
        assertAlive(mesh, pids);
      },
    );

    await t.test(
      'item 2: h2c upgrade is refused at the gateway; HTTP/2 inside never reaches the backend',
      async () => {
        const gateway = mesh.entries.find((e) => e.name === 'gateway') as Entry;
        const attack = await h2cUpgradeAttack(gateway);
        assert.equal(attack.status, 403, attack.raw);
        assert.deepEqual(attack.h2Statuses, [], 'no HTTP/2 answer through the gateway');
        assert.deepEqual(mesh.h2c.upgrades, [], 'the backend saw no upgrade');
        assert.deepEqual(mesh.h2c.h2Requests, [], 'the backend saw no HTTP/2 request');
        // Other types the route does not allow are refused too; nothing reaches the app.
        for (const entry of mesh.entries) {
          const { result, received } = await delivered(mesh, () =>
            exchange(
              entry,
              request(entry, 'GET', '/ok', 'Connection: Upgrade\r\nUpgrade: foo\r\n'),
            ),
          );
          assert.equal(result.status, 403, `${entry.name}: ${result.raw}`);
          assert.deepEqual(received, [], entry.name);
          const h2c = await delivered(mesh, () =>
            exchange(
              entry,
              request(
                entry,
                'GET',
                '/ok',
                'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n',
              ),
            ),
          );
          assert.equal(h2c.result.status, 403, `${entry.name} h2c: ${h2c.result.raw}`);
          assert.deepEqual(h2c.received, [], entry.name);
        }
        assertAlive(mesh, pids);
      },
    );

    await t.test(
      'item 2: an upgrade runs the route features (rewrite, header ops, trace context)',
      async () => {
        const gateway = mesh.entries.find((e) => e.name === 'gateway') as Entry;
        const { result, received } = await delivered(mesh, () =>
          exchange(
            gateway,
            request(
              gateway,
              'GET',
              '/ws/chat',
              'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
            ),
          ),
        );
        assert.equal(result.status, 101, result.raw);
        assert.equal(received.length, 1);
        const [seen] = received;
        assert.ok(seen !== undefined);
        assert.equal(seen.url, '/rewritten-ws/chat');
        assert.equal(seen.upgrade, true);
        assert.equal(seen.headers['x-route-feature'], 'applied');
        assert.match(String(seen.headers['traceparent']), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
        // And DENY /admin* applies to upgrades like requests.
        const denied = await delivered(mesh, () =>
          exchange(
            gateway,
            request(
              gateway,
              'GET',
              '/ok/../admin',
              'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
            ),
          ),
        );
        assert.equal(denied.result.status, 403, denied.result.raw);
        assert.deepEqual(denied.received, []);
      },
    );

    await t.test(
      'property: any request head is answered or closed; the app only gets what was parsed as one request',
      async () => {
        const tokens = fc.constantFrom(
          'GET',
          'POST',
          'PRI',
          'get',
          ' ',
          '  ',
          '/',
          '/ok',
          '/admin',
          '/..',
          '%2e',
          '%2F',
          '%',
          '#',
          ';',
          '?',
          '\\',
          'HTTP/1.1',
          'HTTP/1.0',
          'HTTP/2.0',
          '\r\n',
          '\n',
          '\r',
          '\u0000',
          ':',
          'Host: x',
          'Host',
          'Transfer-Encoding: chunked',
          'Content-Length: 5',
          'Content-Length: -1',
          'Connection: upgrade',
          'Upgrade: h2c',
          '0\r\n\r\n',
          'hello',
          '\u00ff',
        );
        const heads = fc
          .array(tokens, { minLength: 1, maxLength: 24 })
          .map((parts) => parts.join(''));
        let runs = 0;
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...mesh.entries), heads, async (entry, head) => {
            runs += 1;
            const { result, received } = await delivered(mesh, () =>
              exchange(entry, `${head}\r\n\r\n`),
            );
            // Answered (a status line) or closed; never left hanging.
            if (result.status === -1) return false;
            // Whatever reached the app is a request this head could parse as: at most one, its
            // method the head's first token, and never a denied path.
            if (received.length > 1) return false;
            for (const r of received) {
              if (!head.startsWith(r.method)) return false;
              if (r.url.startsWith('/admin')) return false;
            }
            return true;
          }),
          { numRuns: process.env['CI'] === 'true' ? 150 : 60, seed: 1_515 },
        );
        assert.ok(runs > 0);
        assertAlive(mesh, pids);
      },
    );

    await t.test(
      'item 8: a slowloris head is closed at the header timeout, not ~2x later',
      async () => {
        // The headers timeout is 15 s (request-head.ts); Node checks it every second. Before,
        // it was checked every 30 s and a drip-fed head lived up to ~45 s.
        const results = await Promise.all(mesh.entries.map((entry) => slowloris(entry)));
        for (const [i, r] of results.entries()) {
          const name = mesh.entries[i]?.name ?? '';
          assert.ok(r.closed, `${name} closed the connection`);
          assert.ok(r.elapsedMs >= 14_000, `${name} closed after ${String(r.elapsedMs)} ms`);
          assert.ok(r.elapsedMs < 25_000, `${name} closed only after ${String(r.elapsedMs)} ms`);
        }
        assertAlive(mesh, pids);
      },
    );
  },
);

/** Sends `bytes` and collects `count` responses (or what came before the close). */
async function exchangeAll(
  entry: { host: string; port: number },
  bytes: string,
  count: number,
): Promise<{ status: number }[]> {
  return new Promise((resolve) => {
    const socket = net.connect(entry.port, entry.host, () => socket.write(bytes, 'latin1'));
    let raw = '';
    const statuses = (): { status: number }[] =>
      [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => ({ status: Number(m[1]) }));
    const timer = setTimeout(() => {
      socket.destroy();
    }, 10_000);
    socket.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
      if (statuses().length >= count && /\r\n\r\n[^]*$/.test(raw)) {
        // Both heads are in; bodies are short and came with them.
        setImmediate(() => socket.destroy());
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(statuses());
    });
  });
}

/**
 * The h2c attack: `GET /h2c` with `Upgrade: h2c`; on 101, the HTTP/2 preface and
 * `GET /h2c/admin` inside the tunnel. Returns the upgrade's status and any HTTP/2 answers.
 */
async function h2cUpgradeAttack(
  gateway: Entry,
): Promise<{ status: number; raw: string; h2Statuses: number[] }> {
  const socket = net.connect(GATEWAY_PORT, GATEWAY_IP);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(
    `GET /h2c HTTP/1.1\r\nHost: ${gateway.authority}\r\nConnection: Upgrade, HTTP2-Settings\r\n` +
      'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
  );
  const head = await new Promise<string>((resolve) => {
    let raw = '';
    const onData = (c: Buffer): void => {
      raw += c.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end !== -1) {
        socket.off('data', onData);
        socket.pause();
        const rest = Buffer.from(raw.slice(end + 4), 'latin1');
        if (rest.length > 0) socket.unshift(rest);
        resolve(raw.slice(0, end + 4));
      }
    };
    socket.on('data', onData);
    socket.on('close', () => {
      resolve(raw);
    });
    socket.on('error', () => undefined);
  });
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  const h2Statuses: number[] = [];
  if (status === 101) {
    // The tunnel is open: speak HTTP/2 through it, as the attacker would.
    const session = http2.connect('http://h2c.example.com', { createConnection: () => socket });
    session.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      const stream = session.request({ ':path': '/h2c/admin' });
      stream.on('response', (headers) => {
        h2Statuses.push(Number(headers[':status']));
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        resolve();
      });
      stream.end();
    });
    session.destroy();
  }
  socket.destroy();
  return { status, raw: head, h2Statuses };
}

/** Drip-feeds a request head (one header byte every 500 ms) until the proxy closes. */
function slowloris(entry: Entry): Promise<{ closed: boolean; elapsedMs: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(entry.port, entry.host, () => {
      socket.write(`GET ${entry.target('/slow')} HTTP/1.1\r\nHost: ${entry.authority}\r\n`);
    });
    let sent = 0;
    const drip = setInterval(() => {
      // Bounded: 80 × 500 ms = 40 s at most.
      sent += 1;
      if (sent > 80) {
        clearInterval(drip);
        socket.destroy();
        resolve({ closed: false, elapsedMs: performance.now() - started });
        return;
      }
      socket.write('X');
    }, 500);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(drip);
      resolve({ closed: true, elapsedMs: performance.now() - started });
    });
  });
}
