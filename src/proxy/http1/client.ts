/**
 * An HTTP/1.1 client: one keep-alive connection pool per upstream origin on
 * node:net / node:tls sockets, one request in flight per connection (no
 * pipelining upstream, as Envoy and undici's default). It gives what undici
 * gave: a connection and pending-request limit (the numbers a circuit breaker
 * reads), an idle-connection timeout, an upstream-response timeout (request
 * written → response head), backpressure both ways, chunked request and
 * response bodies with trailers, 1xx responses, close-delimited responses, and
 * one retry on a fresh connection for a request that never reached the
 * upstream because the reused keep-alive connection it was written to was
 * already closed (RFC 9112 §9.3.1: a client MAY retry a request whose
 * connection closed before any response, when it is idempotent or known not
 * to have been processed; undici and Envoy's `reset-before-request` do the
 * same).
 */
import type * as net from 'node:net';
import { PalisadeError } from '../../errors/index.js';
import { CRLF, ChunkedDecoder, chunkHeader, lastChunk } from './chunked.js';
import { findHeadEnd, isFailure, parseResponseHead } from './head-parser.js';
import { DEFAULT_LIMITS, type HeaderList, type Http1Limits, type ResponseHead } from './types.js';

/** How the pool opens a connection (a plain or TLS socket; it is used once connected). */
export type Connector = () => net.Socket;

export interface Http1PoolOptions {
  readonly connect: Connector;
  /** Connections open at most (Envoy's `max_connections` breaker; default 64). */
  readonly maxConnections?: number;
  /** Requests waiting for a connection at most (Envoy's `max_pending_requests`; default 1024). */
  readonly maxPending?: number;
  /** An idle connection is closed after this long (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** Request written → response head, at most (default 15 s, Envoy's route timeout). */
  readonly responseTimeoutMs?: number;
  readonly limits?: Partial<Http1Limits>;
  /** How often timeouts are checked (default 1 s; their resolution). */
  readonly checkIntervalMs?: number;
}

/** What the caller hands the pool: the request's bytes and how its body follows. */
export interface ClientRequest {
  readonly method: string;
  /** The serialised head, and for a body sent whole, the body (see serializeHead `body`). */
  readonly head: Buffer;
  /**
   * `none`: the head buffer holds everything (replayable, so retried when a reused connection
   * turns out stale). `stream`: body bytes follow through the returned {@link RequestBody}
   * (`chunked` frames them; `length` writes them as given).
   */
  readonly body: 'none' | 'length' | 'chunked';
}

/** Receives the response. */
export interface ResponseHandler {
  onInformational?(head: ResponseHead): void;
  onResponse(head: ResponseHead): void;
  /** Returns false to pause reading until `resume()` of the returned {@link RequestBody}. */
  onData(chunk: Buffer): boolean | undefined;
  onEnd(trailers: HeaderList): void;
  onError(err: PalisadeError): void;
}

