import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import fc from 'fast-check';
import { normalizePath } from '../policy/path-normalization.js';
import {
  checkRequestHead,
  compileHcmUpgrades,
  compileRequestHeadPolicy,
  compileRouteUpgrades,
  upgradeAllowedBy,
} from './request-head.js';

type R = Record<string, unknown>;
/** Whether the HCM and route (raw, as decoded) allow an upgrade type, as the proxy compiles them. */
const upgradeAllowed = (type: string, hcm: R | undefined, route: R | undefined): boolean =>
  upgradeAllowedBy(
    type,
    compileHcmUpgrades(hcm?.['upgrade_configs']),
    compileRouteUpgrades(route?.['upgrade_configs']),
  );

/** A parsed HTTP/1 request head as Node's parser hands it over (only what the check reads). */
function h1(
  url: string,
  rawHeaders: string[] = ['Host', 'a'],
  version: [number, number] = [1, 1],
  method = 'GET',
): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    headers[(rawHeaders[i] ?? '').toLowerCase()] ??= rawHeaders[i + 1] ?? '';
  return {
    url,
    method,
    rawHeaders,
    headers,
    httpVersionMajor: version[0],
    httpVersionMinor: version[1],
  } as unknown as IncomingMessage;
}

const BASE = compileRequestHeadPolicy(undefined);

test('versions: HTTP/1.1 passes; 1.0 and 0.9 are 426 unless accept_http_10; others 400', () => {
  assert.equal(checkRequestHead(h1('/'), BASE), undefined);
  assert.equal(checkRequestHead(h1('/', ['Host', 'a'], [1, 0]), BASE)?.status, 426);
  assert.equal(checkRequestHead(h1('/', [], [0, 9]), BASE)?.status, 426);
  assert.equal(checkRequestHead(h1('/', ['Host', 'a'], [2, 0]), BASE)?.status, 400);
  const http10 = compileRequestHeadPolicy({ http_protocol_options: { accept_http_10: true } });
  assert.equal(checkRequestHead(h1('/', ['Host', 'a'], [1, 0]), http10), undefined);
});

test('framing: Transfer-Encoding other than exactly chunked is 501; two Hosts 400', () => {
  const te = (v: string[]): number | undefined =>
    checkRequestHead(h1('/', ['Host', 'a', ...v.flatMap((x) => ['Transfer-Encoding', x])]), BASE)
      ?.status;
  assert.equal(te(['chunked']), undefined);
  assert.equal(te([' Chunked ']), undefined);
  assert.equal(te(['identity, chunked']), 501);
  assert.equal(te(['gzip']), 501);
  assert.equal(te(['chunked', 'chunked']), 501);
  assert.equal(checkRequestHead(h1('/', ['Host', 'a', 'host', 'b']), BASE)?.status, 400);
  // Names in any case count; names of other lengths that end alike do not.
  assert.equal(checkRequestHead(h1('/', ['HOST', 'a', 'hOsT', 'b']), BASE)?.status, 400);
  assert.equal(checkRequestHead(h1('/', ['Host', 'a', 'x-host', 'b']), BASE), undefined);
  const mixed = ['Host', 'a', 'TRANSFER-ENCODING', 'gzip'];
  assert.equal(checkRequestHead(h1('/', mixed), BASE)?.status, 501);
  const other = ['Host', 'a', 'x-transfer-encoding', 'gzip'];
  assert.equal(checkRequestHead(h1('/', other), BASE), undefined);
});

test('paths: fragment and non-ASCII are 400; the normalised path is written back', () => {
  assert.equal(checkRequestHead(h1('/a#b'), BASE)?.status, 400);
  assert.equal(checkRequestHead(h1('/\u00e9'), BASE)?.status, 400);
  assert.equal(checkRequestHead(h1('*', ['Host', 'a'], [1, 1], 'OPTIONS'), BASE)?.status, 400);
  const req = h1('/admin/../ok/%2e%2e/%61pi?q=/../x');
  assert.equal(checkRequestHead(req, BASE), undefined);
  assert.equal(req.url, '/api?q=/../x');
  // Absolute-form becomes origin-form with the URL's authority as Host.
  const abs = h1('http://svc.ns:8080/a/./b', ['Host', 'other']);
  assert.equal(checkRequestHead(abs, BASE), undefined);
  assert.equal(abs.url, '/a/b');
  assert.equal(abs.headers.host, 'svc.ns:8080');
  assert.equal(checkRequestHead(h1('https://svc/a'), BASE)?.status, 400);
});

