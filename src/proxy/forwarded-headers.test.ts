import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forwardedRequestHeaders, forwardedResponseHeaders } from './forwarded-headers.js';

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
  assert.deepEqual(forwardedRequestHeaders(headers, new Set(['x-envoy-peer-metadata'])), {
    host: 'reviews:9080',
    te: 'trailers',
    accept: '*/*',
    cookie: 'a=1; b=2',
  });
  // Without a drop set the hop's own fields pass; `te` other than trailers never does.
  assert.deepEqual(forwardedRequestHeaders({ te: 'gzip', 'x-envoy-peer-metadata': 'm' }), {
    'x-envoy-peer-metadata': 'm',
  });
  // A `Connection` header naming `te` drops it even as `trailers`.
  assert.deepEqual(forwardedRequestHeaders({ connection: 'TE', te: 'trailers', a: 'b' }), {
    a: 'b',
  });
  assert.deepEqual(
    forwardedResponseHeaders({ 'content-length': '2', connection: 'close', ':status': '200' }),
    { 'content-length': '2' },
  );
});
