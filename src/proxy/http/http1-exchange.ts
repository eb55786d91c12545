/**
 * The {@link Exchange} of a request served by the raw-socket HTTP/1.1
 * transport (src/proxy/http1): what http/node-exchange.ts is for node:http,
 * so the router, filters, cluster and endpoint layers run unchanged over it
 * (issue 22). The request head's flat `[name, value, …]` list becomes the
 * lower-cased header object the layers match on, the body callbacks become a
 * Readable with backpressure both ways, and {@link Http1Sink} gives the
 * {@link ResponseSink} surface (setHeader / writeHead / write / addTrailers /
 * end, `drain` and `close`) on a {@link ServerExchange}.
 */
import { Readable } from 'node:stream';
import { headerRecord } from '../../policy/evaluation.js';
import { grpcStatusForHttp } from './proxy-failure.js';
import { replayableBody } from './replayable-body.js';
import {
  statusLine,
  type HeaderList,
  type ResponseHead,
  type ServerExchange,
} from '../http1/index.js';
import type {
  Exchange,
  RequestHeaders,
  RequestTarget,
  ResponseHeaders,
  ResponseSink,
} from './types.js';
import { lowerName } from '../http1/field-names.js';

/**
 * Fields of which node:http keeps only the first occurrence (its
 * `IncomingMessage.headers` rules); the layers were written against that shape.
 */
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * The header object node:http would build from the same fields: lower-case
 * names, `set-cookie` always an array, `cookie` joined with `; `, the
 * {@link FIRST_WINS} fields once, the rest joined with `, `.
 */