/** The request side of one exchange: body writing and flow control. */
export interface RequestBody {
  write(chunk: Buffer): boolean;
  end(trailers?: HeaderList): void;
  onDrain(cb: () => void): void;
  /** Resumes reading the response after `onData` returned false. */
  resume(): void;
  /** Gives up on the exchange (the connection is closed). */
  abort(): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

interface Pending {
  readonly req: ClientRequest;
  readonly handler: ResponseHandler;
  readonly body: PendingBody;
  retried: boolean;
}

/** Body bytes written before a connection was assigned, and the caller's drain callback. */
class PendingBody implements RequestBody {
  conn: PoolConnection | undefined;
  queued: Buffer[] = [];
  ended = false;
  trailers: HeaderList | undefined;
  drain: (() => void) | undefined;
  aborted = false;
  constructor(
    readonly pool: Http1Pool,
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
  abort(): void {
    this.aborted = true;
    this.conn?.socket.destroy();
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
class PoolConnection {
  readonly socket: net.Socket;
  readonly #pool: Http1Pool;
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
  /** Coarse-clock time the request was written (0: none waiting for a head) / idle since. */
  waitingSince = 0;
  idleSince = 0;

  constructor(pool: Http1Pool, socket: net.Socket, limits: Http1Limits) {
    this.#pool = pool;
    this.#limits = limits;
    this.socket = socket;
    socket.setNoDelay(true);
    const ready = (): void => {
      this.connected = true;
      this.#pool.connectionReady(this);
    };
    if ('encrypted' in socket) socket.once('secureConnect', ready);
    else socket.once('connect', ready);
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('drain', () => {
      const cb = this.#current?.body.drain;
      if (cb !== undefined && this.#current !== undefined) this.#current.body.drain = undefined;
      cb?.();
    });
    socket.on('error', () => {
      /* 'close' follows */
    });
    socket.on('end', () => {
      if (this.#read === Read.Close) this.#finish([]);
    });
    socket.on('close', () => {
      this.#closed();
    });
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
    this.socket.cork();
    this.socket.write(p.req.head);
    if (p.req.body === 'none') this.#requestDone = true;
    else {
      const queued = p.body.queued;
      p.body.queued = [];
      for (const c of queued) this.writeBody(c);
      if (p.body.ended) this.endBody(p.body.trailers);
    }
    this.socket.uncork();
    this.waitingSince = this.#pool.now;
    if (p.req.body !== 'none' && !p.body.ended) p.body.drain?.();
  }

  writeBody(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    if (this.#current?.req.body === 'chunked') {
      this.socket.cork();
      this.socket.write(chunkHeader(chunk.length));
      this.socket.write(chunk);
      const ok = this.socket.write(CRLF);
      this.socket.uncork();
      return ok;
    }
    return this.socket.write(chunk);
  }

  endBody(trailers?: HeaderList): void {
    if (this.#current?.req.body === 'chunked') this.socket.write(lastChunk(trailers));
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
    if (this.#read === Read.Close && this.#response !== undefined) return; // ended by 'end'
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
      ),
    );
  }
}

/** A keep-alive connection pool for one upstream. */
export class Http1Pool {
  readonly #connect: Connector;
  readonly #maxConnections: number;
  readonly #maxPending: number;
  readonly #idleTimeoutMs: number;
  readonly #responseTimeoutMs: number;
  readonly #limits: Http1Limits;
  readonly #all = new Set<PoolConnection>();
  /** Idle connected connections, most recently used last (reused first: LIFO keeps few warm). */
  readonly #idle: PoolConnection[] = [];
  readonly #pending: Pending[] = [];
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** Coarse clock for the timeouts (advanced by the check interval). */
  now = Date.now();

  constructor(options: Http1PoolOptions) {
    this.#connect = options.connect;
    this.#maxConnections = options.maxConnections ?? 64;
    this.#maxPending = options.maxPending ?? 1024;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#responseTimeoutMs = options.responseTimeoutMs ?? 15_000;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#timer = setInterval(() => {
      this.#tick();
    }, options.checkIntervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Open connections, requests waiting for one: what a circuit breaker reads. */
  get stats(): { connections: number; idle: number; pending: number } {
    return { connections: this.#all.size, idle: this.#idle.length, pending: this.#pending.length };
  }

  /**
   * Sends a request. Fails with PAL_ERR_HTTP1_POOL_OVERFLOW (through `onError`) when every
   * connection is busy and the pending queue is full.
   */
  request(req: ClientRequest, handler: ResponseHandler): RequestBody {
    const body = new PendingBody(this, req.body);
    const p: Pending = { req, handler, body, retried: false };
    if (this.#closed) {
      queueMicrotask(() => {
        handler.onError(new PalisadeError('PAL_ERR_HTTP1_POOL_OVERFLOW', 'the pool is closed'));
      });
      return body;
    }
    this.#dispatch(p);
    return body;
  }

  #dispatch(p: Pending): void {
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      idle.assign(p);
      return;
    }
    if (this.#pending.length >= this.#maxPending) {
      queueMicrotask(() => {
        p.handler.onError(
          new PalisadeError(
            'PAL_ERR_HTTP1_POOL_OVERFLOW',
            'too many requests waiting for a connection',
          ),
        );
      });
      return;
    }
    this.#pending.push(p);
    let opening = 0;
    for (const c of this.#all) if (!c.connected) opening += 1;
    if (this.#all.size < this.#maxConnections && opening < this.#pending.length)
      this.#all.add(new PoolConnection(this, this.#connect(), this.#limits));
  }

  /** @internal A connection is connected and free. */
  connectionReady(c: PoolConnection): void {
    if (this.#closed) {
      c.socket.destroy();
      return;
    }
    let next = this.#pending.shift();
    while (next?.body.aborted === true) next = this.#pending.shift();
    if (next !== undefined) c.assign(next);
    else this.#idle.push(c);
  }

  /** @internal */
  connectionGone(c: PoolConnection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i !== -1) this.#idle.splice(i, 1);
    // A connection that failed to open: the first waiting request fails with it, the rest retry.
    if (!c.connected && this.#pending.length > 0 && !c.busy) {
      const p = this.#pending.shift();
      p?.handler.onError(
        new PalisadeError('PAL_ERR_HTTP1_UPSTREAM_RESET', 'upstream connection failed'),
      );
    }
    if (this.#pending.length > 0 && this.#all.size < this.#maxConnections && !this.#closed)
      this.#all.add(new PoolConnection(this, this.#connect(), this.#limits));
  }

  /** @internal A stale connection's request, sent again on a fresh connection. */
  retry(p: Pending): void {
    this.#pending.unshift(p);
    if (this.#all.size < this.#maxConnections && !this.#closed)
      this.#all.add(new PoolConnection(this, this.#connect(), this.#limits));
  }

  /** @internal */
  dropPending(b: PendingBody): void {
    const i = this.#pending.findIndex((p) => p.body === b);
    if (i !== -1) this.#pending.splice(i, 1);
  }

  #tick(): void {
    this.now = Date.now();
    for (const c of this.#all) {
      if (c.waitingSince !== 0 && this.now - c.waitingSince > this.#responseTimeoutMs) c.timeout();
      else if (!c.busy && c.connected && this.now - c.idleSince > this.#idleTimeoutMs)
        c.socket.destroy();
    }
  }

  /** Closes every connection; waiting requests fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const p of this.#pending.splice(0))
      p.handler.onError(new PalisadeError('PAL_ERR_HTTP1_POOL_OVERFLOW', 'the pool is closed'));
    for (const c of this.#all) c.socket.destroy();
  }
}
