// The parser reads the framing and connection fields (Host, Content-Length,
// Transfer-Encoding, Connection, Upgrade, Expect) by their bytes: in any case,
// never a look-alike name of the same length, and a Content-Length only as
// one to fifteen digits (llhttp's rule; node:http answers the same, which
// test/proxy/http1-differential.test.ts checks on generated heads).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFailure, parseRequestHead } from './head-parser.js';
import type { ParseFailure, RequestHead } from './types.js';
import { DEFAULT_LIMITS } from './types.js';

const parse = (...fields: string[]): RequestHead | ParseFailure =>
  parseRequestHead(
    Buffer.from(`POST /p HTTP/1.1\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`, 'latin1'),
    DEFAULT_LIMITS,
  );

const ok = (r: RequestHead | ParseFailure): RequestHead => {
  if (isFailure(r)) assert.fail(`refused: ${r.reason}`);
  return r;
};

test('framing and connection fields are read in any case', () => {
  for (const host of ['host', 'Host', 'HOST', 'hOsT']) {
    assert.equal(ok(parse(`${host}: a`)).host, 'a', host);
    const two = parse(`${host}: a`, 'host: b');
    assert.ok(isFailure(two) && two.reason === 'invalid-host', `${host} twice`);
  }
  for (const name of ['content-length', 'Content-Length', 'CONTENT-LENGTH', 'cOnTeNt-LeNgTh'])
    assert.deepEqual(ok(parse('host: a', `${name}: 12`)).framing, { kind: 'length', length: 12 });
  for (const name of ['transfer-encoding', 'TRANSFER-ENCODING', 'Transfer-encoding'])
    assert.equal(ok(parse('host: a', `${name}: chunked`)).framing.kind, 'chunked', name);
  assert.equal(ok(parse('host: a', 'CONNECTION: close')).keepAlive, false);
  assert.equal(ok(parse('host: a', 'UPGRADE: WebSocket')).upgrade, 'websocket');
  assert.equal(ok(parse('host: a', 'EXPECT: 100-Continue')).expectContinue, true);
});

test('a name of the same length that is not the field is an ordinary field', () => {
  const r = ok(
    parse(
      'host: a',
      'hosu: b',
      'content-lengti: 5',
      'transfer-encodinh: gzip',
      'connectioo: close',
      'upgradf: x',
      'expecu: 100-continue',
      // `^` (0x5e) ORed with 0x20 is `~`, `` ` `` is unchanged: tokens that are no letter.
      'content^length: 9',
    ),
  );
  assert.equal(r.framing.kind, 'none');
  assert.equal(r.keepAlive, true);
  assert.equal(r.upgrade, '');
  assert.equal(r.expectContinue, false);
  assert.equal(r.headers.length, 16, 'every field is kept');
});

test('Content-Length is one to fifteen digits, once', () => {
  const length = (value: string): number | string => {
    const r = parse('host: a', `Content-Length: ${value}`);
    if (isFailure(r)) return r.reason;
    return r.framing.kind === 'length' ? r.framing.length : 0;
  };
  assert.equal(length('0'), 0);
  assert.equal(length('007'), 7);
  assert.equal(length('5 '), 5, 'trailing spaces are not the value');
  assert.equal(length('123456789012345'), 123456789012345);
  for (const bad of ['', '+1', '-1', '0x1', '1 2', '1,1', '1.0', '\xb9', '1234567890123456', '5\t'])
    assert.equal(length(bad), 'invalid-content-length', JSON.stringify(bad));
  const twice = parse('host: a', 'Content-Length: 1', 'content-length: 1');
  assert.ok(isFailure(twice) && twice.reason === 'duplicate-content-length');
});
