// A read's turn (turn.ts): what is deferred inside one runs when the outermost
// read callback returns, in order and once; outside one it runs on the next
// tick; a release that defers again goes to the next tick. And the
// `readingMore` flag is found on node's sockets and set by the data listener.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import {
  deferUntilTurnEnds,
  enterTurn,
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
