// A read's turn (turn.ts): what is deferred inside one runs when the
// outermost read callback returns — or, when the loop is busy (a read right
// after another), once the loop's pass has run (one setImmediate) — in order
// and once; outside one it runs on the next tick; a release that defers again
// joins the same loop; one that throws does not keep the others from running.
// The `readingMore` flag is found on node's sockets and set by the data
// listener. Held writes (HeldWrites): a socket's writes of a turn in one write.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BUSY_GAP_MS,
  deferUntilTurnEnds,
  enterTurn,
  HeldWrites,
  holdingForPass,
  JOIN_LIMIT,
  leaveTurn,
  readMoreFlag,
  setPassHolding,
  skipReadMoreTick,
} from './turn.js';

/** Lets the loop go idle: the next read is not busy. */
const idle = (): Promise<void> => sleep(Math.ceil(BUSY_GAP_MS * 20));

/** Resolves in the check phase after the current one: the turn's releases have run. */
const turnEnded = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

test('an idle read: deferred work runs when the outermost turn ends, in order, once', async () => {
  await idle();
  const ran: string[] = [];
  enterTurn();
  assert.equal(holdingForPass(), false, 'an idle loop writes as its reads end');
  deferUntilTurnEnds(() => ran.push('a'));
  enterTurn();
  deferUntilTurnEnds(() => {
    ran.push('b');
    // A release that defers again (a write that makes a socket hold) joins the same loop.
    deferUntilTurnEnds(() => ran.push('inner'));
  });
  leaveTurn();
  assert.deepEqual([...ran], [], 'an inner turn ending runs nothing');
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b', 'inner']);
});

test('a busy loop: a read right after another holds its releases to the end of the pass', async () => {
  await idle();
  const ran: string[] = [];
  enterTurn();
  leaveTurn();
  // The next read follows at once: the loop is busy.
  enterTurn();
  assert.equal(holdingForPass(), true);
  deferUntilTurnEnds(() => ran.push('a'));
  leaveTurn();
  enterTurn();
  deferUntilTurnEnds(() => ran.push('b'));
  leaveTurn();
  assert.equal(holdingForPass(), false, 'outside a read nothing is held for the pass');
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.deepEqual([...ran], [], 'not on the next tick: at the end of the pass');
  await turnEnded();
  assert.deepEqual(ran, ['a', 'b'], 'both reads of the pass, in order');
  // `always` holds even an idle read's; `adaptive` goes back to the gap.
  setPassHolding('always');
  try {
    await idle();
    enterTurn();
    assert.equal(holdingForPass(), true);
    leaveTurn();
  } finally {
    setPassHolding('adaptive');
  }
  await idle();
  enterTurn();
  assert.equal(holdingForPass(), false);
  leaveTurn();
});

test('a turn entered by a release adds to the same release loop; slots are reused', async () => {
  await idle();
  const ran: string[] = [];
  enterTurn();
  deferUntilTurnEnds(() => {
    ran.push('a');
    // A read handled inside a release (a write that makes a socket read at once).
    enterTurn();
    deferUntilTurnEnds(() => ran.push('inner'));
    leaveTurn();
    assert.deepEqual([...ran], ['a'], 'the inner turn ending does not run the outer releases');
  });
  deferUntilTurnEnds(() => ran.push('b'));
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b', 'inner'], 'each once, in the order deferred');
  // The next turn reuses the slots: only its own releases run.
  await idle();
  enterTurn();
  deferUntilTurnEnds(() => ran.push('c'));
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b', 'inner', 'c']);
});

test('outside a turn, deferred work runs on the next tick', async () => {
  const ran: string[] = [];
  deferUntilTurnEnds(() => ran.push('x'));
  deferUntilTurnEnds(() => ran.push('y'));
  assert.deepEqual([...ran], []);
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.deepEqual(ran, ['x', 'y']);
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
  await idle();
  enterTurn();
  out.hold();
  out.write(Buffer.from('head|'));
  out.write(Buffer.from('body|'));
  // A second hold in the same turn (the next pipelined response) joins the first.
  out.hold();
  out.write(Buffer.from('end'));
  assert.equal(r.writes.length, 1, 'held until the turn ends');
  leaveTurn();
  assert.deepEqual([...r.writes], ['direct', 'head|body|end']);
  // More than JOIN_LIMIT: what is held, then the large buffer, corked together, in order.
  enterTurn();
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
  leaveTurn();
  await turnEnded();
  assert.equal(r.writes.length, 5, 'nothing written twice');
  // Outside a turn, held until the next tick; a destroyed socket gets nothing.
  out.hold();
  out.write(Buffer.from('late'));
  r.socket.destroy();
  await turnEnded();
  assert.equal(r.writes.length, 5);
});

test('a release that throws does not keep the others from running, nor runs again', async () => {
  await idle();
  const ran: string[] = [];
  enterTurn();
  deferUntilTurnEnds(() => {
    throw new Error('first');
  });
  deferUntilTurnEnds(() => {
    ran.push('second');
  });
  assert.throws(() => {
    leaveTurn();
  }, /first/);
  assert.deepEqual([...ran], ['second']);
  enterTurn();
  leaveTurn();
  await turnEnded();
  assert.deepEqual([...ran], ['second'], 'nothing left over for the next turn');
});
