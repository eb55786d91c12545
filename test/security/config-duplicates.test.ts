/**
 * One object (kind/namespace/name) written in two differently named files of
 * a directory is refused by `palisade apply` and `palisade up -f` with an
 * error naming both files — neither copy silently wins — while the same file
 * reached twice (`-f dir -f dir/a.yaml`) is read once, as kubectl does.
 * Both commands refuse before contacting or starting anything: apply
 * validates before it asks the control plane (the mesh.json names an
 * address nobody listens on), up before it starts a process.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, tempDir } from '../helpers/index.js';

const VS = (namespace: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-route
${namespace}spec:
  hosts: [reviews]
  http:
    - route:
        - destination: { host: reviews }
`;

test('apply and up -f refuse one object in two files, naming both', async (t) => {
  const dir = tempDir('palisade-h8-dup-');
  t.after(dir.cleanup);
  const config = join(dir.path, 'config');
  mkdirSync(config);
  // Same object: the namespace left out in one (default) and spelled out in the other.
  writeFileSync(join(config, 'a-route.yaml'), VS(''));
  writeFileSync(join(config, 'z-route.yml'), VS('  namespace: default\n'));
  const state = join(dir.path, 'state');
  mkdirSync(state);
  writeFileSync(
    join(state, 'mesh.json'),
    JSON.stringify({
      name: 'h8',
      stateDir: state,
      configDir: join(state, 'config'),
      control: '127.38.2.1:9',
    }),
  );

  const applied = await runPalisade(['apply', '-f', config, '--state-dir', state], {
    timeoutMs: 20_000,
  });
  assert.equal(applied.code, 2, applied.stderr);
  assert.match(applied.stderr, /nothing applied/);
  assert.match(applied.stderr, /z-route\.yml \(VirtualService default\/reviews-route\)/);
  assert.match(applied.stderr, /duplicate of the object in \S*a-route\.yaml/);
  assert.match(applied.stderr, /PAL_ERR_VALIDATION/);

  const up = await runPalisade(
    ['up', '-f', config, '--state-dir', join(dir.path, 'up-state'), '--isolation', 'loopback'],
    { timeoutMs: 20_000 },
  );
  assert.equal(up.code, 2, up.stderr);
  assert.match(up.stderr, /nothing was started/);
  assert.match(up.stderr, /z-route\.yml .*duplicate of the object in \S*a-route\.yaml/);
});

test('the same file reached twice is one object, not a duplicate of itself', async (t) => {
  const dir = tempDir('palisade-h8-dup-');
  t.after(dir.cleanup);
  const config = join(dir.path, 'config');
  mkdirSync(config);
  writeFileSync(join(config, 'route.yaml'), VS(''));
  const state = join(dir.path, 'state');
  mkdirSync(state);
  writeFileSync(
    join(state, 'mesh.json'),
    JSON.stringify({
      name: 'h8',
      stateDir: state,
      configDir: join(state, 'config'),
      control: '127.38.2.1:9',
    }),
  );
  const r = await runPalisade(
    ['apply', '-f', config, '-f', join(config, 'route.yaml'), '--state-dir', state],
    { timeoutMs: 20_000 },
  );
  // Valid: apply goes on to the control plane, which is not there (exit 1, named).
  assert.doesNotMatch(r.stderr, /duplicate/);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no mesh is running/);
});
