/** The HTTP/1.1 client's public types (client.ts): how it connects and what it hands back. */
import type * as net from 'node:net';
import type { PalisadeError } from '../../errors/index.js';
import type { HeaderList, Http1Limits, ResponseHead } from './types.js';

/**
 * How the pool opens a connection (a plain or TLS socket; it is used once connected). Pass
 * `onread` on to `net.connect` / `tls.connect`: the connection then reads into buffers of its
 * own, without the socket's Readable (no per-read buffer, `data` event and read-ahead tick).
 * A connector that leaves it out still works: the connection then reads the `data` events.
 */
export type Connector = (onread: net.OnReadOpts) => net.Socket;

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
