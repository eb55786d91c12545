// The header object a raw-socket request carries (headerObject): what node:http
// would build from the same fields, and a record where a field named like an
// Object.prototype member is an ordinary field and an absent one reads as absent.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test } from 'node:test';
import { headerObject } from './http1-exchange.js';

const sent = [
  ['Host', 'a'],
  ['__proto__', 'p'],
  ['Constructor', 'c'],
  ['toString', 't'],
  ['Set-Cookie', 's1'],
  ['set-cookie', 's2'],
  ['Cookie', 'a=1'],
  ['cookie', 'b=2'],
  ['Content-Type', 'text/plain'],
  ['content-type', 'text/html'],
  ['X-Many', '1'],
  ['x-many', '2'],
] as const;

test('headerObject: node:http semantics, and prototype-named fields are ordinary fields', async (t) => {
  const list = sent.flatMap(([n, v]) => [n, v]);
  const ours = headerObject(list);
  assert.equal(ours['__proto__'], 'p');
  assert.equal(ours['constructor'], 'c');
  assert.equal(ours['tostring'], 't');
  const loose = ours as Record<string, unknown>;
  for (const inherited of ['hasOwnProperty', 'valueOf', 'isPrototypeOf'])
    assert.equal(loose[inherited], undefined, `nothing inherited: ${inherited}`);
  assert.ok(!('toString' in ours));
  assert.deepEqual(Object.keys(ours).sort(), [
    '__proto__',
    'constructor',
    'content-type',
    'cookie',
    'host',
    'set-cookie',
    'tostring',
    'x-many',
  ]);
  // node:http's own object from the same bytes (its prototype-named fields aside).
  const server = http.createServer((req, res) => {
    res.end(JSON.stringify(req.headers));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const theirs = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, headers: [...list], agent: false },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve(JSON.parse(body) as Record<string, unknown>);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
  for (const name of ['host', 'set-cookie', 'cookie', 'content-type', 'x-many'])
    assert.deepEqual(ours[name], theirs[name], name);
});
