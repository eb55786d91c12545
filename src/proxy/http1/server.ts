/**
 * An HTTP/1.1 server on node:net / node:tls sockets (RFC 9112): keep-alive,
 * pipelined requests served one at a time in order (§9.3.2), header, request
 * and idle timeouts, backpressure both ways with bounded buffers,
 * `Connection: close` and HTTP/1.0, 1xx (`100 Continue` sent when a body is
 * read), HEAD/204/304 without a body, and close-delimited responses to
 * HTTP/1.0 clients. Parse failures are answered with their status (400, 431,
 * 501, 505) and the connection is closed, as llhttp-based node:http does.
 *
 * Per request it allocates the head, one exchange object and the views of the
 * body it hands out; timers are one coarse interval per server (as node:http's
 * `connectionsCheckingInterval`), not a timer per request.
 */
import * as net from 'node:net';
import { ChunkedDecoder } from './chunked.js';
import { findHeadEnd, isFailure, parseRequestHead } from './head-parser.js';
import { checkPartialRequestHead } from './partial-head.js';
import { REASONS } from './serializer.js';
import { ServerExchange, type ExchangeConnection } from './server-exchange.js';
import * as turn from './turn.js';
import type { ParseFailure, RequestHead } from './types.js';
import type { ServedConnection, ServerState } from './server-options.js';

export type { Http1ServerOptions, ServerState } from './server-options.js';

const enum Phase {
  /** Waiting for (the rest of) a head. */
  Head,
  /** A request is being served. */
  Busy,
  /** Closed or handed over. */
  Gone,
}

/** One HTTP/1.1 connection's reading, framing and ordering. */
export class Http1ServerConnection implements ExchangeConnection, ServedConnection {
  readonly socket: net.Socket;
  readonly #s: ServerState;
  #phase = Phase.Head;
  #buf: Buffer | undefined;
  #scanned = 0;
  #exchange: ServerExchange | undefined;
  #remaining = 0;
  #chunked: ChunkedDecoder | undefined;
  /** Bytes that arrived while the body had no sink yet. */
  #pendingBody: Buffer[] = [];
  #paused = false;
  /** When the current head or request started (coarse clock); 0 when idle. */
  #requestStart = 0;
  #idleSince: number;

