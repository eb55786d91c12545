/**
 * The HTTP/1.1 server factory of the listeners (docs/proxy.md "Listeners"):
 * inbound chains, gateway listeners and capture chains hand their accepted
 * (and, for TLS, decrypted) connections to a server made here. This is the
 * one seam where the HTTP/1.1 transport is chosen — a faster server (the
 * raw-socket transport, src/proxy/http1) replaces node:http in this function
 * without touching the listeners that call it.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import {
  answerParseError,
  CONNECTION_CHECK_INTERVAL_MS,
  enforceHeadersTimeout,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
} from '../request-head.js';
import { handedOff } from './listener-manager.js';

/** What a listener does with the requests and upgrades of its HTTP/1.1 connections. */
export interface HttpHandlers {
  readonly request: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  readonly upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** Options of {@link createHandedOffHttpServer}. */
export interface HttpServerOptions {
  /** Idle keep-alive connections close after this (Node's default 5 s when absent). */
  readonly keepAliveTimeout?: number;
}

/**
 * An HTTP/1.1 server that never listens: a listener hands it connections with
 * `emit('connection', socket)`. Request-head limits (size, headers timeout)
 * are the proxy's (src/proxy/request-head.ts); parse errors are answered as
 * Envoy does.
 */
export function createHandedOffHttpServer(
  handlers: HttpHandlers,
  options: HttpServerOptions = {},
): http.Server {
  const server = http.createServer(
    {
      headersTimeout: REQUEST_HEADERS_TIMEOUT_MS,
      requestTimeout: 0,
      maxHeaderSize: MAX_REQUEST_HEADER_BYTES,
      connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
      ...(options.keepAliveTimeout === undefined
        ? {}
        : { keepAliveTimeout: options.keepAliveTimeout }),
    },
    handlers.request,
  );
  const upgrade = handlers.upgrade;
  if (upgrade !== undefined) server.on('upgrade', upgrade);
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    answerParseError(error, socket);
  });
  enforceHeadersTimeout(server, REQUEST_HEADERS_TIMEOUT_MS);
  return handedOff(server);
}
