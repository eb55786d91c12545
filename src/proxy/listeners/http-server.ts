/**
 * The HTTP/1.1 server factory of the listeners (docs/proxy.md "Listeners"):
 * inbound chains, gateway listeners and capture chains hand their accepted
 * (and, for TLS, decrypted) connections to a server made here. This is the
 * one seam where the HTTP/1.1 transport is chosen: the raw-socket transport
 * (src/proxy/http1), which replaced node:http in this function without
 * touching the listeners that call it.
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Http1AnyRequest } from '../h2-downstream.js';
import type { Http1Sink } from '../http/http1-exchange.js';
import { createRawHttpServer, type RawHttpServer } from '../http/http1-server.js';
import {
  answerHttp1Failure,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
} from '../request-head.js';

/** What a listener does with the requests and upgrades of its HTTP/1.1 connections. */
export interface HttpHandlers {
  readonly request: (req: Http1AnyRequest, res: http.ServerResponse | Http1Sink) => void;
  readonly upgrade?: (req: Http1AnyRequest, socket: Duplex, head: Buffer) => void;
  readonly connect?: (req: Http1AnyRequest, socket: net.Socket, head: Buffer) => void;
}

/** The server a listener hands its connections to. */
export type HandedOffHttpServer = RawHttpServer;

/** Options of {@link createHttpServer}. */
export interface HttpServerOptions {
  /** Idle keep-alive connections close after this (Node's default 5 s when absent). */
  readonly keepAliveTimeout?: number;
}

/**
 * An HTTP/1.1 server for a listener: the raw-socket transport's (issue 22
 * replaced node:http's here). `listen` on it, or hand it accepted connections
 * with `emit('connection', socket)` (it needs no 'listening' for its
 * timeouts, as node:http's did). Request-head limits (size, headers timeout) are the proxy's
 * (src/proxy/request-head.ts); parse errors are answered as Envoy does. A
 * CONNECT without a `connect` handler closes its connection.
 */
export function createHttpServer(
  handlers: HttpHandlers,
  options: HttpServerOptions = {},
): HandedOffHttpServer {
  return createRawHttpServer(
    { ...handlers, parseError: answerHttp1Failure },
    {
      headersTimeoutMs: REQUEST_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: options.keepAliveTimeout ?? 5_000,
      limits: { maxHeadBytes: MAX_REQUEST_HEADER_BYTES },
    },
  );
}