export function headerObject(list: HeaderList): RequestHeaders {
  // Nothing inherited (a `__proto__` field is an ordinary one), in fast mode: Object.create(null)
  // gave a dictionary, ~0.4 µs more per request to build and read.
  const out = headerRecord<string | string[]>();
  for (let k = 0; k + 1 < list.length; k += 2) {
    const name = lowerName(list[k] ?? '');
    const value = list[k + 1] ?? '';
    const prev = out[name];
    if (name === 'set-cookie') {
      if (Array.isArray(prev)) prev.push(value);
      else out[name] = [value];
    } else if (prev === undefined) out[name] = value;
    else if (FIRST_WINS.has(name)) continue;
    else out[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/** Flattens response header values (numbers, arrays) into a {@link HeaderList}. */
type FieldValue = string | number | readonly string[] | undefined;

function pushField(list: HeaderList, name: string, value: FieldValue): void {
  if (value === undefined) return;
  if (typeof value === 'string' || typeof value === 'number') list.push(name, String(value));
  else for (const v of value) list.push(name, v);
}

/**
 * A {@link ResponseSink} on a raw-socket {@link ServerExchange}: headers set
 * before `writeHead` are merged into it (node's semantics), and `end(body)`
 * without a `content-length` sets one so a small reply goes out in one write.
 */
export class Http1Sink implements ResponseSink {
  statusCode = 200;
  /** As node's ServerResponse: false sends `connection: close` and ends the connection after. */
  shouldKeepAlive = true;
  readonly #ex: ServerExchange;
  /** Lower-case name → [name as set, value]: fields set before `writeHead` (made on first use). */
  #set: Map<string, [string, FieldValue]> | undefined;
  #trailers: HeaderList | undefined;
  #destroyed = false;
  #closed = false;
  readonly #onClose: (() => void)[] = [];
  #onDrain: (() => void)[] = [];

  /** `onAbort` also hears a request or connection failing before the response ended. */
  constructor(ex: ServerExchange, onAbort?: (err: Error) => void) {
    this.#ex = ex;
    ex.onAbort((err) => {
      this.#destroyed = true;
      onAbort?.(err);
      this.#close();
    });
  }

  get headersSent(): boolean {
    return this.#ex.headersSent;
  }
  get destroyed(): boolean {
    return this.#destroyed || this.#ex.socket.destroyed;
  }

  get #fields(): Map<string, [string, FieldValue]> {
    return (this.#set ??= new Map());
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    this.#fields.set(name.toLowerCase(), [name, value]);
    return this;
  }

  appendHeader(name: string, value: string | readonly string[]): this {
    const key = name.toLowerCase();
    const prev = this.#fields.get(key);
    const add = typeof value === 'string' ? [value] : [...value];
    if (prev === undefined) this.#fields.set(key, [name, add.length === 1 ? add[0] : add]);
    else {
      const old = prev[1];
      const before = old === undefined ? [] : typeof old === 'object' ? [...old] : [String(old)];
      prev[1] = [...before, ...add];
    }
    return this;
  }

  writeHead(status: number, headers?: ResponseHeaders): this;
  writeHead(status: number, statusMessage: string, headers?: ResponseHeaders): this;
  writeHead(status: number, second?: ResponseHeaders | string, third?: ResponseHeaders): this {
    const headers = typeof second === 'string' ? third : second;
    this.statusCode = status;
    if (this.#set === undefined && headers !== undefined) {
      // Nothing set before (the relays' case): the fields go from the record to the list.
      const list: HeaderList = [];
      let connection = false;
      for (const name in headers) {
        pushField(list, name, headers[name]);
        if (name.length === 10 && name.toLowerCase() === 'connection') connection = true;
      }
      if (!this.shouldKeepAlive && !connection) list.push('connection', 'close');
      this.#ex.writeHead(status, list);
      return this;
    }
    if (headers !== undefined)
      for (const [name, value] of Object.entries(headers))
        this.#fields.set(name.toLowerCase(), [name, value]);
    if (!this.shouldKeepAlive && !this.#fields.has('connection'))
      this.#fields.set('connection', ['connection', 'close']);
    const list: HeaderList = [];
    for (const [name, value] of this.#fields.values()) pushField(list, name, value);
    this.#ex.writeHead(status, list);
    return this;
  }

  forwardHead(head: ResponseHead, remove: ReadonlySet<string>, add: readonly string[]): boolean {
    if (this.#set !== undefined || !this.shouldKeepAlive || this.#ex.headersSent) return false;
    this.statusCode = head.status;
    this.#ex.forwardHead(head, {
      // Envoy writes the status's own reason phrase, and HTTP/1.1 whatever the upstream spoke.
      startLine: statusLine(head.status),
      remove,
      add,
      lowerCaseNames: true,
    });
    return true;
  }

  write(chunk: Buffer): boolean {
    if (this.#destroyed) return true;
    if (!this.#ex.headersSent) this.writeHead(this.statusCode);
    const ok = this.#ex.write(chunk);
    if (!ok)
      this.#ex.onDrain(() => {
        const waiting = this.#onDrain;
        this.#onDrain = [];
        for (const cb of waiting) cb();
      });
    return ok;
  }

  addTrailers(trailers: Record<string, string | string[]>): void {
    const list: HeaderList = this.#trailers ?? [];
    for (const [name, value] of Object.entries(trailers)) pushField(list, name, value);
    this.#trailers = list;
  }

  end(callback?: () => void): this;
  end(data: string | Uint8Array, callback?: () => void): this;
  end(data: string | Uint8Array, encoding: BufferEncoding, callback?: () => void): this;
  end(
    first?: string | Uint8Array | (() => void),
    second?: BufferEncoding | (() => void),
    third?: () => void,
  ): this {
    const done =
      typeof first === 'function' ? first : typeof second === 'function' ? second : third;
    if (done !== undefined) this.on('close', done);
    if (this.#destroyed || this.#ex.finished) return this;
    const body = typeof first === 'function' ? undefined : first;
    const bytes =
      body === undefined
        ? undefined
        : typeof body === 'string'
          ? Buffer.from(body, typeof second === 'string' ? second : 'utf8')
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (!this.#ex.headersSent) {
      if (this.#set?.has('content-length') !== true && this.#set?.has('transfer-encoding') !== true)
        this.setHeader('content-length', bytes?.length ?? 0);
      this.writeHead(this.statusCode);
    }
    this.#ex.end(bytes, this.#trailers);
    this.#close();
    return this;
  }

  destroy(error?: Error): this {
    if (this.#destroyed) return this;
    this.#destroyed = true;
    this.#ex.socket.destroy(error);
    this.#close();
    return this;
  }

  /**
   * The events the layers and handlers wait for: `drain` (once) and `close` (fires once; after
   * close, at once). Any other event never fires.
   */
  once(event: string, listener: () => void): this {
    return this.on(event, listener);
  }

  on(event: string, listener: () => void): this {
    if (event === 'drain') this.#onDrain.push(listener);
    else if (event === 'close') {
      if (this.#closed && this.#onClose.length === 0) setImmediate(listener);
      else this.#onClose.push(listener);
    }
    return this;
  }

  removeListener(event: string, listener: () => void): this {
    const list = event === 'drain' ? this.#onDrain : event === 'close' ? this.#onClose : [];
    const at = list.indexOf(listener);
    if (at >= 0) list.splice(at, 1);
    return this;
  }

  /**
   * `close` fires after the current turn, as node's ServerResponse emits it (after `finish`):
   * code that ends a response and then records it runs before its close listeners. With
   * none, nothing is scheduled (an immediate per request, ~0.5 % of a proxy, for most
   * responses, whose handlers took their listener back when they ended them); a listener
   * added later is called at the next turn by `on`.
   */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#onClose.length === 0) return;
    setImmediate(() => {
      for (const cb of this.#onClose.splice(0)) cb();
    });
  }
}

/**
 * The request body as a Readable: a `data` callback that fills the buffer
 * past its high-water mark pauses the socket, and reading resumes it.
 */
function bodyStream(ex: ServerExchange): Readable {
  let paused = false;
  const stream = new Readable({
    read() {
      if (paused) {
        paused = false;
        ex.resume();
      }
    },
  });
  ex.onBody({
    data(chunk) {
      if (stream.push(chunk)) return true;
      paused = true;
      return false;
    },
    end() {
      stream.push(null);
    },
  });
  return stream;
}

/** `grpc-message` percent-encoding (PROTOCOL-HTTP2.md). */
function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8'))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The exchange of a raw-socket request addressed to `target` (its path after head normalisation). */
export function http1Exchange(ex: ServerExchange, target: RequestTarget): Exchange {
  const headers = headerObject(ex.head.headers);
  let body: Readable | undefined;
  const sink = new Http1Sink(ex, (err) => body?.destroy(err));
  const grpc = headers['content-type']?.startsWith('application/grpc') === true;
  let grpcSent: number | undefined;
  const live = (): Readable => (body ??= bodyStream(ex));
  const note = (fields: Readonly<Record<string, unknown>>): void => {
    const status = fields['grpc-status'];
    if (typeof status === 'string' || typeof status === 'number') grpcSent = Number(status);
  };
  return {
    head: {
      method: ex.head.method,
      authority: target.authority,
      path: target.path,
      headers,
      protocol: ex.head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0',
      remoteAddress: ex.socket.remoteAddress,
    },
    sink,
    hasBody: ex.head.framing.kind !== 'none',
    grpc,
    connection: ex.socket,
    body: live,
    replayable: (limit) => replayableBody(live(), limit),
    reply: (status, text, fields, grpcStatus) => {
      if (grpc) {
        sink.writeHead(200, { ...fields, 'content-type': 'application/grpc' });
        const trailers = {
          'grpc-status': String(grpcStatus ?? grpcStatusForHttp(status)),
          'grpc-message': grpcMessage(text),
        };
        note(trailers);
        sink.addTrailers(trailers);
        sink.end();
        return;
      }
      sink.writeHead(status, {
        ...fields,
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(text),
      });
      sink.end(text);
    },
    noteGrpcStatus: note,
    sentGrpcStatus: () => grpcSent,
  };
}
