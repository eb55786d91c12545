// Shared constants for common field names and methods (field-names.ts) must
// never change what the parser reads: a name comes back exactly as sent, case
// included, whether or not it is a known one, and only Node's methods, as
// sent, are accepted; and the Connection options a head lists.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { byteLookup, knownName, lowerName } from './field-names.js';
import { connectionOptions, isFailure, METHODS, parseRequestHead } from './head-parser.js';
import { DEFAULT_LIMITS } from './types.js';

const head = (lines: string): Buffer => Buffer.from(`${lines}\r\n\r\n`, 'latin1');

test('a field name is read exactly as sent, known or not, in any case', () => {
  const names = [
    'content-type',
    'Content-Type',
    'CONTENT-TYPE',
    'content-Type',
    'x-request-id',
    'X-Request-Id',
    'X-Request-ID',
    'x-request-ie', // a known name's length, one byte off
    'x-request-i', // a known name's prefix
    'x-request-idd',
    'te',
    'TE',
    'b3',
    'x-custom',
  ];
  const sent = names.map((n, i) => `${n}: v${String(i)}`).join('\r\n');
  const parsed = parseRequestHead(head(`GET / HTTP/1.1\r\nhost: a\r\n${sent}`), DEFAULT_LIMITS);
  assert.ok(!isFailure(parsed), JSON.stringify(parsed));
  assert.deepEqual(parsed.headers, ['host', 'a', ...names.flatMap((n, i) => [n, `v${String(i)}`])]);
});

test('knownName reads any range of a buffer, and knows only whole names', () => {
  const buf = Buffer.from('xxcontent-typeyy', 'latin1');
  assert.equal(knownName(buf, 2, 14), 'content-type');
  assert.equal(knownName(buf, 2, 13), undefined);
  assert.equal(knownName(buf, 0, 0), undefined);
  const lookup = byteLookup(['ab', 'abc']);
  assert.equal(lookup(Buffer.from('zabc'), 1, 3), 'ab');
  assert.equal(lookup(Buffer.from('zabc'), 1, 4), 'abc');
  assert.equal(lookup(Buffer.from('zabd'), 1, 4), undefined);
  // Same length, first and last byte (one bucket): each found by all its bytes.
  const same = byteLookup(['axb', 'ayb', 'a', 'b']);
  assert.equal(same(Buffer.from('axb'), 0, 3), 'axb');
  assert.equal(same(Buffer.from('ayb'), 0, 3), 'ayb');
  assert.equal(same(Buffer.from('azb'), 0, 3), undefined);
  assert.equal(same(Buffer.from('bxb'), 0, 3), undefined);
  assert.equal(same(Buffer.from('ab'), 0, 1), 'a');
  assert.equal(same(Buffer.from('ab'), 1, 2), 'b');
  assert.equal(same(Buffer.from('ab'), 1, 1), undefined);
  // Every known name is found, and no other string of its length and ends.
  const names = fc.sample(fc.string({ minLength: 1, maxLength: 12 }), 300);
  const table = byteLookup(names.slice(0, 150));
  const known = new Set(names.slice(0, 150));
  for (const n of names) {
    const b = Buffer.from(`:${n}:`, 'latin1');
    assert.equal(table(b, 1, b.length - 1), known.has(n) ? n : undefined, JSON.stringify(n));
  }
});

test("every one of Node's methods is accepted as sent, and nothing else", () => {
  for (const method of METHODS) {
    // CONNECT takes the authority-form only (RFC 9112 §3.2.3).
    const target = method === 'CONNECT' ? 'a:443' : '/';
    const parsed = parseRequestHead(
      head(`${method} ${target} HTTP/1.1\r\nhost: a`),
      DEFAULT_LIMITS,
    );
    assert.ok(!isFailure(parsed), method);
    assert.equal(parsed.method, method);
  }
  for (const method of ['get', 'Get', 'GE', 'GETS', 'POSTT', 'M-SEARCHX', 'XGET']) {
    const parsed = parseRequestHead(head(`${method} / HTTP/1.1\r\nhost: a`), DEFAULT_LIMITS);
    assert.ok(isFailure(parsed), method);
    assert.equal(parsed.reason, 'invalid-method');
  }
});

test('Connection options: one or several, any case, spaces and empty elements ignored', () => {
  assert.deepEqual(connectionOptions('keep-alive'), ['keep-alive']);
  assert.deepEqual(connectionOptions(' Close '), ['close']);
  assert.deepEqual(connectionOptions(''), []);
  assert.deepEqual(connectionOptions('Keep-Alive, Upgrade'), ['keep-alive', 'upgrade']);
  assert.deepEqual(connectionOptions(',, x-a ,'), ['x-a']);
  assert.deepEqual(connectionOptions('close', ['te']), ['te', 'close']);
  // A head's framing reads them: `close` in any case ends the connection.
  const parsed = parseRequestHead(
    head('GET / HTTP/1.1\r\nhost: a\r\nConnection: CLOSE'),
    DEFAULT_LIMITS,
  );
  assert.ok(!isFailure(parsed));
  assert.equal(parsed.keepAlive, false);
});

test('a field name in lower case: known ones looked up, any other converted', () => {
  const cases: [string, string][] = [
    ['content-type', 'content-type'],
    ['Content-Type', 'content-type'],
    ['CONTENT-TYPE', 'content-type'],
    ['X-Request-Id', 'x-request-id'],
    ['X-Custom-Field', 'x-custom-field'],
    ['x-custom-field', 'x-custom-field'],
    ['__proto__', '__proto__'],
    ['', ''],
  ];
  for (const [name, lower] of cases) assert.equal(lowerName(name), lower, name);
  // A name read from a head (a slice, not the constant) is looked up by its characters.
  const sliced = Buffer.from(':Content-Length:', 'latin1').toString('latin1').slice(1, -1);
  assert.equal(lowerName(sliced), 'content-length');
});
