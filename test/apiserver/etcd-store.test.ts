/**
 * The etcd store against real etcd (Debian's etcd-server, /usr/bin/etcd):
 * the same conformance suite as the embedded store, on one member; then a
 * 3-member cluster on loopback with one member killed mid-run — every write
 * the store acknowledged is still there, with its value.
 *
 * Loopback 127.38.1.0/24 (this area's range).
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { openEtcdStore, StoreError, type ObjectStore } from '../../src/apiserver/index.js';
import { runProcess, spawnPalisade, tempDir, waitFor } from '../helpers/index.js';
import { etcdBin, members, startCluster, stopCluster, type Member } from './etcd-cluster.js';
import { storeConformance } from './store-conformance.js';

if (etcdBin !== undefined) {
  const dir = tempDir('palisade-etcd-');
  let single: Member[] = [];
  const ready = (async () => {
    single = await members(['127.38.1.1']);
    await startCluster(single, dir.path);
    return single[0]?.client ?? '';
  })();
  test.after(() => {
    stopCluster(single);
    dir.cleanup();
  });
  test('palisade apiserver --store etcd: kubectl create/get/watch, 409, state in etcd across restarts', async (t) => {
    const kubectlBin = spawnSync('sh', ['-c', 'command -v kubectl'], {
      encoding: 'utf8',
    }).stdout.trim();
    if (kubectlBin === '') {
      if (process.env.CI === 'true') throw new Error('kubectl is required in CI');
      t.skip('no kubectl');
      return;
    }
    const endpoint = await ready;
    const d = tempDir('palisade-apiserver-etcd-');
    t.after(d.cleanup);
    const start = () =>
      spawnPalisade(
        [
          'apiserver',
          '--data-dir',
          d.path,
          '--listen',
          '127.38.1.1:0',
          '--store',
          'etcd',
          '--etcd-endpoints',
          endpoint,
        ],
        {
          ready: /API server ready: (https:\/\/\S+)/,
          timeoutMs: 30_000,
        },
      );
    let server = await start();
    t.after(() => server.stop());
    const kubectl = (args: string[], input?: string) =>
      runProcess(kubectlBin, ['--kubeconfig', join(d.path, 'admin.kubeconfig'), ...args], {
        ...(input === undefined ? {} : { input }),
        env: { ...process.env, HOME: d.path },
      });
    assert.equal((await kubectl(['create', 'namespace', 'etcd-app'])).code, 0);
    const watch = spawn(
      kubectlBin,
      [
        '--kubeconfig',
        join(d.path, 'admin.kubeconfig'),
        '-n',
        'etcd-app',
        'get',
        'cm',
        '-w',
        '--output-watch-events',
      ],
      {
        env: { ...process.env, HOME: d.path },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    watch.stdout.on('data', (c: Buffer) => (out += c.toString()));
    t.after(() => watch.kill());
    // Created before or after kubectl's initial list, it shows as ADDED either way.
    assert.equal(
      (await kubectl(['-n', 'etcd-app', 'create', 'configmap', 'cfg', '--from-literal=a=1'])).code,
      0,
    );
    const current = (await kubectl(['-n', 'etcd-app', 'get', 'cm', 'cfg', '-o', 'json'])).stdout;
    const results = await Promise.all([
      kubectl(['replace', '-f', '-'], current.replace('"1"', '"2"')),
      kubectl(['replace', '-f', '-'], current.replace('"1"', '"3"')),
    ]);
    assert.equal(results.filter((r) => r.code === 0).length, 1);
    assert.match(
      results.map((r) => r.stderr).join(''),
      /Operation cannot be fulfilled on configmaps "cfg": the object has been modified/,
    );
    await waitFor(() => /MODIFIED\s+cfg/.test(out), 15_000);
    assert.match(out, /ADDED\s+cfg/);
    await server.stop();
    server = await start();
    const after = await kubectl(['-n', 'etcd-app', 'get', 'cm', 'cfg', '-o', 'jsonpath={.data.a}']);
    assert.match(after.stdout, /^[23]$/);
  });

  storeConformance('etcd', {
    open: async () => openEtcdStore({ endpoints: [await ready], prefix: `/t-${randomUUID()}` }),
    tooOldRevision: async (store) => {
      const rev = await store.currentRevision();
      const client = new Etcd3({ hosts: [await ready] });
      try {
        await client.kv.compact({ revision: String(rev), physical: true });
      } finally {
        client.close();
      }
      return rev - 2;
    },
  });
}

test(
  'etcd store: a 3-member cluster loses no acknowledged write when a member is killed',
  { skip: etcdBin === undefined },
  async (t) => {
    const dir = tempDir('palisade-etcd3-');
    const list = await members(['127.38.1.11', '127.38.1.12', '127.38.1.13']);
    t.after(() => {
      stopCluster(list);
      dir.cleanup();
    });
    await startCluster(list, dir.path);
    const store: ObjectStore = await openEtcdStore({ endpoints: list.map((m) => m.client) });
    t.after(() => store.close());
    const acknowledged = new Map<string, string>();
    let unavailable = 0;
    let ambiguous = 0;
    // A write refused while the cluster elects a new leader is retried (bounded), as a client would;
    // AlreadyExists on a retry means an earlier attempt landed without its answer reaching us.
    const write = async (i: number): Promise<void> => {
      const key = `/registry/core/configmaps/ha/k${i}`;
      for (let attempt = 0; attempt < 150; attempt++) {
        try {
          await store.create(key, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `k${i}` },
            data: { i: String(i) },
          });
          acknowledged.set(key, String(i));
          return;
        } catch (e) {
          assert.ok(e instanceof StoreError, String(e));
          if (e.reason === 'AlreadyExists' && attempt > 0) {
            ambiguous++;
            return;
          }
          assert.equal(e.reason, 'Unavailable', e.message);
          unavailable++;
          await new Promise((r) => setTimeout(r, 200)); // up to 30 s: an election on a loaded machine
        }
      }
      assert.fail(`write ${key} never succeeded after the member was killed`);
    };
    const TOTAL = 300;
    for (let i = 0; i < TOTAL; i += 10) {
      if (i === 100) list[2]?.child?.kill('SIGKILL'); // mid-run, with writes in flight
      await Promise.all(Array.from({ length: 10 }, (_, j) => write(i + j)));
    }
    t.diagnostic(
      `${acknowledged.size} acknowledged, ${ambiguous} ambiguous, ${unavailable} retried refusals`,
    );
    assert.equal(acknowledged.size + ambiguous, TOTAL);
    const { items } = await store.list('/registry/core/configmaps/ha/');
    const stored = new Map(items.map((it) => [it.key, (it.object.data as { i: string }).i]));
    for (const [key, value] of acknowledged)
      assert.equal(stored.get(key), value, `acknowledged write ${key} is there`);
  },
);
