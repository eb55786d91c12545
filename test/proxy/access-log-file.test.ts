// `palisade proxy --access-log-file` takes Istio's meshConfig.accessLogFile
// values: a file receives the JSON lines (appended, the last ones written
// before the process exits on SIGTERM), "" turns access logs off, and a path
// that cannot be opened stops the proxy with the reason.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
} from './ads-server.js';

const API = clusterName('api');

test('access-log lines go to the file named, none with "", and an unopenable path is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-alog-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const app = await startUpstream('api');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  feed(
    ads,
    outboundResources(
      [{ name: API, endpoints: [{ port: app.port }] }],
      [virtualHost('api', [{ match: { prefix: '/' }, route: { cluster: API } }])],
    ),
    'v1',
  );
  const reach = async (proxy: { via: readonly string[] }, path: string): Promise<void> => {
    await waitFor(
      async () => (await curl([...proxy.via, `http://api${path}`])).status === 200,
      20_000,
    );
  };

  const file = join(dir, 'access.log');
  writeFileSync(file, 'earlier line\n');
  const toFile = await startProxyProcess(ads.port, ['--access-log-file', file]);
  await reach(toFile, '/one');
  assert.equal((await curl([...toFile.via, 'http://api/two'])).status, 200);
  assert.equal(await toFile.stop(), 0);
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], 'earlier line', 'the file is appended to');
  const entries = lines
    .slice(1)
    .map((l) => JSON.parse(l) as { path: string; response_code: number });
  // The proxy may have answered /one before it had the route (404) while waitFor retried.
  assert.deepEqual(
    entries.filter((e) => e.response_code === 200).map((e) => e.path),
    ['/one', '/two'],
  );
  assert.deepEqual(toFile.accessLog(), [], 'nothing on stdout');

  const off = await startProxyProcess(ads.port, ['--access-log-file', '']);
  await reach(off, '/three');
  assert.equal(await off.stop(), 0);
  assert.deepEqual(off.accessLog(), []);
  assert.doesNotMatch(off.output(), /"\/three"/);

  const refused = await runPalisade([
    'proxy',
    '--xds',
    `127.0.0.1:${String(ads.port)}`,
    '--xds-insecure',
    '--node-id',
    'sidecar~127.0.0.1~a-1.ns~ns.svc.cluster.local',
    '--access-log-file',
    join(dir, 'missing-dir', 'access.log'),
  ]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /--access-log-file: cannot open .*missing-dir\/access\.log: ENOENT/);
});
