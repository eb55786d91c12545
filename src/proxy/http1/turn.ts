/**
 * A read's turn, and the writes it causes: held to the end of the read, or —
 * while the event loop is busy — to the end of the loop's pass.
 *
 * A response's head, body and end usually arrive in one upstream read, and a
 * local reply is made while a downstream read is handled. The read callbacks
 * of both sides (the server's connections, the client pool's) run inside
 * {@link enterTurn} / {@link leaveTurn}; the writes they make are held per
 * socket ({@link HeldWrites}) and released when the turn ends, so a small
 * response is one write (one TLS record, one syscall).
 *
 * When the loop is busy — a read starts within {@link BUSY_GAP_MS} of the last
 * one's end, so reads are queued behind each other — the releases wait for the
 * end of the loop's pass instead: every I/O callback of the poll phase runs,
 * then (one `setImmediate`, the check phase) each socket written to gets its
 * bytes, one buffer per socket, and a response ended in such a turn is not
 * flushed at its end. A peer is then woken once for all this proxy had for it:
 * with each write made as its read ended, the next process of the chain woke
 * for one request, ran it and slept again while this one went on with the
 * next (a Palisade pair made as many context switches per second as the faster
 * http1 fixture pair, so more per request: 1.15 against 0.65, bench/README.md).
 * Envoy defers its writes the same way. An idle loop writes at once: waiting
 * for the pass would put the rest of the callback (the access log, metrics)
 * before the bytes, for nothing to join them with.
 *
 * Releases deferred outside a read (a timer, a promise) run on the next tick, or with the
 * pass's release when one is pending. Whatever ends a socket or hands it over flushes what it
 * holds first; a socket holds at most {@link JOIN_LIMIT} bytes, past that its writes go out at once.
 */
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A read that starts within this long (ms) of the last one's end finds the loop busy: it was
 * queued, or the process did not sleep between them (an idle loop waits ~1 ms and more between
 * reads at 500 requests/s; a loaded one runs them back to back: ~82 % of reads under the
 * proxy-chain bench's load start within it).
 */
export const BUSY_GAP_MS = 0.05;

let depth = 0;
let lastEnd = Number.NEGATIVE_INFINITY;
let busy = false;
let always = false;

/**
 * `always`: every read's writes wait for the end of the pass, busy or not (tests use it to go
 * down that path on demand); `adaptive` (the default, what the proxy runs): only a busy loop's.
 */
export function setPassHolding(mode: 'adaptive' | 'always'): void {
  always = mode === 'always';
}

/**
 * Releases deferred: slots `0 … count - 1`. The array is reused, never shrunk
 * (`pending.length = 0` is a runtime call, ~0.4 % of each proxy's CPU in a profile); a slot
 * run is reset so nothing it closes over is kept alive.
 */
const pending: (() => void)[] = [];
let count = 0;
/** The releases will run: a `setImmediate` (a busy loop's pass ends) or, outside a turn, a tick. */
let scheduled = false;
let releasing = false;
const ran = (): void => undefined;

/**
 * Runs the releases, in order, each once, even when one before it throws (its error is
 * rethrown after the rest ran). A release that defers again, or a turn entered and left by
 * one, adds to this loop (`count` is read each time).
 */
function releaseAll(): void {
  scheduled = false;
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

function schedule(): void {
  scheduled = true;
  setImmediate(releaseAll);
}

/** A read callback starts. */
export function enterTurn(): void {
  if (depth === 0) busy = always || performance.now() - lastEnd < BUSY_GAP_MS;
  depth += 1;
}

/** A read callback ends: the outermost one releases (or, when the loop is busy, schedules). */
export function leaveTurn(): void {
  depth -= 1;
  if (depth !== 0) return;
  lastEnd = performance.now();
  if (count === 0 || releasing || scheduled) return;
  if (busy) schedule();
  else releaseAll();
}

/** Whether the current read's writes wait for the end of the loop's pass (see above). */
export function holdingForPass(): boolean {
  return depth > 0 && busy;
}

/** Runs `release` when the current read's turn ends (see above), or on the next tick outside one. */
export function deferUntilTurnEnds(release: () => void): void {
  if (count < pending.length) pending[count++] = release;
  else {
    pending.push(release);
    count += 1;
  }
  if (depth > 0 || releasing || scheduled) return;
  // Outside a turn: the next tick, one for all deferred until then.
  scheduled = true;
  process.nextTick(releaseAll);
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
 * A socket's writes, held to the end of the turn and written as one buffer: everything a
 * socket gets in one turn is one `write` — one TLS record, one syscall — without node's cork,
 * whose buffered-write objects, `writev` array and (on TLS) copy cost more than joining a few
 * hundred bytes here. Never more than {@link JOIN_LIMIT} bytes are held. Every write of the
 * socket goes through it (or follows a {@link flush}), so nothing overtakes what it holds.
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

  /** Holds writes until the turn ends (see {@link deferUntilTurnEnds}). */
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
      // Held, but the writer still learns that the socket is backed up (a write of an earlier
      // turn returned false and 'drain' has not come): it waits for 'drain' instead of adding
      // a turn's bytes at a time to a client that reads nothing.
      return !this.#socket.writableNeedDrain;
    }
    // Too much to join: what is held, then `buf`, in one writev.
    this.#socket.cork();
    this.flush();
    const ok = this.#socket.write(buf);
    this.#socket.uncork();
    return ok;
  }

  /** Writes what is held, as one buffer (before the socket ends or changes hands, or at the turn's end). */
  flush(): boolean {
    const pieces = this.#pieces;
    if (pieces.length === 0) return true;
    const out = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, this.#bytes);
    this.#pieces = [];
    this.#bytes = 0;
    return this.#socket.destroyed ? false : this.#socket.write(out);
  }
}
