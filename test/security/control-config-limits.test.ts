// Issue 15 item 9: control plane stalls and bad config.
// - A steady stream of config changes (faster than the 100 ms quiet period)
//   still reaches proxies: Istio's PILOT_DEBOUNCE_MAX bounds the debounce of
//   the config watch and of the push (here 1 s instead of 10 s).
// - A YAML alias bomb is a validation error (exit 2, no stack trace), not an
//   internal error.
// - Invalid UTF-8 in a host is refused (file, object and field named), never
//   turned into U+FFFD.
// - Kubernetes' size bounds: 1.5 MiB per object, 256 KiB of annotations.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startControlPlane } from '../../src/control/index.js';
import { initCaDirectory, loadCaDirectory } from '../../src/identity/index.js';
import { silentLogger } from '../../src/logging/index.js';
import { xdsChannelCredentials } from '../../src/xds/grpc-channel.js';
import { TYPE_URLS } from '../../src/xds/index.js';
import { runPalisade, tempDir } from '../helpers/index.js';
import { openRawAdsStream } from './ads-stream.js';

const WORKLOAD = `apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: 8080 }] }
`;

const service = (port: number): string => `apiVersion: v1
kind: Service
metadata: { name: churn, namespace: foo }
spec: { selector: { app: churn }, ports: [{ name: http, port: ${String(port)} }] }
`;

test(
  'a steady stream of changes still pushes within the debounce maximum',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir();
    t.after(dir.cleanup);
    const configDir = join(dir.path, 'config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), WORKLOAD);
    writeFileSync(join(configDir, 'churn.yaml'), service(1000));
    await initCaDirectory(join(dir.path, 'ca'));
    const ca = await loadCaDirectory(join(dir.path, 'ca'));
    const plane = await startControlPlane({
      configDir,
      ca,
      logger: silentLogger(),
      host: '127.34.40.1',
      port: 0,
      caPort: 0,
      debounceMs: 300,
      debounceMaxMs: 1000,
    });
    t.after(() => plane.close());
    const token = await ca.tokens.mint({ namespace: 'foo', serviceAccount: 'web' });
    const stream = openRawAdsStream(
      `127.34.40.1:${String(plane.xdsPort)}`,
      xdsChannelCredentials({ rootPem: ca.trustBundle.toPem(), trustDomain: ca.trustDomain }),
      token,
      {
        id: 'sidecar~127.34.40.2~web-0.foo~foo.svc.cluster.local',
        metadata: { NAMESPACE: 'foo', SERVICE_ACCOUNT: 'web', WORKLOAD_NAME: 'web' },
      },
    );
    t.after(() => {
      stream.close();
    });
    stream.send(TYPE_URLS.cluster);
    const clusters = (): number =>
      stream.responses.filter((r) => r.type_url === TYPE_URLS.cluster).length;
    for (let i = 0; i < 400 && clusters() === 0; i += 1)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(clusters(), 1, 'the first CDS response arrives');
    // A change every 50 ms — well inside the 300 ms quiet period — for as long as it takes
    // (bounded: 600 changes). Without a maximum neither the watch nor the push ever fires.
    let changes = 0;
    while (clusters() === 1 && changes < 600) {
      changes += 1;
      writeFileSync(join(configDir, 'churn.yaml'), service(1000 + changes));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(clusters() > 1, `no push during ${String(changes)} steady changes`);
  },
);

async function controlOn(configText: string | Buffer): Promise<{
  code: number | null;
  stderr: string;
  file: string;
}> {
  const dir = tempDir();
  try {
    const configDir = join(dir.path, 'config');
    mkdirSync(configDir);
    const file = join(configDir, 'bad.yaml');
    writeFileSync(file, configText);
    const r = await runPalisade([
      'control',
      '--config-dir',
      configDir,
      '--listen',
      '127.34.40.3:0',
      '--ca-dir',
      join(dir.path, 'ca'),
    ]);
    return { code: r.code, stderr: r.stderr + r.stdout, file };
  } finally {
    dir.cleanup();
  }
}

const NO_STACK = /\n\s+at [^\n]+:\d+:\d+/;

test('a YAML alias bomb is a validation error (exit 2, no stack trace)', async () => {
  let bomb = 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bomb, namespace: foo }\ndata:\n';
  bomb += '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i < 9; i += 1)
    bomb += `  a${String(i)}: &a${String(i)} [${new Array(9).fill(`*a${String(i - 1)}`).join(',')}]\n`;
  const control = await controlOn(bomb);
  assert.equal(control.code, 2, control.stderr);
  assert.match(control.stderr, /alias/i);
  assert.match(control.stderr, /bad\.yaml/);
  assert.doesNotMatch(control.stderr, NO_STACK);
  assert.doesNotMatch(control.stderr, /internal error/);
  const dir = tempDir();
  try {
    writeFileSync(join(dir.path, 'bomb.yaml'), bomb);
    const analyze = await runPalisade(['analyze', '-f', join(dir.path, 'bomb.yaml')]);
    // analyze reports it as a finding (its own exit convention), not a crash.
    assert.notEqual(analyze.code, 0);
    assert.match(analyze.stdout + analyze.stderr, /bomb\.yaml: document 1: Excessive alias count/);
    assert.doesNotMatch(analyze.stdout + analyze.stderr, NO_STACK);
  } finally {
    dir.cleanup();
  }
});

test('invalid UTF-8 in a host is refused with the file, object and field', async () => {
  const text = Buffer.concat([
    Buffer.from(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: foo }
spec:
  hosts: ["api.ex`),
    Buffer.from([0xff, 0xfe]),
    Buffer.from(`ample.com"]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
`),
  ]);
  const r = await controlOn(text);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.yaml:5: invalid UTF-8 in ServiceEntry foo\/ext: spec\.hosts\[0\]/);
  assert.doesNotMatch(r.stderr, /\uFFFD/);
  assert.doesNotMatch(r.stderr, NO_STACK);
});

test("objects over Kubernetes' size bounds are refused: 1.5 MiB, 256 KiB of annotations", async () => {
  const annotations = await controlOn(`apiVersion: v1
kind: Service
metadata:
  name: big
  namespace: foo
  annotations: { note: "${'x'.repeat(300 * 1024)}" }
spec: { selector: { app: big }, ports: [{ name: http, port: 80 }] }
`);
  assert.equal(annotations.code, 2, annotations.stderr.slice(0, 2000));
  assert.match(
    annotations.stderr,
    /Service foo\/big: metadata\.annotations: total \d+ bytes; may be at most 262144/,
  );
  const object = await controlOn(`apiVersion: v1
kind: ConfigMap
metadata: { name: huge, namespace: foo }
data: { blob: "${'y'.repeat(1600 * 1024)}" }
`);
  assert.equal(object.code, 2, object.stderr.slice(0, 2000));
  assert.match(
    object.stderr,
    /ConfigMap foo\/huge: \(object\): is \d+ bytes; an object may be at most 1572864 bytes/,
  );
  assert.doesNotMatch(object.stderr, NO_STACK);
});
