// Start lines as the serializer writes them (a status line per status with
// the reason phrase a server sends, made once; heads written one after the
// other with different start lines each get their own), and fields found by
// name in a received head.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseResponseHead } from './response-head.js';
import { buildHead, serializeHead, statusLine } from './serializer.js';
import { fieldValue, hasField } from './server-exchange.js';
import { DEFAULT_LIMITS } from './types.js';

test('status lines: the reason a server writes, the same string each time, any status', () => {
  assert.equal(statusLine(200), 'HTTP/1.1 200 OK');
  assert.equal(statusLine(503), 'HTTP/1.1 503 Service Unavailable');
  assert.equal(statusLine(299), 'HTTP/1.1 299 ');
  assert.equal(statusLine(200), statusLine(200));
  // Outside 100–999 (never sent by the proxy) still answered, and not kept.
  assert.equal(statusLine(1000), 'HTTP/1.1 1000 ');
  assert.equal(statusLine(2.5), 'HTTP/1.1 2.5 ');
});

test('heads written in turn with different start lines each carry their own', () => {
  const received = Buffer.from(
    'HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nX-A: b\r\n\r\n',
    'latin1',
  );
  const head = parseResponseHead(received, 'GET', DEFAULT_LIMITS);
  assert.ok('status' in head && head.status === 200, JSON.stringify(head));
  const lines: string[] = [];
  for (const status of [200, 404, 200, 200, 503, 404])
    lines.push(
      serializeHead(head, { startLine: statusLine(status) })
        .toString('latin1')
        .split('\r\n')[0] ?? '',
    );
  assert.deepEqual(lines, [
    'HTTP/1.1 200 OK',
    'HTTP/1.1 404 Not Found',
    'HTTP/1.1 200 OK',
    'HTTP/1.1 200 OK',
    'HTTP/1.1 503 Service Unavailable',
    'HTTP/1.1 404 Not Found',
  ]);
  assert.equal(
    buildHead('GET / HTTP/1.1', ['host', 'a']).toString('latin1'),
    'GET / HTTP/1.1\r\nhost: a\r\n\r\n',
  );
  assert.equal(
    buildHead(statusLine(204), []).toString('latin1'),
    'HTTP/1.1 204 No Content\r\n\r\n',
  );
  assert.equal(
    serializeHead(head, { startLine: 'HTTP/1.1 200 OK' }).toString('latin1'),
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n',
  );
});

test('a field found by name in any case; same-length look-alikes are other fields', () => {
  const list = [
    'Grpc_Status',
    'x',
    'GRPC-STATUS',
    '14',
    'grpc-status',
    '0',
    'X-Envoy-Peer-Metadata-Id',
    'id',
    'content^length',
    '1',
    'X-ENVOY-PEER-METADATA',
    'claim',
  ];
  assert.equal(fieldValue(list, 'grpc-status'), '14', 'the first, in any case');
  assert.equal(fieldValue(list, 'x-envoy-peer-metadata'), 'claim');
  assert.equal(fieldValue(list, 'x-envoy-peer-metadata-id'), 'id');
  assert.equal(fieldValue(list, 'content-length'), undefined);
  assert.equal(hasField(['grpc-statut', '0', 'grpc-statuss', '0'], 'grpc-status'), false);
});
