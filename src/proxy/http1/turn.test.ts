// A read's turn (turn.ts): what is deferred inside one runs when the outermost
// read callback returns, in order and once; outside one it runs on the next
// tick; a release that defers again goes to the next tick. And the
// `readingMore` flag is found on node's sockets and set by the data listener.
// Held writes (HeldWrites): a response's pieces in one write per turn.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import {
  deferUntilTurnEnds,
  enterTurn,
  HeldWrites,
  JOIN_LIMIT,
  leaveTurn,
  readMoreFlag,
  skipReadMoreTick,
} from './turn.js';

test('inside a turn, deferred work runs when the outermost turn ends, in order', async () => {
  const ran: string[] = [];
  enterTurn();
  deferUntilTurnEnds(() => ran.push('a'));
  enterTurn();
  deferUntilTurnEnds(() => ran.push('b'));
  leaveTurn();
  assert.deepEqual([...ran], [], 'an inner turn ending runs nothing');
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b']);
  // Nothing runs twice, and a release that defers again does so to the next tick.
  enterTurn();
  deferUntilTurnEnds(() => {
    ran.push('c');
    deferUntilTurnEnds(() => ran.push('d'));
  });
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b', 'c']);
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.deepEqual(ran, ['a', 'b', 'c', 'd']);
});

test('a turn entered by a release adds to the same release loop; slots are reused', () => {
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
  enterTurn();
  deferUntilTurnEnds(() => ran.push('c'));
  leaveTurn();
  assert.deepEqual(ran, ['a', 'b', 'inner', 'c']);
});

test('outside a turn, deferred work runs on the next tick', async () => {
  const ran: string[] = [];
  deferUntilTurnEnds(() => ran.push('x'));
  assert.deepEqual([...ran], []);
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.deepEqual(ran, ['x']);
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
  enterTurn();
  out.hold();
  out.write(Buffer.from('head|'));
  out.write(Buffer.from('body|'));
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
  // The response ended: flushed now, not at the turn's end.
  out.flush();
  assert.equal(r.writes.at(-1), 'tail');
  leaveTurn();
  assert.equal(r.writes.length, 5, 'nothing written twice');
  // Outside a turn, held until the next tick; a destroyed socket gets nothing.
  out.hold();
  out.write(Buffer.from('late'));
  r.socket.destroy();
  await new Promise((resolve) => {
    process.nextTick(resolve);
  });
  assert.equal(r.writes.length, 5);
});

test('a release that throws does not keep the others from running, nor runs again', () => {
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
  assert.deepEqual([...ran], ['second'], 'nothing left over for the next turn');
});
