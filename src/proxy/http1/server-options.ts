/**
 * The options of the raw HTTP/1.1 server (server.ts) and the state its
 * connections share.
 */
import type * as net from 'node:net';
import type { ServerExchange } from './server-exchange.js';
import type { Http1Limits, ParseFailure, RequestHead } from './types.js';

/** Options of `createHttp1Server` / `serveHttp1` (server-listen.ts). */
export interface Http1ServerOptions {
  /** Called once per request, in order; the next pipelined request waits for this one's response. */
  readonly onRequest: (exchange: ServerExchange) => void;
  /**
   * Called for a request that asks for `Upgrade` or is a CONNECT: the socket is handed over with
   * the bytes read after the head. Without it, CONNECT is answered 501 and `Upgrade` is ignored.
   */
  readonly onUpgrade?: (head: RequestHead, socket: net.Socket, rest: Buffer) => void;
  readonly limits?: Partial<Http1Limits>;
  /** Told why a request was refused (for the access log and metrics: Envoy's response code details). */
  readonly onParseError?: (failure: ParseFailure, socket: net.Socket) => void;
  /**
   * Answers a refused request instead of the default (`HTTP/1.1 <status>` with no body, then close);
   * it must end or destroy the socket.
   */
  readonly answerParseError?: (failure: ParseFailure, socket: net.Socket) => void;
  /**
   * Counts the first request's head timeout from the connection's arrival, not its first byte, as
   * Envoy's `request_headers_timeout` does (a client that connects and sends nothing gets 408).
   */
  readonly headersTimeoutFromAccept?: boolean;
  /**
   * A client's half-close (FIN) aborts the request being served and closes, as node:http
   * (`httpAllowHalfOpen` false) and Envoy treat it; by default the requests it sent whole are
   * still answered (RFC 9112 §9.6 allows either).
   */
  readonly abortOnHalfClose?: boolean;
  /** Time from a request's first byte to the end of its head (node:http `headersTimeout`: 60 s) → 408. */
  readonly headersTimeoutMs?: number;
  /** Time from a request's first byte to the end of its body (node:http `requestTimeout`: 300 s; 0: none) → 408. */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** Bytes read ahead (pipelined requests, unread body) before reading pauses (default 64 KiB). */
  readonly maxReadAheadBytes?: number;
  /** How often timeouts are checked (default 1 s; their resolution). */
  readonly checkIntervalMs?: number;
}

/** Server-wide state shared by its connections. */
export interface ServerState {
  readonly options: Http1ServerOptions;
  readonly limits: Http1Limits;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxReadAhead: number;
  readonly connections: Set<ServedConnection>;
  /** A coarse clock, advanced by the check interval (no clock read per request). */
  now: number;
  /** Set when the server is closing: a connection closes after its current response. */
  draining: boolean;
}

/** What the server's interval and drain need of a connection (server.ts implements it). */
export interface ServedConnection {
  readonly socket: net.Socket;
  /** No request being served and no byte of a next head received. */
  readonly idle: boolean;
  /** Checks the connection's timeouts against the coarse clock. */
  tick(now: number): void;
  /** Ends the socket after the writes it holds (turn.ts). */
  end(): void;
}
