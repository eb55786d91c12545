/**
 * One request and its response on the raw HTTP/1.1 server (server.ts): the
 * head, the body delivered through a {@link BodySink}, and the response written
 * with the framing the request allows. What it needs of its connection is
 * {@link ExchangeConnection} (Http1ServerConnection implements it).
 */
import type * as net from 'node:net';
import { CRLF, chunkHeader, lastChunk } from './chunked.js';
import { connectionOptions } from './head-parser.js';
import { buildHead, serializeHead, statusLine, type HeadEdits } from './serializer.js';
import type { HeaderList, RequestHead, ResponseHead } from './types.js';
import { lowerName } from './field-names.js';

/** Framing fields added to a response head (shared, never mutated). */
const NO_FIELDS: HeaderList = [];
const CONNECTION_CLOSE: HeaderList = ['connection', 'close'];
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** Whether a `connection` field value lists the `close` option (RFC 9110 §7.6.1). */
function hasCloseToken(value: string): boolean {
  return connectionOptions(value).includes('close');
}

/** What an exchange uses of its connection. */
export interface ExchangeConnection {
  readonly socket: net.Socket;
  /** Every write of the response goes here (never to the socket: it would overtake held bytes). */
  write(buf: Buffer): boolean;
  /** Holds writes until the end of the current turn (turn.ts): the turn's writes go out together. */
  corkTurn(): void;
  resumeRead(): void;
  flushBody(ex: ServerExchange): void;
  responseEnded(ex: ServerExchange): void;
}

/** One request and its response. The body arrives through {@link onBody}. */
export class ServerExchange {
  readonly head: RequestHead;
  readonly #conn: ExchangeConnection;
  /** @internal */ sink: BodySink | undefined;
  /** @internal */ bodyDone: boolean;
  /** @internal */ trailers: HeaderList = [];
  /** @internal */ resFraming: 'length' | 'chunked' | 'close' | 'none' = 'none';
  /**
   * The response head says `connection: close`: the connection ends after it (RFC 9112 §9.6),
   * whatever the request asked for.
   */
  /** @internal */ closeAfter = false;
  #headSent = false;
  #ended = false;
  #onDrain: (() => void) | undefined;
  #onAbort: ((err: Error) => void) | undefined;

  constructor(conn: ExchangeConnection, head: RequestHead) {
    this.#conn = conn;
    this.head = head;
    this.bodyDone = head.framing.kind === 'none';
  }

  /** The connection's socket (for the peer's address and TLS identity). */
  get socket(): net.Socket {
    return this.#conn.socket;
  }
  get headersSent(): boolean {
    return this.#headSent;
  }
  get finished(): boolean {
    return this.#ended;
  }

  /**
   * Receives the request body: `data` returns false to pause reading until {@link resume};
   * `end` gets the trailers. A request without a body ends at once.
   */
  onBody(sink: BodySink): void {
    this.sink = sink;
    // Through the held writes, as every write of the connection (turn.ts): after what it holds.
    if (this.head.expectContinue && !this.bodyDone && !this.#headSent) this.#conn.write(CONTINUE);
    this.#conn.flushBody(this);
  }
  /** Reading resumes after a `data` callback returned false. */
  resume(): void {
    this.#conn.resumeRead();
  }
  /** Called when the request or the connection fails before the response ended. */
  onAbort(cb: (err: Error) => void): void {
    this.#onAbort = cb;
  }
  /** Called when the socket can take more after {@link write} returned false. */
  onDrain(cb: () => void): void {
    this.#onDrain = cb;
  }

  /** Sends a 1xx head (e.g. a forwarded 103); not 101, which goes with an upgrade. */
  writeInformational(status: number, headers: HeaderList = []): void {
    this.#conn.write(buildHead(statusLine(status), headers));
  }

  /**
   * Writes the response head. The body framing follows RFC 9112 §6: none for HEAD, 1xx, 204 and
   * 304; the given `content-length`; chunked for an HTTP/1.1 client otherwise; and for an HTTP/1.0
   * client, until the connection closes.
   */
  writeHead(status: number, headers: HeaderList, body?: Buffer): boolean {
    let contentLength = false;
    for (let k = 0; k < headers.length; k += 2) {
      const name = lowerName(headers[k] ?? '');
      if (name === 'content-length') contentLength = true;
      else if (name === 'connection' && hasCloseToken(headers[k + 1] ?? '')) this.closeAfter = true;
    }
    const add = this.#framing(status, contentLength);
    const all = add.length === 0 ? headers : [...headers, ...add];
    return this.#sendHead(buildHead(statusLine(status), all, body));
  }

  /**
   * Forwards a response head read by the client: its bytes are copied, hop-by-hop fields
   * dropped and `edits` applied in one pass (see serializeHead).
   */
  forwardHead(res: ResponseHead, edits: HeadEdits = {}): boolean {
    // The upstream's own `connection` field is hop-by-hop (dropped); one the proxy adds counts.
    const added = edits.add ?? [];
    for (let k = 0; k < added.length; k += 2)
      if ((added[k] ?? '').toLowerCase() === 'connection' && hasCloseToken(added[k + 1] ?? ''))
        this.closeAfter = true;
    const hasLength =
      res.framing.kind === 'length' ||
      (res.framing.kind === 'none' && hasField(res.headers, 'content-length'));
    const add = this.#framing(res.status, hasLength);
    const chunked = add.length === 2 && add[0] === 'transfer-encoding';
    const extra = add.length === 0 || chunked ? edits.add : [...(edits.add ?? []), ...add];
    const startLine =
      res.minor === 1
        ? edits.startLine
        : (edits.startLine ?? `HTTP/1.1 ${String(res.status)} ${res.reason}`);
    // One literal of one shape for every call (spreads of the caller's edits gave V8 a new
    // hidden class per response, and serializeHead's reads of it went megamorphic).
    return this.#sendHead(
      serializeHead(res, {
        startLine,
        remove: edits.remove,
        add: extra,
        keepUpgrade: edits.keepUpgrade,
        chunked,
        body: edits.body,
        lowerCaseNames: edits.lowerCaseNames,
      }),
    );
  }

