/**
 * A read's turn: the writes a read causes, held until the read is handled.
 *
 * A response's head, body and end usually arrive in one upstream read, and a
 * local reply is made while a downstream read is handled. The server holds a
 * connection's writes when it starts a response ({@link HeldWrites}); the
 * read callbacks of both sides run inside {@link enterTurn} /
 * {@link leaveTurn}, which release them on the way out
 * ({@link deferUntilTurnEnds}), so the response is one write (one TLS
 * record, one syscall). Writes held outside a turn (a timer, a promise) are
 * released on the next tick, as node:http uncorks.
 *
 * Releasing at the turn's end rather than with `process.nextTick` saves a tick
 * per response: node 20 builds each tick's object with computed keys, a
 * runtime call (~1 % of each proxy's CPU in a profile).
 */
import type * as net from 'node:net';

let depth = 0;
/**
 * Releases deferred to the end of the current turn: slots `0 … count - 1`. The array is
 * reused, never shrunk (`pending.length = 0` is a runtime call, ~0.4 % of each proxy's CPU
 * in a profile); a slot run is reset so nothing it closes over is kept alive.
 */
const pending: (() => void)[] = [];
let count = 0;
let releasing = false;
const ran = (): void => undefined;

/** A read callback starts. */
export function enterTurn(): void {
  depth += 1;
}

/** A read callback ends: the outermost one runs what was deferred to it, in order. */
export function leaveTurn(): void {
  depth -= 1;
  if (depth !== 0 || count === 0 || releasing) return;
  // Releases run outside any turn: what they defer goes to the next tick. Each runs once,
  // even when one before it throws (its error is rethrown after the rest ran). A turn
  // entered and left by a release adds its own to this loop (`count` is read each time).
  let failure: unknown;
  let failed = false;
  releasing = true;
  for (let k = 0; k < count; k += 1) {
    const release = pending[k] as () => void;
    pending[k] = ran;
    try {
      release();
    } catch (error) {
      if (!failed) failure = error;
      failed = true;
    }
  }
  count = 0;
  releasing = false;
  if (failed) throw failure;
}

/** Runs `release` when the current read's turn ends, or on the next tick outside one. */
export function deferUntilTurnEnds(release: () => void): void {
  if (depth === 0) process.nextTick(release);
  else if (count < pending.length) pending[count++] = release;
  else {
    pending.push(release);
    count += 1;
  }
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

/** Held bytes past this are written at once (a large body is not copied to join its head). */
export const JOIN_LIMIT = 16 * 1024;

/**
 * A socket's writes, held from a response's head to the end of the read's turn (or the
 * response's end) and written as one buffer: the head, the body and the last chunk of a
 * small response are one `write` — one TLS record, one syscall — without node's cork, whose
 * buffered-write objects, `writev` array and (on TLS) copy cost more than joining a few
 * hundred bytes here. Never more than {@link JOIN_LIMIT} bytes are held.
 */
export class HeldWrites {
  readonly #socket: net.Socket;
  #pieces: Buffer[] = [];
  #bytes = 0;
  #holding = false;
  readonly #release = (): void => {
    this.#holding = false;
    this.flush();
  };

  constructor(socket: net.Socket) {
    this.#socket = socket;
  }

  /** Holds writes until the current read's turn ends (see {@link deferUntilTurnEnds}). */
  hold(): void {
    if (this.#holding) return;
    this.#holding = true;
    deferUntilTurnEnds(this.#release);
  }

  /** Writes or holds `buf`; false when the socket asks the writer to wait for 'drain'. */
  write(buf: Buffer): boolean {
    if (!this.#holding) return this.#socket.write(buf);
    if (this.#bytes + buf.length <= JOIN_LIMIT) {
      this.#pieces.push(buf);
      this.#bytes += buf.length;
      return true;
    }
    // Too much to join: what is held, then `buf`, in one writev.
    this.#socket.cork();
    this.flush();
    const ok = this.#socket.write(buf);
    this.#socket.uncork();
    return ok;
  }

  /** Writes what is held, as one buffer (before the socket ends, or at the turn's end). */
  flush(): boolean {
    const pieces = this.#pieces;
    if (pieces.length === 0) return true;
    const out = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, this.#bytes);
    this.#pieces = [];
    this.#bytes = 0;
    return this.#socket.destroyed ? false : this.#socket.write(out);
  }
}
