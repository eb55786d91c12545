// `palisade apply` / `delete` report what the data plane did (issue 16): per
// proxy ACKed or NACKed with the proxy's reason, exit 1 when any proxy
// rejected the change or the control plane does not answer (a stale
// mesh.json is not trusted), and the analyzers' new findings with their codes
// (Istio returns validation warnings on apply and `istioctl analyze` names
// IST0101 ReferencedResourceNotFound; `--strict` refuses like a failing
// analyze). A real control plane and a real sidecar (loopback 127.31.0.0/16).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { debugAccessAt } from '../../src/cli/commands/debug-access.js';
import { callDebug, type SyncStatusReply } from '../../src/control/index.js';
import { runPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec:
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: productpage, namespace: default }
spec: { serviceAccount: productpage, labels: { app: productpage }, command: node, ports: [{ name: http, port: 9080 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: ratings, namespace: default }
spec: { serviceAccount: ratings, labels: { app: ratings }, command: node, ports: [{ name: http, port: 9080 }] }
`;

/**
 * Config the API accepts and the proxy refuses: a Maglev table size that is
 * not prime (Istio does not validate it; Envoy, and Palisade's proxy, NACK
 * the cluster). (A path template too large for the regex bound was the
 * fixture before; the API now refuses that itself — test/security/
 * control-regex-bounds.test.ts.)
 */
const NON_PRIME_MAGLEV = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings-maglev, namespace: default }
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 1000 } } }
`;

const TO_RATINGS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  http: [{ timeout: 5s, route: [{ destination: { host: ratings } }] }]
`;

const TO_NOWHERE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  http: [{ route: [{ destination: { host: ratingz } }] }]
`;

test('apply reports every proxy ACK, a NACK with the proxy and its reason, and refuses when the mesh is gone', async (t) => {
  const dirs = await meshDirs(t);
  // One object per file, named as \`apply\` names them, so applying one again configures it.
  for (const doc of SERVICE.split('---\n')) {
    const kind = /kind: (\w+)/.exec(doc)?.[1]?.toLowerCase() ?? '';
    const name = /name: ([\w-]+)/.exec(doc)?.[1] ?? '';
    writeFileSync(join(dirs.configDir, `${kind}.default.${name}.yaml`), doc);
  }
  const control = await startControlPlane(dirs.configDir, dirs.caDir);
  t.after(() => control.stop());
  const sidecar = await startSidecar(control, {
    namespace: 'default',
    name: 'productpage',
    instanceIp: '127.31.1.1',
    appIp: '127.31.1.2',
    dir: dirs.path,
  });
  t.after(() => sidecar.stop());
  // The sidecar is ready once it has its config; wait until the control plane lists it.
  await waitFor(
    async () =>
      (
        await callDebug<SyncStatusReply>(
          control.xds,
          'SyncStatus',
          {},
          debugAccessAt(control.stateDir, control.stateDir, false),
        )
      ).proxies.length === 1,
    30_000,
    100,
  );
  const state = join(dirs.path, 'state');
  mkdirSync(state);
  writeFileSync(
    join(state, 'mesh.json'),
    JSON.stringify({
      name: 'test',
      configDir: dirs.configDir,
      control: control.xds,
      stateDir: control.stateDir,
    }),
  );
  const file = (name: string, text: string): string => {
    const path = join(dirs.path, name);
    writeFileSync(path, text);
    return path;
  };
  const apply = (path: string, ...extra: string[]) =>
    runPalisade(['apply', '-f', path, '--state-dir', state, ...extra]);

  // Accepted: every proxy ACKs, exit 0.
  const good = await apply(file('good.yaml', TO_RATINGS));
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^VirtualService default\/ratings created$/m);
  assert.match(good.stdout, /^ {2}ACKed {3}productpage-0\.default$/m);
  assert.match(good.stdout, /every proxy ACKed the change \(1\)/);

  // Rejected by the proxy: the NACK names the proxy and its reason, exit 1.
  const bad = await apply(file('bad.yaml', NON_PRIME_MAGLEV));
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /^DestinationRule default\/ratings-maglev created$/m);
  assert.match(bad.stdout, /^ {2}NACKed {2}productpage-0\.default: .*table_size/m, bad.stderr);
  assert.match(bad.stderr, /1 of 1 proxies did not take the change/);

  // Deleting it brings the proxy back in sync; the old NACK is not reported again.
  const undo = await runPalisade([
    'delete',
    '-f',
    join(dirs.path, 'bad.yaml'),
    '--state-dir',
    state,
  ]);
  assert.equal(undo.code, 0, undo.stdout + undo.stderr);
  assert.match(undo.stdout, /^DestinationRule default\/ratings-maglev deleted$/m);
  assert.match(undo.stdout, /^ {2}ACKed {3}productpage-0\.default$/m);

  // A route to a host that does not exist: applied, with the analyzer's warning and code.
  const typo = file('typo.yaml', TO_NOWHERE);
  const strict = await apply(typo, '--strict');
  assert.equal(strict.code, 1, strict.stdout + strict.stderr);
  assert.match(
    strict.stderr,
    /refused \(--strict\): palisade analyze finds 1 new problem[^\n]*\n {2}Error \[PAL0101\] \(VirtualService default\/ratings\) Referenced host not found: "ratingz"\nnothing applied/,
  );
  assert.equal(
    readFileSync(join(dirs.configDir, 'virtualservice.default.ratings.yaml'), 'utf8').includes(
      'ratingz',
    ),
    false,
  );
  const warned = await apply(typo);
  assert.equal(warned.code, 0, warned.stdout + warned.stderr);
  assert.match(
    warned.stderr,
    /warning: palisade analyze finds 1 new problem[^\n]*\n {2}Error \[PAL0101\] \(VirtualService default\/ratings\) Referenced host not found: "ratingz"/,
  );
  assert.match(warned.stdout, /^VirtualService default\/ratings configured$/m);

  // The mesh stops; its mesh.json stays behind. Nothing is written, exit 1.
  await sidecar.stop();
  await control.stop();
  const stale = await apply(file('after.yaml', TO_RATINGS.replace('5s', '6s')));
  assert.equal(stale.code, 1, stale.stdout + stale.stderr);
  assert.match(
    stale.stderr,
    /no mesh is running \(the control plane at 127\.0\.0\.1:\d+, named in .*mesh\.json, does not answer: connection refused\): start it with npm start/,
  );
  assert.equal(stale.stdout, '');
});
