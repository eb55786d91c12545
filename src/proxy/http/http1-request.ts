/**
 * A request served by the raw-socket HTTP/1.1 transport (src/proxy/http1)
 * in the shape the listeners' handlers read of node:http's
 * `IncomingMessage`: method, url (written back by the request-head
 * normalisation), the lower-cased header object, the version, the socket,
 * and the body as a Readable with backpressure both ways. With
 * {@link Http1Sink} as its response, a handler written for node:http serves
 * it unchanged (issue 22's migration; http1-exchange.ts is the Exchange the
 * layers below the handlers take).
 *
 * The body is attached on the first read: `100 Continue` goes out when a
 * handler starts reading, not before (RFC 9110 §10.1.1 lets a server answer
 * without reading a body it will refuse). A request cut short is destroyed
 * as node:http destroys one (`aborted`, then `close`), with no `error` event
 * unless somebody listens for it, so an aborted request never throws.
 */
import type * as net from 'node:net';
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerExchange } from '../http1/index.js';
import { headerObject } from './http1-exchange.js';

/** The request object of the raw-socket server (structurally what the handlers read of node:http's). */
export class Http1Request extends Readable {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly httpVersion: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly socket: net.Socket;
  /** True once the whole body was received. */
  complete = false;
  /** True when the request was cut short. */
  aborted = false;
  trailers: Record<string, string> = {};
  readonly exchange: ServerExchange;
  #attached = false;
  #paused = false;

  constructor(ex: ServerExchange, socket: net.Socket) {
    super();
    const head = ex.head;
    this.exchange = ex;
    this.method = head.method;
    this.url = head.target;
    this.headers = headerObject(head.headers);
    this.rawHeaders = head.headers;
    this.httpVersionMinor = head.minor;
    this.httpVersion = head.minor === 1 ? '1.1' : '1.0';
    this.socket = socket;
    // A request without a body is complete; its stream ends when somebody reads it (ending
    // it here scheduled a tick per request, ~1 µs, for a stream most requests never read).
    if (head.framing.kind === 'none') this.complete = true;
  }

  override _read(): void {
    if (this.#paused) {
      this.#paused = false;
      this.exchange.resume();
    }
    if (this.#attached) return;
    this.#attached = true;
    if (this.exchange.head.framing.kind === 'none') {
      this.push(null);
      return;
    }
    this.exchange.onBody({
      data: (chunk) => {
        if (this.push(chunk)) return true;
        this.#paused = true;
        return false;
      },
      end: (trailers) => {
        for (let k = 0; k + 1 < trailers.length; k += 2)
          this.trailers[(trailers[k] ?? '').toLowerCase()] = trailers[k + 1] ?? '';
        this.complete = true;
        this.push(null);
      },
    });
  }

  /** The connection failed before the request ended. */
  abort(error: Error): void {
    if (this.complete && this.readableEnded) {
      this.destroy();
      return;
    }
    this.aborted = true;
    this.emit('aborted');
    this.destroy(error);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // As node:http's IncomingMessage: the error is only reported to someone listening.
    callback(error !== null && this.listenerCount('error') > 0 ? error : null);
  }
}
