import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  forwardedRequestHeaders,
  forwardedResponseHeaders,
  relayedTrailers,
} from './forwarded-headers.js';

/** A header record as a plain object (the records have no prototype fields). */
const plain = (record: object): object => ({ ...record });

test('a forwarded request keeps end-to-end fields only (RFC 9110 §7.6.1), minus what the hop drops', () => {
  const headers = {
    host: 'reviews:9080',
    connection: 'keep-alive, X-Private ,, close',
    'keep-alive': 'timeout=5',
    'x-private': 'secret',
    'transfer-encoding': 'chunked',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic eA==',
    te: 'trailers',
    ':authority': 'reviews',
    'x-envoy-peer-metadata': 'forged',
    accept: '*/*',
    cookie: 'a=1; b=2',
  };
  assert.deepEqual(plain(forwardedRequestHeaders(headers, new Set(['x-envoy-peer-metadata']))), {
    host: 'reviews:9080',
    te: 'trailers',
    accept: '*/*',
    cookie: 'a=1; b=2',
  });
  // Without a drop set the hop's own fields pass; `te` other than trailers never does.
  assert.deepEqual(plain(forwardedRequestHeaders({ te: 'gzip', 'x-envoy-peer-metadata': 'm' })), {
    'x-envoy-peer-metadata': 'm',
  });
  // A `Connection` header naming `te` drops it even as `trailers`.
  assert.deepEqual(plain(forwardedRequestHeaders({ connection: 'TE', te: 'trailers', a: 'b' })), {
    a: 'b',
  });
  assert.deepEqual(
    plain(
      forwardedResponseHeaders({ 'content-length': '2', connection: 'close', ':status': '200' }),
    ),
    { 'content-length': '2' },
  );
  // Responses too: the fields their `Connection` names stay on the hop (one list, or several).
  assert.deepEqual(
    plain(
      forwardedResponseHeaders({ connection: 'X-Secret, keep-alive', 'x-secret': '1', a: 'b' }),
    ),
    { a: 'b' },
  );
  assert.deepEqual(
    plain(forwardedResponseHeaders({ connection: ['x-one', 'X-Two'], 'x-one': '1', 'x-two': '2' })),
    {},
  );
});

test("fields named after Object's own properties are ordinary fields, both ways", () => {
  // As a parser builds them: a record without a prototype, `__proto__` an own field.
  const received = Object.create(null) as Record<string, string | string[]>;
  received['__proto__'] = 'p1';
  received['constructor'] = 'c1';
  received['set-cookie'] = ['a=1', 'b=2'];
  for (const forwarded of [forwardedRequestHeaders(received), forwardedResponseHeaders(received)]) {
    assert.deepEqual(Object.keys(forwarded), ['__proto__', 'constructor', 'set-cookie']);
    assert.equal(forwarded['__proto__'], 'p1');
    // Nothing inherited: no `toString`, `hasOwnProperty`… to read as a field.
    assert.equal('toString' in forwarded, false);
    assert.equal('hasOwnProperty' in forwarded, false);
  }
  // An array under `__proto__` (a repeated field) stays a field, never a prototype.
  const repeated = Object.create(null) as Record<string, string | string[]>;
  repeated['__proto__'] = ['x', 'y'];
  const out = forwardedResponseHeaders(repeated);
  assert.deepEqual(out['__proto__'], ['x', 'y']);
  assert.deepEqual([...Object.keys(out)], ['__proto__']);
  const inherited: string[] = [];
  for (const name in out) inherited.push(name);
  assert.deepEqual(inherited, ['__proto__']);
});

test('relayed trailers: none for a response without any; the trailers-only status, then the end-to-end trailers', () => {
  const none = Object.freeze(Object.create(null) as Record<string, string>);
  assert.equal(relayedTrailers(undefined, none), undefined);
  assert.equal(relayedTrailers(undefined, {}), undefined);
  // Fields the hop drops, or without a value, leave nothing to relay.
  assert.equal(relayedTrailers(undefined, { connection: 'close', 'x-gone': undefined }), undefined);
  assert.deepEqual(plain(relayedTrailers(undefined, { 'grpc-status': '0', 'x-t': 'a' }) ?? {}), {
    'grpc-status': '0',
    'x-t': 'a',
  });
  // A trailers-only gRPC answer's status fields come first; the upstream's trailers win.
  assert.deepEqual(
    plain(relayedTrailers({ 'grpc-status': '14', 'grpc-message': 'down' }, none) ?? {}),
    { 'grpc-status': '14', 'grpc-message': 'down' },
  );
  assert.deepEqual(
    plain(relayedTrailers({ 'grpc-status': '14' }, { 'grpc-status': '2', te: 'trailers' }) ?? {}),
    { 'grpc-status': '2' },
  );
});