test('absolute-form targets: the same answer every time they are seen, refusals included', () => {
  const cases: [string, number | undefined, string, string][] = [
    ['http://svc.ns:8080/a?x=1', undefined, '/a?x=1', 'svc.ns:8080'],
    ['HTTP://svc', undefined, '/', 'svc'],
    ['http://svc?q', undefined, '/?q', 'svc'],
    ['http://user@svc/a', 400, '', ''],
    ['http:///a', 400, '', ''],
    ['ftp://svc/a', 400, '', ''],
  ];
  // Asked twice: the second answer comes from what the first one kept.
  for (let round = 0; round < 2; round += 1)
    for (const [url, status, path, host] of cases) {
      const req = h1(url, ['Host', 'other']);
      assert.equal(checkRequestHead(req, BASE)?.status, status, `${url} (${String(round)})`);
      if (status === undefined) {
        assert.equal(req.url, path, url);
        assert.equal(req.headers.host, host, url);
      }
    }
  // Many distinct targets (a client inventing them) and a long one: still read right.
  for (let i = 0; i < 2100; i += 1) {
    const req = h1(`http://h${String(i)}/p`);
    assert.equal(checkRequestHead(req, BASE), undefined);
    assert.equal(req.headers.host, `h${String(i)}`);
  }
  const long = h1(`http://svc/${'a'.repeat(2000)}`);
  assert.equal(checkRequestHead(long, BASE), undefined);
  assert.equal(long.url, `/${'a'.repeat(2000)}`);
});

test('the HCM picks the normalisation: merge_slashes, escaped-slash actions, normalize_path off', () => {
  const merge = compileRequestHeadPolicy({ normalize_path: { value: true }, merge_slashes: true });
  const a = h1('//a///b');
  checkRequestHead(a, merge);
  assert.equal(a.url, '/a/b');
  const decode = compileRequestHeadPolicy({
    merge_slashes: true,
    path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD',
  });
  const b = h1('/a%2F..%2Fadmin');
  checkRequestHead(b, decode);
  assert.equal(b.url, '/admin');
  const rejecting = compileRequestHeadPolicy({
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
  });
  assert.equal(checkRequestHead(h1('/a%2fb'), rejecting)?.status, 400);
  const none = compileRequestHeadPolicy({ normalize_path: { value: false } });
  const c = h1('/a/../b');
  checkRequestHead(c, none);
  assert.equal(c.url, '/a/../b');
});

test('upgrades: websocket by default, h2c never, route upgrade_configs override the HCM', () => {
  assert.equal(upgradeAllowed('websocket', {}, {}), true);
  assert.equal(upgradeAllowed('WebSocket', undefined, undefined), true);
  assert.equal(upgradeAllowed('h2c', {}, {}), false);
  assert.equal(upgradeAllowed('foo', {}, {}), false);
  const hcm = { upgrade_configs: [{ upgrade_type: 'foo' }] };
  assert.equal(upgradeAllowed('foo', hcm, {}), true);
  assert.equal(upgradeAllowed('websocket', hcm, {}), false);
  const route = { upgrade_configs: [{ upgrade_type: 'foo', enabled: { value: false } }] };
  assert.equal(upgradeAllowed('foo', hcm, route), false);
  assert.equal(upgradeAllowed('h2c', { upgrade_configs: [{ upgrade_type: 'h2c' }] }, {}), false);
});

test('property: an accepted path is normalised, idempotent, and what policy would match', () => {
  const segment = fc.constantFrom(
    '',
    '.',
    '..',
    'a',
    'admin',
    '%2e',
    '%2E%2e',
    '%2f',
    '%5C',
    '%61',
    '%25',
    ';x',
    '\\',
    '%',
    '#',
    '?q=..',
  );
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
      const url = `/${segments.join('/')}`;
      const req = h1(url);
      const rejected = checkRequestHead(req, BASE);
      if (rejected !== undefined) return rejected.status === 400;
      const forwarded = req.url ?? '';
      // What the policy evaluator normalises to is the forwarded path itself.
      const again = normalizePath(forwarded, 'BASE');
      if (!again.ok) return false;
      const q = forwarded.indexOf('?');
      const pathPart = q === -1 ? forwarded : forwarded.slice(0, q);
      if (again.path !== pathPart) return false;
      // And checking it a second time changes nothing.
      const twice = h1(forwarded);
      return checkRequestHead(twice, BASE) === undefined && twice.url === forwarded;
    }),
    { numRuns: 2_000 },
  );
});
