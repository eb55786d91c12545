// `palisade analyze` as users run it: the exact istioctl-style lines with
// stable codes, exit 1 on errors and 0 when clean, -o json, usage errors.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runPalisade, tempDir } from '../helpers/index.js';

const BAD = join(REPO_ROOT, 'test', 'control', 'fixtures', 'analyze', 'bad');

test('findings are printed one per line with codes, in object order; errors exit 1', async () => {
  const r = await runPalisade(['analyze', '-f', BAD]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => /^(\w+) \[(PAL\d{4})\] \((\w+) ([^)]*)\)/.exec(l)?.slice(1, 5).join(' ')),
    [
      'Error PAL0103 VirtualService default/reviews',
      'Error PAL0101 VirtualService default/reviews',
      'Error PAL0102 VirtualService default/reviews',
      'Warning PAL0106 VirtualService default/reviews',
      'Info PAL0109 Service default/reviews',
      'Warning PAL0108 PeerAuthentication default/loose',
      'Warning PAL0104 AuthorizationPolicy default/nobody',
      'Warning PAL0107 DestinationRule default/ext',
      'Info PAL0110 Widget default/w',
      'Error PAL0001 PeerAuthentication default/typo',
    ],
  );
  assert.ok(
    lines.includes(
      'Error [PAL0101] (VirtualService default/reviews) Referenced host not found: "ratings2"',
    ),
  );
  assert.ok(
    lines.includes(
      'Error [PAL0102] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v9"',
    ),
  );
  assert.ok(
    lines.includes(
      'Error [PAL0001] (PeerAuthentication default/typo) Schema validation error: spec.mtls.mode: must be one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT"',
    ),
  );
});

test('-o json gives every finding with level, code, object and file', async () => {
  const r = await runPalisade(['analyze', '-f', BAD, '-o', 'json']);
  assert.equal(r.code, 1);
  const findings = JSON.parse(r.stdout) as {
    level: string;
    code: string;
    kind: string;
    namespace: string;
    name: string;
    message: string;
    file: string;
  }[];
  const hostNotFound = findings.find((f) => f.code === 'PAL0101');
  assert.deepEqual(hostNotFound, {
    level: 'Error',
    code: 'PAL0101',
    kind: 'VirtualService',
    namespace: 'default',
    name: 'reviews',
    message: 'Referenced host not found: "ratings2"',
    file: join(BAD, 'bad.yaml'),
  });
});

test('the Bookinfo example (with its samples) is clean; warnings alone exit 0; conflicts are errors', async (t) => {
  const clean = await runPalisade(['analyze', '-f', 'examples/bookinfo'], { cwd: REPO_ROOT });
  assert.equal(clean.code, 0, clean.stdout);
  assert.equal(clean.stdout, '✔ No validation issues found when analyzing examples/bookinfo.\n');
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(
    join(dir.path, 'm.yaml'),
    `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a, namespace: default }
spec: { hosts: [web], http: [{ route: [{ destination: { host: web } }] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b, namespace: default }
spec: { hosts: [web.default.svc.cluster.local], http: [{ route: [{ destination: { host: web } }] }] }
`,
  );
  const conflict = await runPalisade(['analyze', '-f', dir.path]);
  assert.equal(conflict.code, 1);
  assert.match(
    conflict.stdout,
    /^Error \[PAL0105\] \(VirtualService default\/a\) The VirtualServices default\/a, default\/b associated with mesh define the same host web\.default\.svc\.cluster\.local/m,
  );
  writeFileSync(
    join(dir.path, 'm.yaml'),
    'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: x, namespace: default }\nspec: { selector: { matchLabels: { app: ghost } } }\n',
  );
  const warningOnly = await runPalisade(['analyze', '-f', dir.path]);
  assert.equal(warningOnly.code, 0);
  assert.match(warningOnly.stdout, /^Warning \[PAL0104\]/);
});

test('usage errors exit 2', async () => {
  const r = await runPalisade(['analyze']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing -f DIR\|FILE/);
  const missing = await runPalisade(['analyze', '-f', '/nonexistent/dir']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no such file or directory/);
});
