/**
 * One upstream connection of the HTTP/1.1 client pool (client.ts): writes one
 * request at a time, reads its response (1xx, length, chunked with trailers,
 * close-delimited), flow control both ways, and tells the pool when it is idle,
 * gone, or needs a request retried on a fresh connection.
 */
import type * as net from 'node:net';
import { PalisadeError } from '../../errors/index.js';
import { CRLF, ChunkedDecoder, chunkHeader, lastChunk } from './chunked.js';
import type { ClientRequest, Connector, RequestBody, ResponseHandler } from './client-types.js';
import { findHeadEnd, isFailure } from './head-parser.js';
import { MIN_READ_ROOM, readRegion } from './read-regions.js';
import { parseResponseHead } from './response-head.js';
import { enterTurn, HeldWrites, leaveTurn } from './turn.js';
import type { HeaderList, Http1Limits, ResponseHead } from './types.js';

/** What a connection needs of its pool (Http1Pool implements it). */
export interface PoolHost {
  /** The pool's coarse clock (ms), updated by its timeout sweep. */
  readonly now: number;
  connectionReady(c: PoolConnection): void;
  connectionGone(c: PoolConnection): void;
  retry(p: Pending): void;
  dropPending(b: PendingBody): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface Pending {
  readonly req: ClientRequest;
  readonly handler: ResponseHandler;
  readonly body: PendingBody;
  retried: boolean;
}

/** Body bytes written before a connection was assigned, and the caller's drain callback. */
export class PendingBody implements RequestBody {
  conn: PoolConnection | undefined;
  queued: Buffer[] = [];
  ended = false;
  trailers: HeaderList | undefined;
  drain: (() => void) | undefined;
  aborted = false;
  constructor(
    readonly pool: PoolHost,
    readonly framing: ClientRequest['body'],
  ) {}
  write(chunk: Buffer): boolean {
    if (this.conn !== undefined) return this.conn.writeBody(chunk);
    this.queued.push(chunk);
    return false;
  }
  end(trailers?: HeaderList): void {
    if (this.conn !== undefined) this.conn.endBody(trailers);
    else {
      this.ended = true;
      this.trailers = trailers;
    }
  }
  onDrain(cb: () => void): void {
    this.drain = cb;
  }
  resume(): void {
    this.conn?.resumeRead();
  }
  /**
   * Cancels the request: a connection still serving it is closed (its framing is in doubt); one
   * that finished it and went back to the pool serves others and is left alone.
   */
  abort(): void {
    this.aborted = true;
    if (this.conn?.serving(this) === true) this.conn.socket.destroy();
    this.pool.dropPending(this);
  }
}

const enum Read {
  Head,
  Length,
  Chunked,
  Close,
}

/** One upstream connection. */
export class PoolConnection {
  readonly socket: net.Socket;
  /** Every write of the socket, held to the turn's end (turn.ts). */
  readonly #out: HeldWrites;
  readonly #pool: PoolHost;
  readonly #limits: Http1Limits;
  #current: Pending | undefined;
  #buf: Buffer | undefined;
  #scanned = 0;
  #read = Read.Head;
  #remaining = 0;
  #chunked: ChunkedDecoder | undefined;
  #response: ResponseHead | undefined;
  /** Requests this connection has served (0: fresh, never stale). */
  served = 0;
  #gotBytes = false;
  #requestDone = false;
  #paused = false;
  connected = false;
  /** The socket's last error, if any. */
  lastError: Error | undefined;
  /** Coarse-clock time the request was written (0: none waiting for a head) / idle since. */
  waitingSince = 0;
  idleSince = 0;

  /** Whether this connection is still serving the request of `body`. */
  serving(body: PendingBody): boolean {
    return this.#current?.body === body;
  }

  /** Where the socket's next read lands (with `onread`). */
  #readInto: Buffer = readRegion();

