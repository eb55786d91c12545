/**
 * The raw-socket HTTP/1.1 client (client.ts) behind the `UpstreamDispatcher`
 * seam the outbound endpoint layer and the inbound app relay dispatch to
 * (undici's dispatch/handler shape, h2-upstream.ts), so a pool per upstream
 * can be an `Http1Pool` or an HTTP/2 origin without the layers above knowing.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PalisadeError } from '../../errors/index.js';
import type {
  UpstreamController,
  UpstreamDispatcher,
  UpstreamHandler,
  UpstreamRequest,
} from '../h2-upstream.js';
import { headerRecord } from '../../policy/evaluation.js';
import { Http1Pool, withOnread } from './client.js';
import type { RequestBody, ResponseHandler } from './client-types.js';
import type { HeaderList, ResponseHead } from './types.js';
import { lowerName } from './field-names.js';
import { buildHead } from './serializer.js';

/** Where the origin is and how to reach it. */
export interface Http1OriginOptions {
  readonly host: string;
  readonly port: number;
  /** TLS options (SVID, trust bundle, checkServerIdentity); plaintext when absent. */
  readonly tls?: tls.ConnectionOptions | undefined;
  readonly localAddress?: string | undefined;
  readonly maxConnections?: number;
}

/**
 * Whether `s` holds a CR, LF or NUL (which would split the head). Three `indexOf`s: V8 finds
 * one character with memchr, while a `/[\r\n\0]/` test walks a 1 KB string char by char.
 */
const forbidden = (s: string): boolean => s.includes('\r') || s.includes('\n') || s.includes('\0');

function badField(name: string): PalisadeError {
  return new PalisadeError('PAL_ERR_HTTP1_BAD_RESPONSE', `invalid request header ${name}`);
}

/** A header record as a flat list; refuses a name or value that would split the head. */
function headerList(headers: Readonly<Record<string, string | string[]>>): {
  list: HeaderList;
  hasHost: boolean;
  hasLength: boolean;
} {
  const list: HeaderList = [];
  let hasHost = false;
  let hasLength = false;
  // Every name and value in one string, checked once (a test per field cost ~1 % of the
  // outbound proxy); the field at fault is looked for only when the test finds one.
  let all = '';
  for (const name in headers) {
    const lower = lowerName(name);
    // Framing is this hop's own: the client writes it.
    if (lower === 'transfer-encoding' || lower === 'connection' || lower === 'keep-alive') continue;
    const value = headers[name];
    if (value === undefined) continue;
    all += name;
    if (Array.isArray(value))
      for (const v of value) {
        all += v;
        list.push(name, v);
      }
    else {
      // A caller's record may hold a number (node's OutgoingHttpHeaders allow one).
      const v = typeof value === 'string' ? value : String(value);
      all += v;
      list.push(name, v);
    }
    if (lower === 'host') hasHost = true;
    if (lower === 'content-length') hasLength = true;
  }
  if (forbidden(all)) throw badField(faultyField(list));
  return { list, hasHost, hasLength };
}

/** The first name in `list` whose name or value holds a forbidden byte. */
function faultyField(list: HeaderList): string {
  for (let k = 0; k + 1 < list.length; k += 2) {
    const name = list[k] ?? '';
    if (forbidden(name) || forbidden(list[k + 1] ?? '')) return name;
  }
  return '';
}

/** The trailers of a response without any (most): one frozen record, not one per response. */
const NO_TRAILERS: Readonly<Record<string, string | string[]>> = Object.freeze(headerRecord());

