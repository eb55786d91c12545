import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { StoreError, type StoreEvent } from './types.js';
import { HISTORY, WatchCache } from './watch-cache.js';

const ev = (revision: number, key: string): StoreEvent => ({
  type: 'ADDED',
  key,
  object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: key } },
  revision,
});

function harness() {
  const shared: {
    after: number;
    emit: (e: readonly StoreEvent[]) => void;
    fail: (e: StoreError) => void;
    cancelled: boolean;
  }[] = [];
  const own: { prefix: string; after: number }[] = [];
  const cache = new WatchCache(
    (after, emit, fail) => {
      const s = { after, emit, fail, cancelled: false };
      shared.push(s);
      return {
        cancel: () => {
          s.cancelled = true;
        },
      };
    },
    (prefix, after) => {
      own.push({ prefix, after });
      return { cancel: () => undefined };
    },
  );
  return { cache, shared, own };
}

test('watch cache: one shared source for many watchers, filtered by prefix and revision', () => {
  const { cache, shared, own } = harness();
  const a: number[] = [];
  const b: string[] = [];
  cache.watch('/registry/core/configmaps/', 10, (e) => a.push(e.revision));
  cache.watch('/registry/core/pods/', 10, (e) => b.push(e.key));
  assert.equal(shared.length, 1);
  const src = shared[0];
  assert.ok(src !== undefined);
  assert.equal(src.after, 10);
  src.emit([
    ev(11, '/registry/core/configmaps/x'),
    ev(12, '/registry/core/pods/p'),
    ev(13, '/registry/core/configmaps/y'),
  ]);
  assert.deepEqual(a, [11, 13]);
  assert.deepEqual(b, ['/registry/core/pods/p']);
  // A later watcher inside the window replays what it missed, then goes live.
  const c: number[] = [];
  cache.watch('/registry/core/configmaps/', 11, (e) => c.push(e.revision));
  assert.deepEqual(c, [13]);
  src.emit([ev(14, '/registry/core/configmaps/z')]);
  assert.deepEqual(c, [13, 14]);
  // One starting before the window gets a watch of its own.
  cache.watch('/registry/core/configmaps/', 5, () => undefined);
  assert.deepEqual(own, [{ prefix: '/registry/core/configmaps/', after: 5 }]);
  assert.equal(shared.length, 1);
});

test('watch cache: the window slides after HISTORY events; a failure ends every watcher and resets', () => {
  const { cache, shared, own } = harness();
  cache.watch('/k/', 0, () => undefined);
  shared[0]?.emit(Array.from({ length: HISTORY + 5 }, (_, i) => ev(i + 1, `/k/${String(i)}`)));
  cache.watch('/k/', 4, () => undefined);
  assert.equal(own.length, 1, 'revision 5 has left the window');
  const replay: number[] = [];
  cache.watch('/k/', 5, (e) => replay.push(e.revision));
  assert.equal(replay.length, HISTORY);
  const errors: string[] = [];
  cache.watch(
    '/k/',
    HISTORY + 5,
    () => undefined,
    (e) => errors.push(e.reason),
  );
  shared[0]?.fail(new StoreError('Unavailable', '', 'etcd: gone away'));
  assert.deepEqual(errors, ['Unavailable']);
  assert.equal(shared[0]?.cancelled, true);
  cache.watch('/k/', 100, () => undefined);
  assert.equal(shared.length, 2, 'the next watch starts a new shared source');
  assert.equal(shared[1]?.after, 100);
});
