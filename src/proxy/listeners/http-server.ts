/**
 * The HTTP/1.1 server factory of the listeners (docs/proxy.md "Listeners"):
 * inbound chains, gateway listeners and capture chains hand their accepted
 * (and, for TLS, decrypted) connections to a server made here. This is the
 * one seam where the HTTP/1.1 transport is chosen — a faster server (the
 * raw-socket transport, src/proxy/http1) replaces node:http in this function
 * without touching the listeners that call it.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Http1AnyRequest } from '../h2-downstream.js';
import type { Http1Sink } from '../http/http1-exchange.js';
import { createRawHttpServer, type RawHttpServer } from '../http/http1-server.js';
import { http1Enabled } from '../http1/dispatcher.js';
import {
  answerHttp1Failure,
  answerParseError,
  CONNECTION_CHECK_INTERVAL_MS,
  enforceHeadersTimeout,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
} from '../request-head.js';
import { handedOff } from './listener-manager.js';

/** What a listener does with the requests and upgrades of its HTTP/1.1 connections. */
export interface HttpHandlers {
  readonly request: (req: Http1AnyRequest, res: http.ServerResponse | Http1Sink) => void;
  readonly upgrade?: (req: Http1AnyRequest, socket: Duplex, head: Buffer) => void;
  readonly connect?: (req: Http1AnyRequest, socket: net.Socket, head: Buffer) => void;
}

/** The server a listener hands its connections to (node:http's, or the raw-socket transport's). */
export type HandedOffHttpServer = http.Server | RawHttpServer;

/** Options of {@link createHandedOffHttpServer}. */
export interface HttpServerOptions {
  /** Idle keep-alive connections close after this (Node's default 5 s when absent). */
  readonly keepAliveTimeout?: number;
}

/**
 * An HTTP/1.1 server for a listener: the raw-socket transport's, or node:http's
 * when issue 22's migration switch asks for it (`PALISADE_HTTP1=node`).
 * Request-head limits (size, headers timeout) are the proxy's
 * (src/proxy/request-head.ts); parse errors are answered as Envoy does. A
 * CONNECT without a `connect` handler closes its connection.
 */
export function createHttpServer(
  handlers: HttpHandlers,
  options: HttpServerOptions = {},
): HandedOffHttpServer {
  if (http1Enabled('server'))
    return createRawHttpServer(
      { ...handlers, parseError: answerHttp1Failure },
      {
        headersTimeoutMs: REQUEST_HEADERS_TIMEOUT_MS,
        keepAliveTimeoutMs: options.keepAliveTimeout ?? 5_000,
        limits: { maxHeadBytes: MAX_REQUEST_HEADER_BYTES },
      },
    );
  const server = http.createServer(
    {
      headersTimeout: REQUEST_HEADERS_TIMEOUT_MS,
      requestTimeout: 0,
      maxHeaderSize: MAX_REQUEST_HEADER_BYTES,
      // Node checks its headers timeout on this interval: a slow client is closed at most
      // this long after the timeout, not up to 30 s (Node's default) later.
      connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
      ...(options.keepAliveTimeout === undefined
        ? {}
        : { keepAliveTimeout: options.keepAliveTimeout }),
    },
    handlers.request,
  );
  const { upgrade, connect } = handlers;
  if (upgrade !== undefined) server.on('upgrade', upgrade);
  if (connect !== undefined) server.on('connect', connect);
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    answerParseError(error, socket);
  });
  enforceHeadersTimeout(server, REQUEST_HEADERS_TIMEOUT_MS);
  return server;
}

/**
 * An HTTP/1.1 server that never listens: a listener hands it connections with
 * `emit('connection', socket)`.
 */
export function createHandedOffHttpServer(
  handlers: HttpHandlers,
  options: HttpServerOptions = {},
): HandedOffHttpServer {
  return handedOff(createHttpServer(handlers, options));
}