  /** Fields to add for the framing chosen; sets {@link resFraming}. */
  #framing(status: number, hasLength: boolean): HeaderList {
    if (this.head.method === 'HEAD' || status < 200 || status === 204 || status === 304) {
      this.resFraming = 'none';
      return [];
    }
    // `connection: close` when the connection ends after this response, unless the head has it.
    const close = this.closeAfter ? NO_FIELDS : CONNECTION_CLOSE;
    if (hasLength) {
      this.resFraming = 'length';
      return this.head.keepAlive ? [] : close;
    }
    if (this.head.minor === 1) {
      this.resFraming = 'chunked';
      return this.head.keepAlive
        ? ['transfer-encoding', 'chunked']
        : ['transfer-encoding', 'chunked', ...close];
    }
    this.resFraming = 'close';
    return close;
  }

  #sendHead(buf: Buffer): boolean {
    if (this.#headSent) throw new Error('response head already sent');
    this.#headSent = true;
    // A small response's head, body and last chunk are written in one turn: one write (one TLS
    // record, one syscall) instead of one each, as node:http coalesces them.
    this.#conn.corkTurn();
    return this.#conn.write(buf);
  }

  /** Writes body bytes (chunk-framed when the response is chunked); false → wait for onDrain. */
  write(chunk: Buffer): boolean {
    if (this.resFraming === 'none' || chunk.length === 0) return true;
    // Held to the turn's end, as the head was: a turn's chunks are one write.
    this.#conn.corkTurn();
    if (this.resFraming === 'chunked') {
      this.#conn.write(chunkHeader(chunk.length));
      this.#conn.write(chunk);
      return this.#conn.write(CRLF);
    }
    return this.#conn.write(chunk);
  }

  /** Ends the response (with trailers when it is chunked); the next request is served after it. */
  end(chunk?: Buffer, trailers?: HeaderList): void {
    if (this.#ended) return;
    if (!this.#headSent) this.writeHead(200, ['content-length', String(chunk?.length ?? 0)]);
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    if (this.resFraming === 'chunked') this.#conn.write(lastChunk(trailers));
    this.#ended = true;
    this.#conn.responseEnded(this);
  }

  /** Sends a whole response in one write. */
  respond(status: number, headers: HeaderList, body?: Buffer): void {
    const hasBody = body !== undefined && body.length > 0;
    this.writeHead(
      status,
      [...headers, 'content-length', String(body?.length ?? 0)],
      hasBody && this.head.method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304
        ? body
        : undefined,
    );
    this.#ended = true;
    this.#conn.responseEnded(this);
  }

  /** @internal */ drained(): void {
    const cb = this.#onDrain;
    this.#onDrain = undefined;
    cb?.();
  }
  /** @internal */ aborted(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onAbort?.(err);
  }
}

export function hasField(headers: HeaderList, lower: string): boolean {
  return fieldValue(headers, lower) !== undefined;
}

/**
 * The value of the first field named `lower` (a lower-case name of letters, digits and `-`; the
 * list's names are tokens, in any case). Compared character by character, not through
 * `toLowerCase`, a builtin call per same-length name.
 */
export function fieldValue(headers: readonly string[], lower: string): string | undefined {
  for (let k = 0; k + 1 < headers.length; k += 2) {
    const name = headers[k] ?? '';
    if (name.length === lower.length && sameName(name, lower)) return headers[k + 1];
  }
  return undefined;
}

/**
 * Whether token `name` is `lower` in any case: a character ORed with 0x20 is a lower-case
 * letter only when it is that letter in either case; `-` and digits are unchanged, and what
 * else would map onto them (CR, controls) is never in a token.
 */
function sameName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i += 1)
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Receives a body: `data` returns false to pause the producer; `end` carries trailers. */
export interface BodySink {
  data(chunk: Buffer): boolean | undefined;
  end(trailers: HeaderList): void;
}