  constructor(pool: PoolHost, connect: Connector, limits: Http1Limits) {
    this.#pool = pool;
    this.#limits = limits;
    const socket = connect({
      buffer: () => this.#readInto,
      // Node asks for the next buffer after this returns: the rest of the region, or a new one.
      callback: (n: number, buf: Uint8Array): boolean => {
        const into = this.#readInto;
        this.#readInto = into.length - n >= MIN_READ_ROOM ? into.subarray(n) : readRegion();
        this.#onRead(buf === into ? into.subarray(0, n) : Buffer.from(buf.subarray(0, n)));
        return true;
      },
    });
    this.socket = socket;
    this.#out = new HeldWrites(socket);
    socket.setNoDelay(true);
    const ready = (): void => {
      this.connected = true;
      this.#pool.connectionReady(this);
    };
    if ('encrypted' in socket) socket.once('secureConnect', ready);
    else socket.once('connect', ready);
    socket.on('data', (chunk: Buffer) => {
      this.#onRead(chunk);
    });
    socket.on('drain', () => {
      const cb = this.#current?.body.drain;
      if (cb !== undefined && this.#current !== undefined) this.#current.body.drain = undefined;
      cb?.();
    });
    socket.on('error', (error) => {
      // 'close' follows; the error is the failure's cause (a TLS secure-naming refusal is
      // recognised by its code there, and never retried).
      this.lastError = error;
    });
    socket.on('end', () => {
      if (this.#read === Read.Close) this.#finish([]);
    });
    socket.on('close', () => {
      this.#closed();
    });
  }

  /** A read's bytes, handled in a turn (turn.ts): the responses they complete go out after. */
  #onRead(chunk: Buffer): void {
    enterTurn();
    try {
      this.#onData(chunk);
    } finally {
      leaveTurn();
    }
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  assign(p: Pending): void {
    this.#current = p;
    this.#gotBytes = false;
    this.#requestDone = false;
    this.#read = Read.Head;
    p.body.conn = this;
    // Held to the turn's end with the rest of its writes (turn.ts).
    this.#out.hold();
    this.#out.write(p.req.head);
    if (p.req.body === 'none') this.#requestDone = true;
    else {
      const queued = p.body.queued;
      p.body.queued = [];
      for (const c of queued) this.writeBody(c);
      if (p.body.ended) this.endBody(p.body.trailers);
    }
    this.waitingSince = this.#pool.now;
    if (p.req.body !== 'none' && !p.body.ended) p.body.drain?.();
  }

  writeBody(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    this.#out.hold();
    if (this.#current?.req.body === 'chunked') {
      this.#out.write(chunkHeader(chunk.length));
      this.#out.write(chunk);
      return this.#out.write(CRLF);
    }
    return this.#out.write(chunk);
  }

  endBody(trailers?: HeaderList): void {
    if (this.#current?.req.body === 'chunked') {
      this.#out.hold();
      this.#out.write(lastChunk(trailers));
    }
    this.#requestDone = true;
  }

  resumeRead(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
    const buf = this.#buf;
    this.#buf = undefined;
    if (buf !== undefined) this.#onData(buf);
  }

  #onData(chunk: Buffer): void {
    const p = this.#current;
    if (p === undefined) {
      // Bytes with no request in flight: the upstream is not speaking HTTP/1.1 to us.
      this.socket.destroy();
      return;
    }
    this.#gotBytes = true;
    const buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#buf = undefined;
    let at = 0;
    while (at < buf.length && this.#current === p) {
      if (this.#read === Read.Head) {
        const view = at === 0 ? buf : buf.subarray(at);
        const end = findHeadEnd(view, this.#scanned - 3);
        if (end === -2) {
          this.#fail('PAL_ERR_HTTP1_BAD_RESPONSE', 'bare LF in a response head');
          return;
        }
        if (end === -1) {
          if (view.length > this.#limits.maxHeadBytes) {
            this.#fail('PAL_ERR_HTTP1_BAD_RESPONSE', 'response head too large');
            return;
          }
          this.#scanned = view.length;
          this.#buf = view;
          return;
        }
        this.#scanned = 0;
        const head = parseResponseHead(view.subarray(0, end), p.req.method, this.#limits);
        if (isFailure(head)) {
          this.#fail('PAL_ERR_HTTP1_BAD_RESPONSE', `response refused: ${head.reason}`);
          return;
        }
        at += end;
        if (head.status < 200) {
          // 101 would hand the connection over: not asked for by this client.
          if (head.status === 101) {
            this.#fail('PAL_ERR_HTTP1_BAD_RESPONSE', 'unexpected 101');
            return;
          }
          p.handler.onInformational?.(head);
          continue;
        }
        this.waitingSince = 0;
        this.#response = head;
        p.handler.onResponse(head);
        const f = head.framing;
        if (f.kind === 'none') {
          this.#finish([]);
          continue;
        }
        if (f.kind === 'length') {
          this.#read = Read.Length;
          this.#remaining = f.length;
        } else if (f.kind === 'chunked') {
          this.#read = Read.Chunked;
          this.#chunked = new ChunkedDecoder((c) => {
            this.#deliver(c);
          }, this.#limits);
        } else this.#read = Read.Close;
        continue;
      }
      if (this.#read === Read.Length) {
        const take = Math.min(this.#remaining, buf.length - at);
        this.#remaining -= take;
        this.#deliver(buf.subarray(at, at + take));
        at += take;
        if (this.#remaining === 0) this.#finish([]);
      } else if (this.#read === Read.Chunked && this.#chunked !== undefined) {
        const r = this.#chunked.push(buf, at);
        if (isFailure(r)) {
          this.#fail('PAL_ERR_HTTP1_BAD_RESPONSE', `response body refused: ${r.reason}`);
          return;
        }
        at = r;
        if (this.#chunked.done) this.#finish(this.#chunked.trailers);
      } else {
        this.#deliver(at === 0 ? buf : buf.subarray(at));
        at = buf.length;
      }
      if (this.#paused && at < buf.length) {
        this.#buf = buf.subarray(at);
        return;
      }
    }
    // Bytes after a complete response with no request: a desync; the connection is not reused.
    if (at < buf.length && this.#current !== p) this.socket.destroy();
  }

  #deliver(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#current?.handler.onData(chunk) === false && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  #finish(trailers: HeaderList): void {
    const p = this.#current;
    const res = this.#response;
    if (p === undefined || res === undefined) return;
    this.#chunked = undefined;
    this.#read = Read.Head;
    // Back to the pool before the caller hears of the end, so a request it sends from `onEnd`
    // (the next pipelined one downstream) reuses this connection. Reused only once the request
    // was written whole (an early response ends the connection) and the response allows it.
    if (res.keepAlive && this.#requestDone) this.#release();
    else {
      this.#current = undefined;
      this.socket.destroy();
    }
    p.handler.onEnd(trailers);
  }

  #release(): void {
    this.#current = undefined;
    this.#response = undefined;
    this.served += 1;
    this.idleSince = this.#pool.now;
    this.waitingSince = 0;
    this.#pool.connectionReady(this);
  }

  #fail(
    code: 'PAL_ERR_HTTP1_BAD_RESPONSE' | 'PAL_ERR_HTTP1_UPSTREAM_TIMEOUT',
    message: string,
  ): void {
    const p = this.#current;
    this.#current = undefined;
    this.socket.destroy();
    p?.handler.onError(new PalisadeError(code, message));
  }

  timeout(): void {
    this.#fail('PAL_ERR_HTTP1_UPSTREAM_TIMEOUT', 'no response head within the response timeout');
  }

  #closed(): void {
    const p = this.#current;
    this.#current = undefined;
    this.#pool.connectionGone(this);
    if (p === undefined) return;
    if (this.#read === Read.Close && this.#response !== undefined) {
      // A close-delimited body ends when the connection does (RFC 9112 §6.3), by FIN or by a
      // reset: an upstream that refuses a request it did not read whole (a 431 to a huge head)
      // answers and resets. Without this, the response never ended.
      p.handler.onEnd([]);
      return;
    }
    // Stale keep-alive connection: reused, closed before any response byte, request replayable.
    if (
      this.served > 0 &&
      !this.#gotBytes &&
      !p.retried &&
      p.req.body === 'none' &&
      IDEMPOTENT.has(p.req.method)
    ) {
      p.retried = true;
      this.#pool.retry(p);
      return;
    }
    p.handler.onError(
      new PalisadeError(
        'PAL_ERR_HTTP1_UPSTREAM_RESET',
        this.connected
          ? 'upstream connection closed before the response ended'
          : 'upstream connection failed',
        this.lastError === undefined ? {} : { cause: this.lastError },
      ),
    );
  }
}