  constructor(socket: net.Socket, state: ServerState) {
    this.socket = socket;
    this.#out = new turn.HeldWrites(socket);
    this.#readMore = turn.readMoreFlag(socket);
    this.#s = state;
    this.#idleSince = state.now;
    if (state.options.headersTimeoutFromAccept === true) this.#requestStart = state.now;
    // A handed-over stream (a TLS socket, a wrapper of sniffed bytes) may have no Nagle switch.
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    socket.on('data', this.#dataListener);
    socket.on('drain', this.#drainListener);
    socket.on('error', () => {
      /* 'close' follows */
    });
    socket.on('end', this.#endListener);
    socket.on('close', () => {
      this.#phase = Phase.Gone;
      state.connections.delete(this);
      this.#exchange?.aborted(new Error('connection closed'));
    });
  }

  readonly #readMore: turn.ReadMoreFlag | undefined;
  readonly #dataListener = (chunk: Buffer): void => {
    turn.skipReadMoreTick(this.#readMore);
    turn.enterTurn();
    try {
      this.#onData(chunk);
    } finally {
      turn.leaveTurn();
    }
  };
  readonly #drainListener = (): void => {
    this.#exchange?.drained();
  };
  /**
   * The client half-closed: requests it sent whole are answered (pipelined ones too, as
   * node:http does), then the connection closes; a request cut short is aborted.
   */
  readonly #endListener = (): void => {
    const ex = this.#exchange;
    if (ex === undefined) {
      this.#phase = Phase.Gone;
      this.end();
    } else if (!ex.bodyDone || this.#s.options.abortOnHalfClose === true) this.socket.destroy();
  };

  /** True between requests: none being served and no byte of a next head received. */
  get idle(): boolean {
    return (
      this.#exchange === undefined &&
      this.#phase === Phase.Head &&
      (this.#buf === undefined || this.#buf.length === 0)
    );
  }

  /** Checked by the server's interval: header, request and idle timeouts. */
  tick(now: number): void {
    if (this.#phase === Phase.Gone) return;
    if (this.#requestStart !== 0) {
      const limit =
        this.#phase === Phase.Head ? this.#s.headersTimeoutMs : this.#s.requestTimeoutMs;
      const bodyPending = this.#phase === Phase.Head || this.#exchange?.bodyDone === false;
      if (bodyPending && limit > 0 && now - this.#requestStart > limit) {
        if (this.#exchange?.headersSent !== true)
          this.#reject({ status: 408, reason: 'request-timeout' });
        else this.socket.destroy();
      }
    } else if (this.#exchange === undefined && now - this.#idleSince > this.#s.idleTimeoutMs)
      this.socket.destroy();
  }

  /** The response's writes: held from its head to the end of the turn or of the response. */
  readonly #out: turn.HeldWrites;
  write(buf: Buffer): boolean {
    return this.#out.write(buf);
  }
  corkTurn(): void {
    this.#out.hold();
  }
  /** Ends the socket after what it holds (a graceful close: drain, a client's half-close). */
  end(): void {
    this.#out.flush();
    this.socket.end();
  }

  resumeRead(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const buf = this.#buf;
    this.#buf = undefined;
    this.socket.resume();
    if (buf !== undefined && buf.length > 0) this.#onData(buf);
  }

  /** Whether a request is being served (a method: calls in between may change it). */
  #serving(): boolean {
    return this.#exchange !== undefined;
  }

  /** A method, so flow analysis does not narrow the phase across calls that change it. */
  #gone(): boolean {
    return this.#phase === Phase.Gone;
  }

  #onData(chunk: Buffer): void {
    if (this.#gone()) return;
    let buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#buf = undefined;
    let at = 0;
    while (at < buf.length && !this.#gone()) {
      if (this.#phase === Phase.Busy) {
        if (this.#exchange !== undefined && !this.#exchange.bodyDone) {
          const r = this.#readBody(buf, at);
          if (isFailure(r)) {
            this.#fail(r);
            return;
          }
          at = r;
          if (this.#paused) break;
          continue;
        }
        // The next pipelined request waits until this response ends; read ahead is bounded.
        break;
      }
      // Phase.Head
      if (this.#requestStart === 0) this.#requestStart = this.#s.now;
      const view = at === 0 ? buf : buf.subarray(at);
      const end = findHeadEnd(view, this.#scanned - 3);
      if (end === -2) {
        this.#reject({ status: 400, reason: 'cr-expected' });
        return;
      }
      if (end === -1) {
        if (view.length > this.#s.limits.maxHeadBytes) {
          this.#reject({ status: 431, reason: 'head-too-large' });
          return;
        }
        const bad = checkPartialRequestHead(view, this.#s.limits);
        if (bad !== undefined) {
          this.#reject(bad);
          return;
        }
        this.#scanned = view.length;
        buf = view;
        at = 0;
        break;
      }
      this.#scanned = 0;
      const head = parseRequestHead(view.subarray(0, end), this.#s.limits);
      if (isFailure(head)) {
        this.#reject(head);
        return;
      }
      at += end;
      // An upgrade is asked for with `Upgrade` and the `upgrade` connection option (RFC 9110
      // §7.8); an `Upgrade` field alone is served as a plain request, as node:http (llhttp) does.
      if (
        (head.method === 'CONNECT' ||
          (head.upgrade !== '' && head.connectionTokens.includes('upgrade'))) &&
        this.#s.options.onUpgrade !== undefined
      ) {
        this.#phase = Phase.Gone;
        // Only this server's listeners go (net.Socket's own 'end' handling stays); the socket
        // stops flowing until its new owner reads, as node:http hands one over, so no byte
        // arriving in between is lost.
        this.socket.off('data', this.#dataListener);
        this.socket.off('drain', this.#drainListener);
        this.socket.off('end', this.#endListener);
        Reflect.set(this.socket, 'readableFlowing', null);
        this.#s.connections.delete(this);
        // The answers to requests before it go first: the socket's new owner writes directly.
        this.#out.flush();
        this.#s.options.onUpgrade(head, this.socket, buf.subarray(at));
        return;
      }
      if (head.method === 'CONNECT') {
        this.#reject({ status: 501, reason: 'connect-not-served' });
        return;
      }
      this.#start(head);
    }
    if (at < buf.length && !this.#gone()) {
      const rest = at === 0 ? buf : buf.subarray(at);
      this.#buf = rest;
      if (this.#phase === Phase.Busy && rest.length > this.#s.maxReadAhead && !this.#paused) {
        this.#paused = true;
        this.socket.pause();
      }
    }
  }

  #start(head: RequestHead): void {
    const ex = new ServerExchange(this, head);
    this.#exchange = ex;
    this.#phase = Phase.Busy;
    if (head.framing.kind === 'length') this.#remaining = head.framing.length;
    else if (head.framing.kind === 'chunked')
      this.#chunked = new ChunkedDecoder((c) => {
        this.#deliver(c);
      }, this.#s.limits);
    if (ex.bodyDone) this.#requestStart = 0;
    this.#s.options.onRequest(ex);
  }

  /** Hands body bytes to the sink, or holds them until there is one. */
  #deliver(chunk: Buffer): void {
    const ex = this.#exchange;
    if (ex === undefined) return;
    const sink = ex.sink;
    if (sink === undefined) {
      this.#pendingBody.push(chunk);
      return;
    }
    if (sink.data(chunk) === false && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  #readBody(buf: Buffer, at: number): number | ParseFailure {
    const ex = this.#exchange;
    if (ex === undefined) return buf.length;
    let next: number;
    if (this.#chunked !== undefined) {
      const r = this.#chunked.push(buf, at);
      if (isFailure(r)) return r;
      next = r;
      if (this.#chunked.done) {
        ex.trailers = this.#chunked.trailers;
        this.#chunked = undefined;
        this.#bodyEnded(ex);
      }
    } else {
      const take = Math.min(this.#remaining, buf.length - at);
      this.#remaining -= take;
      next = at + take;
      this.#deliver(buf.subarray(at, next));
      if (this.#remaining === 0) this.#bodyEnded(ex);
    }
    if (ex.sink === undefined && this.#pendingBody.length > 0) {
      let held = 0;
      for (const b of this.#pendingBody) held += b.length;
      if (held > this.#s.maxReadAhead && !this.#paused) {
        this.#paused = true;
        this.socket.pause();
      }
    }
    return next;
  }

  #bodyEnded(ex: ServerExchange): void {
    ex.bodyDone = true;
    this.#requestStart = 0;
    if (ex.sink !== undefined) ex.sink.end(ex.trailers);
    if (ex.finished) this.responseEnded(ex);
  }

  /** The sink was attached: hand over what was held. */
  flushBody(ex: ServerExchange): void {
    const sink = ex.sink;
    if (sink === undefined) return;
    const held = this.#pendingBody;
    this.#pendingBody = [];
    let pause = false;
    for (const b of held) if (sink.data(b) === false) pause = true;
    if (ex.bodyDone) sink.end(ex.trailers);
    if (pause && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    } else if (!pause) this.resumeRead();
  }

  /** The response ended: close, or serve the next pipelined request. */
  responseEnded(ex: ServerExchange): void {
    // Written now, unless a busy loop holds the writes to the end of its pass (turn.ts).
    if (!turn.holdingForPass()) this.#out.flush();
    if (this.#exchange !== ex || this.#phase === Phase.Gone) return;
    if (!ex.bodyDone) {
      // The response went out before the request body was read: the rest of the body cannot be
      // told from a next request without reading it, so the connection closes (as Envoy does).
      this.#phase = Phase.Gone;
      this.end();
      return;
    }
    this.#exchange = undefined;
    this.#pendingBody = [];
    const buffered = this.#buf !== undefined && this.#buf.length > 0;
    if (
      !ex.head.keepAlive ||
      ex.closeAfter ||
      ex.resFraming === 'close' ||
      this.#s.draining ||
      (this.socket.readableEnded && !buffered)
    ) {
      this.#phase = Phase.Gone;
      this.end();
      return;
    }
    this.#phase = Phase.Head;
    this.#idleSince = this.#s.now;
    const buf = this.#buf;
    this.#buf = undefined;
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    if (buf !== undefined && buf.length > 0) this.#onData(buf);
    // Half-closed by the client and no whole request left: nothing more can arrive.
    if (this.socket.readableEnded && !this.#serving() && !this.#gone()) {
      this.#phase = Phase.Gone;
      this.end();
    }
  }

  #fail(f: ParseFailure): void {
    if (this.#exchange?.headersSent === true) {
      this.#phase = Phase.Gone;
      this.socket.destroy();
      return;
    }
    this.#exchange?.aborted(new Error(`request body refused: ${f.reason}`));
    this.#reject(f);
  }

  /** Answers a refused request with its status and closes (llhttp/node:http close too). */
  #reject(f: ParseFailure): void {
    this.#phase = Phase.Gone;
    this.#s.options.onParseError?.(f, this.socket);
    this.#exchange = undefined;
    // A client that does not take its answer and close is not waited for.
    const socket = this.socket;
    setTimeout(() => socket.destroy(), 1_000).unref();
    // The answers to the requests before it go first.
    this.#out.flush();
    const answer = this.#s.options.answerParseError;
    if (answer !== undefined) {
      answer(f, socket);
      return;
    }
    const status = f.status as number;
    socket.end(
      `HTTP/1.1 ${String(status)} ${REASONS[status] ?? ''}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
    );
  }
}

export { ServerExchange, type BodySink } from './server-exchange.js';