/** A header list as undici reports it: lower-case names, repeated fields as arrays. */
export function responseRecord(list: HeaderList): Record<string, string | string[]> {
  // No prototype fields: a response field named `__proto__` or `constructor` is an ordinary one.
  const out = headerRecord<string | string[]>();
  for (let k = 0; k + 1 < list.length; k += 2) {
    const name = lowerName(list[k] ?? '');
    const value = list[k + 1] ?? '';
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return out;
}

/**
 * One request on an {@link Http1Pool}: the controller the caller's handler gets and the
 * pool's response handler in one object (a literal of closures per request was ten
 * allocations: a state object, the controller and its three methods, the handler and its four).
 */
class Dispatched implements UpstreamController, ResponseHandler {
  readonly #request: UpstreamRequest;
  readonly #handler: UpstreamHandler;
  #paused = false;
  #done = false;
  #body: RequestBody | undefined;

  constructor(request: UpstreamRequest, handler: UpstreamHandler) {
    this.#request = request;
    this.#handler = handler;
  }

  send(pool: Http1Pool, authority: string): void {
    const request = this.#request;
    this.#handler.onRequestStart?.(this, {});
    // The handler may abort at once (a request already cancelled).
    if (this.#done) return;
    let head: ReturnType<typeof headerList>;
    try {
      head = headerList(request.headers);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    const mode = request.body === null ? 'none' : head.hasLength ? 'length' : 'chunked';
    if (!head.hasHost) head.list.unshift('host', authority);
    if (mode === 'chunked') head.list.push('transfer-encoding', 'chunked');
    const out = pool.request(
      {
        method: request.method,
        head: buildHead(`${request.method} ${request.path} HTTP/1.1`, head.list),
        body: mode,
      },
      this,
    );
    this.#body = out;
    const stream = request.body;
    if (stream !== null) {
      stream.on('data', (data: Buffer | string) => {
        // A stream of strings (a Readable made from them) is written as its UTF-8 bytes: a
        // chunk's size is counted in bytes, and the held writes join buffers.
        const chunk = typeof data === 'string' ? Buffer.from(data) : data;
        if (!out.write(chunk)) {
          stream.pause();
          out.onDrain(() => stream.resume());
        }
      });
      stream.once('end', () => {
        out.end();
      });
      stream.once('error', (error: Error) => {
        out.abort();
        this.#fail(error);
      });
    }
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#handler.onResponseError?.(this, error);
  }

  // UpstreamController
  abort(reason: Error): void {
    // After the response ended the exchange is over: nothing to cancel.
    if (this.#done) return;
    this.#body?.abort();
    this.#request.body?.destroy();
    this.#fail(reason);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#body?.resume();
  }

  // ResponseHandler (the pool's)
  onResponse(response: ResponseHead): void {
    if (this.#done) return;
    const handler = this.#handler;
    if (handler.onResponseHead !== undefined) {
      handler.onResponseHead(this, response);
      return;
    }
    handler.onResponseStart?.(
      this,
      response.status,
      responseRecord(response.headers),
      response.reason,
    );
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return false;
    this.#handler.onResponseData?.(this, chunk);
    return !this.#paused;
  }

  onEnd(trailers: HeaderList): void {
    if (this.#done) return;
    this.#done = true;
    this.#handler.onResponseEnd?.(
      this,
      trailers.length === 0 ? NO_TRAILERS : responseRecord(trailers),
    );
  }

  onError(error: PalisadeError): void {
    this.#request.body?.destroy();
    // As undici reports it: the socket's own error when there is one (a TLS secure-naming
    // refusal keeps its code and message), else the pool's.
    this.#fail(error.cause instanceof Error ? error.cause : error);
  }
}

/** An HTTP/1.1 origin served by one keep-alive `Http1Pool`. */
export function createHttp1Origin(options: Http1OriginOptions): UpstreamDispatcher {
  const authority = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${String(options.port)}`;
  const source = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
  const pool = new Http1Pool({
    connect: (onread) =>
      options.tls === undefined
        ? net.connect({ host: options.host, port: options.port, ...source, onread })
        : tls.connect(
            withOnread(
              { ...options.tls, host: options.host, port: options.port, ...source },
              onread,
            ),
          ),
    maxConnections: options.maxConnections ?? 256,
    // The route's own timeout bounds an exchange (retry-handler.ts); this one only frees a
    // connection whose upstream never answers.
    responseTimeoutMs: 300_000,
  });
  return {
    dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean {
      new Dispatched(request, handler).send(pool, authority);
      return true;
    },
    async close() {
      // As undici's close(): requests in flight finish (bounded), then the connections close.
      const until = Date.now() + 30_000;
      const busy = (): boolean => {
        const s = pool.stats;
        return s.pending > 0 || s.connections > s.idle;
      };
      while (busy() && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 100).unref());
      pool.close();
    },
    destroy() {
      pool.close();
      return Promise.resolve();
    },
  };
}
