// The loop's turn (turn.ts): what is deferred runs once the turn's callbacks
// have run (one setImmediate), in order and once; a release that defers again
// adds to the same loop; one that throws does not keep the others from
// running. And the `readingMore` flag is found on node's sockets and set by
// the data listener. Held writes (HeldWrites): a socket's writes of a turn in
// one write.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import {
  deferUntilTurnEnds,
  HeldWrites,
  JOIN_LIMIT,
  readMoreFlag,
  skipReadMoreTick,
} from './turn.js';

/** Resolves in the check phase after the current one: the turn's releases have run. */
const turnEnded = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

test('deferred work runs once the turn has run, in order, once; a release may defer again', async () => {
  const ran: string[] = [];
  deferUntilTurnEnds(() => ran.push('a'));
  deferUntilTurnEnds(() => {
    ran.push('b');
    // A release that defers again (a write that makes a socket hold) joins the same loop.
    deferUntilTurnEnds(() => ran.push('inner'));
  });
  await Promise.resolve();
  process.nextTick(() => ran.push('tick'));
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.deepEqual([...ran], ['tick'], 'ticks and promises of the turn come first');
  await turnEnded();
  assert.deepEqual([...ran], ['tick', 'a', 'b', 'inner']);
  // The next turn reuses the slots: only its own releases run.
  deferUntilTurnEnds(() => ran.push('c'));
  await turnEnded();
  assert.deepEqual(ran, ['tick', 'a', 'b', 'inner', 'c']);
});

test("a socket's readingMore flag is found and set; other objects are left alone", () => {
  const socket = new net.Socket();
  const flag = readMoreFlag(socket);
  assert.ok(flag !== undefined, "node's Readable has the flag");
  assert.equal(flag.readingMore, false);
  skipReadMoreTick(flag);
  assert.equal(flag.readingMore, true);
  assert.equal(readMoreFlag({}), undefined);
  assert.equal(readMoreFlag({ _readableState: {} }), undefined);
  skipReadMoreTick(undefined);
  socket.destroy();
});

/** A socket that records its writes and corks. */
function recorder(): { socket: net.Socket; writes: string[]; corks: number } {
  const state = { writes: [] as string[], corks: 0, destroyed: false };
  const socket = {
    get destroyed() {
      return state.destroyed;
    },
    write(buf: Buffer) {
      state.writes.push(buf.toString('latin1'));
      return true;
    },
    cork() {
      state.corks += 1;
    },
    uncork() {
      /* counted by cork */
    },
    destroy() {
      state.destroyed = true;
    },
  } as unknown as net.Socket;
  return {
    socket,
    writes: state.writes,
    get corks() {
      return state.corks;
    },
  };
}

test('held writes: one write per turn, in order; a large write is not joined; flush ends holding', async () => {
  const r = recorder();
  const out = new HeldWrites(r.socket);
  assert.equal(out.write(Buffer.from('direct')), true);
  assert.deepEqual([...r.writes], ['direct'], 'not holding: written at once');
  out.hold();
  out.write(Buffer.from('head|'));
  out.write(Buffer.from('body|'));
  // A second hold in the same turn (the next pipelined response) joins the first.
  out.hold();
  out.write(Buffer.from('end'));
  await Promise.resolve();
  assert.equal(r.writes.length, 1, 'held until the turn ends');
  await turnEnded();
  assert.deepEqual([...r.writes], ['direct', 'head|body|end']);
  // More than JOIN_LIMIT: what is held, then the large buffer, corked together, in order.
  out.hold();
  out.write(Buffer.from('h|'));
  const big = Buffer.alloc(JOIN_LIMIT, 0x62);
  out.write(big);
  assert.deepEqual(r.writes.slice(2), ['h|', big.toString('latin1')]);
  assert.equal(r.corks, 1);
  out.write(Buffer.from('tail'));
  // The socket ends or changes hands: flushed now, not at the turn's end.
  out.flush();
  assert.equal(r.writes.at(-1), 'tail');
  await turnEnded();
  assert.equal(r.writes.length, 5, 'nothing written twice');
  // A socket destroyed before the turn ends gets nothing.
  out.hold();
  out.write(Buffer.from('late'));
  r.socket.destroy();
  await turnEnded();
  assert.equal(r.writes.length, 5);
});

test('a release that throws does not keep the others from running, nor runs again', (t) => {
  // The releases run from setImmediate; the test runs that callback itself to see it throw.
  const scheduled: (() => void)[] = [];
  const capture = (defer: () => void): void => {
    t.mock.method(globalThis, 'setImmediate', (fn: () => void) => {
      scheduled.push(fn);
    });
    try {
      defer();
    } finally {
      t.mock.restoreAll();
    }
  };
  const ran: string[] = [];
  capture(() => {
    deferUntilTurnEnds(() => {
      throw new Error('first');
    });
    deferUntilTurnEnds(() => {
      ran.push('second');
    });
  });
  assert.equal(scheduled.length, 1, 'one release per turn');
  assert.throws(scheduled[0] ?? ((): void => undefined), /first/);
  assert.deepEqual([...ran], ['second']);
  // Nothing is left over: the next turn schedules afresh and runs only its own.
  capture(() => {
    deferUntilTurnEnds(() => ran.push('third'));
  });
  assert.equal(scheduled.length, 2, 'a new turn schedules again');
  scheduled[1]?.();
  assert.deepEqual([...ran], ['second', 'third'], 'each ran once');
});
