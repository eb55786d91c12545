/**
 * A read's turn: the writes a read causes, corked until the read is handled.
 *
 * A response's head, body and end usually arrive in one upstream read, and a
 * local reply is made while a downstream read is handled. The server corks a
 * connection when it starts a response ({@link deferUntilTurnEnds}); the
 * read callbacks of both sides run inside {@link enterTurn} /
 * {@link leaveTurn}, which uncork on the way out, so the response is one
 * write (one TLS record, one syscall). A cork made outside a turn (a timer,
 * an HTTP/2 stream) is released on the next tick, as node:http does.
 *
 * Releasing at the turn's end rather than with `process.nextTick` saves a tick
 * per response: node 20 builds each tick's object with computed keys, a
 * runtime call (~1 % of each proxy's CPU in a profile).
 */
let depth = 0;
const pending: (() => void)[] = [];

/** A read callback starts. */
export function enterTurn(): void {
  depth += 1;
}

/** A read callback ends: the outermost one runs what was deferred to it, in order. */
export function leaveTurn(): void {
  depth -= 1;
  if (depth !== 0 || pending.length === 0) return;
  // Releases run outside any turn: what they defer goes to the next tick.
  for (let k = 0; k < pending.length; k += 1) (pending[k] as () => void)();
  pending.length = 0;
}

/** Runs `release` when the current read's turn ends, or on the next tick outside one. */
export function deferUntilTurnEnds(release: () => void): void {
  if (depth > 0) pending.push(release);
  else process.nextTick(release);
}

/** The flag of a socket's readable state that {@link skipReadMoreTick} sets. */
export interface ReadMoreFlag {
  readingMore: boolean;
}

/**
 * The readable state of `socket` when it has node's `readingMore` flag, else undefined (a
 * stream of another kind, or a Node without the flag: nothing is skipped then).
 */
export function readMoreFlag(socket: object): ReadMoreFlag | undefined {
  const state = (socket as { _readableState?: Partial<ReadMoreFlag> })._readableState;
  return state !== undefined && typeof state.readingMore === 'boolean'
    ? (state as ReadMoreFlag)
    : undefined;
}

/**
 * Called from a socket's `data` listener: keeps node's Readable from scheduling its
 * `maybeReadMore` tick after the chunk. That tick calls `read(0)` until the buffer reaches the
 * high-water mark; a socket in flowing mode emits each chunk as it arrives and its handle
 * reads whether or not `read` is called, so the tick finds nothing to do (~2.5 % of each
 * proxy's CPU in a profile: a tick object, the loop, a `read(0)`). The flag is what the tick
 * sets while it is pending. Backpressure does not use it: `pause()` stops the events, a full
 * buffer stops the handle's reads (`push` returns false), `resume()` reads again (`read` →
 * `_read`): test/proxy/http1-transport.test.ts streams 4 MiB through a body consumer that
 * pauses after every piece.
 */
export function skipReadMoreTick(flag: ReadMoreFlag | undefined): void {
  if (flag !== undefined) flag.readingMore = true;
}
