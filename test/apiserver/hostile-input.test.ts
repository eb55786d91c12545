/**
 * Every parser of untrusted input in the API server (patch documents,
 * selectors, protobuf bodies) fails only with an API error, never with a
 * crash, on arbitrary input (fast-check); and the live server answers
 * hostile requests — garbage bodies, oversized bodies, path tricks, bad
 * credentials — with 4xx Status objects and keeps serving.
 * Loopback 127.38.4.1, port 0.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { ensurePki, openEmbeddedStore, startApiServer } from '../../src/apiserver/index.js';
import { ApiError } from '../../src/apiserver/status.js';
import {
  jsonPatch,
  mergePatch,
  strategicMergePatch,
  TestFailed,
} from '../../src/apiserver/patch.js';
import { objectFilter } from '../../src/apiserver/selectors.js';
import { decodeKubernetesProtobuf } from '../../src/apiserver/protobuf.js';
import { tempDir } from '../helpers/index.js';

const expected = (e: unknown): boolean => e instanceof ApiError || e instanceof TestFailed;

test('patch, selector and protobuf parsers fail only with API errors on arbitrary input', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.jsonValue(), (target, patch) => {
      for (const f of [jsonPatch, mergePatch, strategicMergePatch]) {
        try {
          f(target, patch);
        } catch (e) {
          assert.ok(expected(e), String(e));
        }
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.string(), fc.string(), (l, f) => {
      try {
        objectFilter(l, f)({ metadata: { name: 'x', labels: { a: 'b' } } });
      } catch (e) {
        assert.ok(expected(e), String(e));
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      for (const body of [
        Buffer.from(bytes),
        Buffer.concat([Buffer.from('k8s\0'), Buffer.from(bytes)]),
      ]) {
        try {
          decodeKubernetesProtobuf(body);
        } catch (e) {
          assert.ok(expected(e), String(e));
        }
      }
    }),
    { numRuns: 500 },
  );
  // A JSON patch is atomic: a failing operation leaves the target untouched.
  const target = { a: { b: 1 } };
  assert.throws(() =>
    jsonPatch(target, [
      { op: 'remove', path: '/a/b' },
      { op: 'remove', path: '/nope' },
    ]),
  );
  assert.deepEqual(target, { a: { b: 1 } });
});

test('the live server answers hostile requests with 4xx and keeps serving', async (t) => {
  const dir = tempDir('palisade-apiserver-hostile-');
  t.after(dir.cleanup);
  const store = await openEmbeddedStore({ dir: dir.path });
  const pki = await ensurePki(dir.path, '127.38.4.1', 'https://127.38.4.1:0');
  const server = await startApiServer({ store, pki, host: '127.38.4.1', port: 0 });
  t.after(async () => {
    await server.close();
    await store.close();
  });
  const admin = new Agent({
    connect: { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem },
  });
  const anon = new Agent({ connect: { ca: pki.ca.certPem } });
  t.after(() => Promise.all([admin.close(), anon.close()]));
  const call = async (
    path: string,
    opts: {
      method?: string;
      body?: string | Buffer;
      type?: string;
      agent?: Agent;
      headers?: Record<string, string>;
    } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await request(`${server.url}${path}`, {
      method: (opts.method ?? 'GET') as 'GET',
      dispatcher: opts.agent ?? admin,
      headers: { 'content-type': opts.type ?? 'application/json', ...opts.headers },
      ...(opts.body === undefined ? {} : { body: opts.body }),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
  };
  const cases: [string, Parameters<typeof call>[1], number][] = [
    ['/api/v1/namespaces', { method: 'POST', body: '{not json' }, 400],
    ['/api/v1/namespaces', { method: 'POST', body: '[]' }, 400],
    ['/api/v1/namespaces', { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024, 0x20) }, 413],
    [
      '/api/v1/namespaces',
      { method: 'POST', body: '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}' },
      400,
    ],
    ['/api/v1/namespaces', { method: 'POST', body: '{"metadata":{"name":"UPPER"}}' }, 422],
    [
      '/api/v1/namespaces',
      {
        method: 'POST',
        body: Buffer.from('k8s\0garbage'),
        type: 'application/vnd.kubernetes.protobuf',
      },
      400,
    ],
    ['/api/v1/namespaces/default/configmaps/a%2Fb', {}, 400],
    ['/api/v1/namespaces/default/configmaps?labelSelector=%28%28%28', {}, 400],
    [
      '/api/v1/namespaces/default/configmaps/x',
      { method: 'PATCH', body: '{}', type: 'application/x-unknown' },
      404,
    ],
    [
      '/api/v1/namespaces/nope/configmaps',
      { method: 'POST', body: '{"metadata":{"name":"c"}}' },
      404,
    ],
    ['/api/v1/namespaces/default/widgets', {}, 404],
    ['/api/v1/namespaces', { agent: anon }, 401],
    ['/api/v1/namespaces', { agent: anon, headers: { authorization: 'Bearer a.b.c' } }, 401],
    ['/api/v1/namespaces', { agent: anon, headers: { authorization: 'Basic Zm9vOmJhcg==' } }, 401],
    ['/api/v1/namespaces', { headers: { 'impersonate-group': 'system:masters' } }, 500],
    ['/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc', {}, 400],
  ];
  for (const [path, opts, status] of cases) {
    const r = await call(path, opts);
    assert.equal(r.status, status, `${opts?.method ?? 'GET'} ${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.kind, 'Status', path);
  }
  // Dot segments, sent raw (HTTP clients normalise them away before sending).
  const port = new URL(server.url).port;
  for (const path of [
    '/api/v1/namespaces/default/configmaps/../secrets',
    '/api/v1/namespaces/default/configmaps/%2e%2E/secrets',
    '/api/v1/namespaces/default/./secrets',
  ]) {
    const status = await new Promise<string>((resolve, reject) => {
      const sock = tlsConnect(
        {
          host: '127.38.4.1',
          port: Number(port),
          ca: pki.ca.certPem,
          cert: pki.admin.certPem,
          key: pki.admin.keyPem,
          servername: 'localhost',
        },
        () => {
          sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
        },
      );
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () => {
        resolve(data.split('\r\n')[0] ?? '');
      });
      sock.on('error', reject);
    });
    assert.match(status, /^HTTP\/1\.1 400/, path);
  }
  // Still serving, state intact.
  const ok = await call('/api/v1/namespaces/default');
  assert.equal(ok.status, 200);
});

test("names of Object's own properties: a patched list is an unknown list, a protobuf kind is unsupported", () => {
  for (const field of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    // As JSON bodies arrive: JSON.parse makes `__proto__` an own field.
    const target = JSON.parse(
      `{${JSON.stringify(field)}: [{"a": 1}], "widgets": [{"a": 1}]}`,
    ) as unknown;
    const patch = JSON.parse(
      `{${JSON.stringify(field)}: [{"$patch": "delete", "a": 1}], "widgets": [{"$patch": "delete", "a": 1}]}`,
    ) as unknown;
    const out = strategicMergePatch(target, patch) as Record<string, unknown>;
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, field)?.value, out['widgets'], field);
  }
  for (const kind of ['constructor', 'toString', '__proto__']) {
    // runtime.Unknown { typeMeta { apiVersion: v1, kind }, raw: '' } after the `k8s\0` magic.
    const k = Buffer.from(kind);
    const typeMeta = Buffer.concat([
      Buffer.from([0x0a, 2]),
      Buffer.from('v1'),
      Buffer.from([0x12, k.length]),
      k,
    ]);
    const body = Buffer.concat([
      Buffer.from('k8s\0'),
      Buffer.from([0x0a, typeMeta.length]),
      typeMeta,
      Buffer.from([0x12, 0]),
    ]);
    assert.throws(
      () => decodeKubernetesProtobuf(body),
      (e: unknown) => e instanceof ApiError && /protobuf is not supported for v1\//.test(e.message),
      kind,
    );
  }
});

test('a patch field named __proto__ is a field: no patch kind sets a prototype', () => {
  const target = (): unknown => JSON.parse('{"spec": {"y": 2}}');
  const results: [string, unknown][] = [
    ['merge', mergePatch(target(), JSON.parse('{"spec": {"__proto__": {"hostNetwork": true}}}'))],
    [
      'strategic',
      strategicMergePatch(target(), JSON.parse('{"spec": {"__proto__": {"hostNetwork": true}}}')),
    ],
    [
      'json',
      jsonPatch(target(), [{ op: 'add', path: '/spec/__proto__', value: { hostNetwork: true } }]),
    ],
  ];
  for (const [kind, result] of results) {
    const spec = (result as { spec: Record<string, unknown> }).spec;
    // What admission reads is what is stored: no inherited field, the same JSON both ways.
    assert.equal(Object.getPrototypeOf(spec), Object.prototype, kind);
    assert.equal(spec['hostNetwork'], undefined, kind);
    assert.deepEqual(Object.keys(spec), ['y', '__proto__'], kind);
    assert.equal(JSON.stringify(spec), '{"y":2,"__proto__":{"hostNetwork":true}}', kind);
  }
  // A patch that removes it removes the field.
  const withField = mergePatch(target(), JSON.parse('{"spec": {"__proto__": {"a": 1}}}'));
  const removed = mergePatch(withField, JSON.parse('{"spec": {"__proto__": null}}')) as {
    spec: object;
  };
  assert.deepEqual(Object.keys(removed.spec), ['y']);
});
