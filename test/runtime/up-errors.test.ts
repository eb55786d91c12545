// `palisade up` refuses bad input before starting anything: an invalid mesh
// names every problem (file, object, field) and exits 2; a taken port names the
// port and what wanted it and exits 1; `apply` of an invalid file changes nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, runPalisade, tempDir } from '../helpers/index.js';

const WORKLOAD = `apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: default }
spec:
  command: node
  args: ["-e", "require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, process.env.HOST)"]
  ports: [{ name: http, port: 8080 }]
`;

test('an invalid mesh is rejected whole with every problem named; nothing starts', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const mesh = join(dir.path, 'mesh');
  mkdirSync(mesh);
  writeFileSync(
    join(mesh, 'a.yaml'),
    `${WORKLOAD}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: SOMETIMES } }\n`,
  );
  writeFileSync(
    join(mesh, 'b.yaml'),
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: r }\nspec: { hosts: [r], http: [{ route: [{ destination: { host: r } }], retriez: {} }] }\n',
  );
  const state = join(dir.path, 'state');
  const r = await runPalisade(['up', '-f', mesh, '--state-dir', state]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /PeerAuthentication istio-system\/default\): spec\.mtls\.mode: must be one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT"/,
  );
  assert.match(r.stderr, /VirtualService r\): spec\.http\[0\]\.retriez: unknown field/);
  assert.match(r.stderr, /nothing was started/);
  assert.equal(existsSync(join(state, 'mesh.json')), false);
});

test('a taken control-plane port is named with what wanted it', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const mesh = join(dir.path, 'mesh');
  mkdirSync(mesh);
  writeFileSync(join(mesh, 'web.yaml'), WORKLOAD);
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const r = await runPalisade([
    'up',
    '-f',
    mesh,
    '--isolation',
    'loopback',
    '--state-dir',
    join(dir.path, 'state'),
    '--control-port',
    String(port),
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `port ${String(port)} on 127\\.0\\.0\\.1, wanted by the control plane \\(xDS\\), is already in use`,
    ),
  );
});

test('apply without a running mesh says how to start one', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(
    join(dir.path, 'vs.yaml'),
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: r }\nspec: { hosts: [r], http: [{ route: [{ destination: { host: r } }] }] }\n',
  );
  const r = await runPalisade(['apply', '-f', join(dir.path, 'vs.yaml')], { cwd: dir.path });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /no mesh is running \(no mesh.json under .*\.palisade\): start it with npm start \(palisade up -f examples\/bookinfo\), or pass --state-dir/,
  );
});
