/**
 * The embedded store: the shared conformance suite, in memory and on disk,
 * plus what only a durable log must show — writes survive a restart, a torn
 * last record is dropped, mid-file corruption refuses to open, compaction
 * keeps every object, a second process cannot open the same directory.
 */
import { strict as assert } from 'node:assert';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openEmbeddedStore, type ObjectStore } from '../../src/apiserver/index.js';
import { tempDir } from '../helpers/index.js';
import { storeConformance } from './store-conformance.js';

const cm = (name: string, v: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data: { v },
});

// A history of 100 events: a revision 200 writes back is no longer watchable.
async function pushOutHistory(store: ObjectStore): Promise<number> {
  const first = await store.currentRevision();
  for (let i = 0; i < 110; i++)
    await store.create(`/registry/core/configmaps/filler/f${i}`, cm(`f${i}`, 'x'));
  return first;
}

storeConformance('embedded (memory)', {
  open: () => openEmbeddedStore({ historyLimit: 100 }),
  tooOldRevision: pushOutHistory,
});

storeConformance('embedded (disk)', {
  open: async () => {
    const dir = tempDir('palisade-store-');
    const store = await openEmbeddedStore({ dir: dir.path, historyLimit: 100 });
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        dir.cleanup();
      },
    });
  },
  tooOldRevision: pushOutHistory,
});

test('embedded store: acknowledged writes survive a restart, with their revisions', async (t) => {
  const dir = tempDir('palisade-store-');
  t.after(dir.cleanup);
  const s1 = await openEmbeddedStore({ dir: dir.path });
  const writes = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      s1.create(`/registry/core/configmaps/d/n${i}`, cm(`n${i}`, String(i))),
    ),
  );
  await s1.update('/registry/core/configmaps/d/n0', cm('n0', 'updated'));
  await s1.delete('/registry/core/configmaps/d/n1');
  const rev = await s1.currentRevision();
  await s1.close();
  const s2 = await openEmbeddedStore({ dir: dir.path });
  t.after(() => s2.close());
  assert.equal(await s2.currentRevision(), rev);
  const list = await s2.list('/registry/core/configmaps/d/');
  assert.equal(list.items.length, 49);
  assert.deepEqual((await s2.get('/registry/core/configmaps/d/n0'))?.object.data, { v: 'updated' });
  assert.equal((await s2.get('/registry/core/configmaps/d/n7'))?.revision, writes[7]?.revision);
  // A watch from before the restart cannot be served from memory: 410 Gone.
  assert.throws(() => s2.watch('/registry/', 1, () => undefined), /too old resource version/);
  const next = await s2.create('/registry/core/configmaps/d/after', cm('after', 'x'));
  assert.ok(next.revision > rev);
});

test('embedded store: a torn last record is dropped; corruption elsewhere refuses to open', async (t) => {
  const dir = tempDir('palisade-store-');
  t.after(dir.cleanup);
  const s1 = await openEmbeddedStore({ dir: dir.path });
  await s1.create('/registry/core/configmaps/d/a', cm('a', '1'));
  await s1.close();
  const log = join(dir.path, 'store.log');
  appendFileSync(log, '{"r":2,"k":"/registry/core/configmaps/d/b","v":{"metad');
  const s2 = await openEmbeddedStore({ dir: dir.path });
  assert.equal((await s2.list('/registry/')).items.length, 1);
  await s2.create('/registry/core/configmaps/d/c', cm('c', '3'));
  await s2.close();
  const s3 = await openEmbeddedStore({ dir: dir.path });
  assert.deepEqual(
    (await s3.list('/registry/')).items.map((i) => i.key),
    ['/registry/core/configmaps/d/a', '/registry/core/configmaps/d/c'],
  );
  await s3.close();
  const lines = readFileSync(log, 'utf8').split('\n');
  lines[0] = 'garbage';
  writeFileSync(log, lines.join('\n'));
  await assert.rejects(openEmbeddedStore({ dir: dir.path }), /store\.log:1: corrupt store record/);
});

test('embedded store: compaction keeps every live object and the revision', async (t) => {
  const dir = tempDir('palisade-store-');
  t.after(dir.cleanup);
  const s1 = await openEmbeddedStore({ dir: dir.path, compactAfter: 20 });
  for (let i = 0; i < 60; i++) {
    const key = `/registry/core/configmaps/d/k${i % 5}`;
    if ((await s1.get(key)) === undefined) await s1.create(key, cm(`k${i % 5}`, String(i)));
    else await s1.update(key, cm(`k${i % 5}`, String(i)));
  }
  await s1.delete('/registry/core/configmaps/d/k4');
  const rev = await s1.currentRevision();
  await s1.close();
  const records = readFileSync(join(dir.path, 'store.log'), 'utf8').trim().split('\n').length;
  assert.ok(records < 40, `log compacted (${records} records)`);
  const s2 = await openEmbeddedStore({ dir: dir.path });
  t.after(() => s2.close());
  assert.equal(await s2.currentRevision(), rev);
  const items = (await s2.list('/registry/')).items;
  assert.deepEqual(
    items.map((i) => i.object.data),
    [{ v: '55' }, { v: '56' }, { v: '57' }, { v: '58' }],
  );
});

test('embedded store: a second server cannot open a directory in use', async (t) => {
  const dir = tempDir('palisade-store-');
  t.after(dir.cleanup);
  // A live process other than this one owns the lock (our parent: alive for the whole test).
  writeFileSync(join(dir.path, 'store.lock'), String(process.ppid));
  await assert.rejects(openEmbeddedStore({ dir: dir.path }), /the store is in use by process/);
  // A stale lock (dead PID) is taken over.
  writeFileSync(join(dir.path, 'store.lock'), '999999999');
  const s = await openEmbeddedStore({ dir: dir.path });
  await s.close();
});
