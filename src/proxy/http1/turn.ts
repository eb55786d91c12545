/**
 * The loop's turn: the writes the HTTP/1.1 transport makes while the event
 * loop runs its I/O callbacks, held until all of them have run and written
 * then, one buffer per socket.
 *
 * A turn is one pass of libuv's poll phase: every read that was ready is
 * handled (requests parsed, routed, answered; responses relayed), and only
 * then, in the check phase that follows (one `setImmediate` per turn, not per
 * request), does each socket that was written to get its bytes. A response's
 * head, body and end are one write (one TLS record, one syscall), and so are
 * the responses of pipelined requests and a request head with its body. More
 * than that, a peer is woken once for everything this proxy had for it: with
 * each write made at once, the next process in the chain woke up for one
 * request, ran it and slept again while this one went on with the next (the
 * same pair made as many context switches per second as a faster one, so
 * more per request: 1.15 against 0.65 for the http1 fixture pair, bench/README.md).
 * Envoy defers its writes the same way (a write activates the connection's
 * write event, run after the current callbacks).
 *
 * Until the release, a socket holds at most {@link JOIN_LIMIT} bytes; past that its writes go
 * out at once. Whatever ends a socket or hands it over flushes what it holds first.
 */
import type * as net from 'node:net';

/**
 * Releases deferred to the end of the turn: slots `0 … count - 1`. The array is reused,
 * never shrunk (`pending.length = 0` is a runtime call, ~0.4 % of each proxy's CPU in a
 * profile); a slot run is reset so nothing it closes over is kept alive.
 */
const pending: (() => void)[] = [];
let count = 0;
let scheduled = false;
let releasing = false;
const ran = (): void => undefined;

/**
 * Runs the turn's releases, in order, each once, even when one before it throws (its error is
 * rethrown after the rest ran). A release that defers again adds to this loop (`count` is read
 * each time).
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

/** Runs `release` once the current turn's I/O callbacks have all run (the check phase). */
export function deferUntilTurnEnds(release: () => void): void {
  if (count < pending.length) pending[count++] = release;
  else {
    pending.push(release);
    count += 1;
  }
  if (!scheduled && !releasing) {
    scheduled = true;
    setImmediate(releaseAll);
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
      return true;
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
