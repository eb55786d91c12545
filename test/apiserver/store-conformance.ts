/**
 * One conformance suite for every API server store backend (STYLE.md §8):
 * the storage.Interface contract kube-apiserver relies on — revisions,
 * optimistic concurrency, ordered watch with resume, and 410 Gone.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { StoreError, type ObjectStore, type StoreEvent } from '../../src/apiserver/index.js';

export interface StoreFactory {
  /** A fresh, empty store. */
  open(): Promise<ObjectStore>;
  /** Makes the store's history so far unwatchable (compaction) and returns a revision that is now too old. */
  tooOldRevision(store: ObjectStore): Promise<number>;
}

const obj = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'default' },
  ...extra,
});

function reason(e: unknown): string | undefined {
  return e instanceof StoreError ? e.reason : undefined;
}

/** Collects watch events until `n` have arrived. */
function collect(store: ObjectStore, prefix: string, after: number, n: number) {
  const events: StoreEvent[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const w = store.watch(prefix, after, (e) => {
    events.push(e);
    if (events.length === n) done();
  });
  if (n === 0) done();
  return {
    events,
    finished,
    cancel: () => {
      w.cancel();
    },
  };
}

export function storeConformance(name: string, factory: StoreFactory): void {
  test(`${name}: create, get, revisions and resourceVersion`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    const r0 = await store.currentRevision();
    const a = await store.create('/registry/core/configmaps/default/a', obj('a'));
    assert.ok(a.revision > r0);
    assert.equal(a.object.metadata?.resourceVersion, String(a.revision));
    const got = await store.get('/registry/core/configmaps/default/a');
    assert.equal(got?.revision, a.revision);
    assert.equal(got.object.metadata?.name, 'a');
    assert.equal(await store.get('/registry/core/configmaps/default/missing'), undefined);
    await assert.rejects(
      store.create('/registry/core/configmaps/default/a', obj('a')),
      (e) => reason(e) === 'AlreadyExists',
    );
    const b = await store.create('/registry/core/configmaps/default/b', obj('b'));
    assert.ok(b.revision > a.revision, 'one global, increasing revision');
  });

  test(`${name}: update with a stale revision is a Conflict and changes nothing`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    const key = '/registry/core/configmaps/default/c';
    const c = await store.create(key, obj('c', { data: { v: '1' } }));
    const u = await store.update(key, obj('c', { data: { v: '2' } }), c.revision);
    assert.ok(u.revision > c.revision);
    await assert.rejects(
      store.update(key, obj('c', { data: { v: '3' } }), c.revision),
      (e) => reason(e) === 'Conflict',
    );
    assert.deepEqual((await store.get(key))?.object.data, { v: '2' });
    await assert.rejects(
      store.update('/registry/core/configmaps/default/none', obj('none')),
      (e) => reason(e) === 'NotFound',
    );
    await assert.rejects(store.delete(key, c.revision), (e) => reason(e) === 'Conflict');
    const d = await store.delete(key, u.revision);
    assert.deepEqual(d.object.data, { v: '2' });
    assert.equal(await store.get(key), undefined);
    await assert.rejects(store.delete(key), (e) => reason(e) === 'NotFound');
  });

  test(`${name}: concurrent conditional updates — exactly one wins`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    const key = '/registry/core/configmaps/default/race';
    const c = await store.create(key, obj('race'));
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        store.update(key, obj('race', { data: { i: String(i) } }), c.revision),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results)
      if (r.status === 'rejected') assert.equal(reason(r.reason), 'Conflict');
  });

  test(`${name}: list by prefix is sorted and consistent at a revision`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    await store.create('/registry/core/configmaps/ns2/z', obj('z'));
    await store.create('/registry/core/configmaps/ns1/y', obj('y'));
    await store.create('/registry/core/secrets/ns1/s', obj('s'));
    const last = await store.create('/registry/core/configmaps/ns1/x', obj('x'));
    const all = await store.list('/registry/core/configmaps/');
    assert.deepEqual(
      all.items.map((i) => i.key),
      [
        '/registry/core/configmaps/ns1/x',
        '/registry/core/configmaps/ns1/y',
        '/registry/core/configmaps/ns2/z',
      ],
    );
    assert.ok(all.revision >= last.revision);
    const ns1 = await store.list('/registry/core/configmaps/ns1/');
    assert.equal(ns1.items.length, 2);
  });

  test(`${name}: watch delivers ordered events after a revision and resumes`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    const start = await store.currentRevision();
    const key = '/registry/core/configmaps/w/a';
    const w1 = collect(store, '/registry/core/configmaps/w/', start, 3);
    const a = await store.create(key, obj('a'));
    await store.create('/registry/core/secrets/w/ignored', obj('ignored'));
    const u = await store.update(key, obj('a', { data: { k: 'v' } }), a.revision);
    const d = await store.delete(key);
    await w1.finished;
    w1.cancel();
    assert.deepEqual(
      w1.events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
    );
    assert.deepEqual(
      w1.events.map((e) => e.revision),
      [a.revision, u.revision, d.revision],
    );
    assert.equal(w1.events[2]?.object.metadata?.resourceVersion, String(d.revision));
    // Resume after the first event: the rest, in order.
    const w2 = collect(store, '/registry/core/configmaps/w/', a.revision, 2);
    await w2.finished;
    w2.cancel();
    assert.deepEqual(
      w2.events.map((e) => e.type),
      ['MODIFIED', 'DELETED'],
    );
  });

  test(`${name}: watch from a compacted revision is Gone`, async (t) => {
    const store = await factory.open();
    t.after(() => store.close());
    await store.create('/registry/core/configmaps/g/a', obj('a'));
    await store.create('/registry/core/configmaps/g/b', obj('b'));
    const old = await factory.tooOldRevision(store);
    const err = await new Promise<unknown>((resolve) => {
      try {
        store.watch('/registry/', old, () => undefined, resolve);
      } catch (e) {
        resolve(e);
      }
    });
    assert.equal(reason(err), 'Gone');
  });
}
