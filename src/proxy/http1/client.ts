/**
 * An HTTP/1.1 client: one keep-alive connection pool per upstream origin on
 * node:net / node:tls sockets, one request in flight per connection (no
 * pipelining upstream, as Envoy and undici's default). It gives what undici
 * gave: a connection and pending-request limit (the numbers a circuit breaker
 * reads), an idle-connection timeout, an upstream-response timeout (request
 * written → response head), backpressure both ways, chunked request and
 * response bodies with trailers, 1xx responses, close-delimited responses, and
 * one retry on a fresh connection for a request that never reached the
 * upstream because the reused keep-alive connection it was written to was
 * already closed (RFC 9112 §9.3.1: a client MAY retry a request whose
 * connection closed before any response, when it is idempotent or known not
 * to have been processed; undici and Envoy's `reset-before-request` do the
 * same).
 */
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { PalisadeError } from '../../errors/index.js';
import type {
  ClientRequest,
  Connector,
  Http1PoolOptions,
  RequestBody,
  ResponseHandler,
} from './client-types.js';
import { PendingBody, PoolConnection, type Pending, type PoolHost } from './pool-connection.js';
import { DEFAULT_LIMITS, type Http1Limits } from './types.js';

export type {
  ClientRequest,
  Connector,
  Http1PoolOptions,
  RequestBody,
  ResponseHandler,
} from './client-types.js';

/**
 * TLS options with `onread`: tls.connect takes it for a socket it dials (Node's docs), though
 * @types/node's `ConnectionOptions` does not name it.
 */
export function withOnread(
  options: tls.ConnectionOptions,
  onread: net.OnReadOpts,
): tls.ConnectionOptions {
  const out: tls.ConnectionOptions & { onread: net.OnReadOpts } = { ...options, onread };
  return out;
}

/** A keep-alive connection pool for one upstream. */
export class Http1Pool implements PoolHost {
  readonly #connect: Connector;
  readonly #maxConnections: number;
  readonly #maxPending: number;
  readonly #idleTimeoutMs: number;
  readonly #responseTimeoutMs: number;
  readonly #limits: Http1Limits;
  readonly #all = new Set<PoolConnection>();
  /** Idle connected connections, most recently used last (reused first: LIFO keeps few warm). */
  readonly #idle: PoolConnection[] = [];
  readonly #pending: Pending[] = [];
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** Coarse clock for the timeouts (advanced by the check interval). */
  now = Date.now();

  constructor(options: Http1PoolOptions) {
    this.#connect = options.connect;
    this.#maxConnections = options.maxConnections ?? 64;
    this.#maxPending = options.maxPending ?? 1024;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#responseTimeoutMs = options.responseTimeoutMs ?? 15_000;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#timer = setInterval(() => {
      this.#tick();
    }, options.checkIntervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Open connections, requests waiting for one: what a circuit breaker reads. */
  get stats(): { connections: number; idle: number; pending: number } {
    return { connections: this.#all.size, idle: this.#idle.length, pending: this.#pending.length };
  }

  /**
   * Sends a request. Fails with PAL_ERR_HTTP1_POOL_OVERFLOW (through `onError`) when every
   * connection is busy and the pending queue is full.
   */
  request(req: ClientRequest, handler: ResponseHandler): RequestBody {
    const body = new PendingBody(this, req.body);
    const p: Pending = { req, handler, body, retried: false };
    if (this.#closed) {
      queueMicrotask(() => {
        handler.onError(new PalisadeError('PAL_ERR_HTTP1_POOL_OVERFLOW', 'the pool is closed'));
      });
      return body;
    }
    this.#dispatch(p);
    return body;
  }

  #dispatch(p: Pending): void {
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      idle.assign(p);
      return;
    }
    if (this.#pending.length >= this.#maxPending) {
      queueMicrotask(() => {
        p.handler.onError(
          new PalisadeError(
            'PAL_ERR_HTTP1_POOL_OVERFLOW',
            'too many requests waiting for a connection',
          ),
        );
      });
      return;
    }
    this.#pending.push(p);
    let opening = 0;
    for (const c of this.#all) if (!c.connected) opening += 1;
    if (this.#all.size < this.#maxConnections && opening < this.#pending.length)
      this.#all.add(new PoolConnection(this, this.#connect, this.#limits));
  }

  /** @internal A connection is connected and free. */
  connectionReady(c: PoolConnection): void {
    if (this.#closed) {
      c.socket.destroy();
      return;
    }
    let next = this.#pending.shift();
    while (next?.body.aborted === true) next = this.#pending.shift();
    if (next !== undefined) c.assign(next);
    else this.#idle.push(c);
  }

  /** @internal */
  connectionGone(c: PoolConnection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i !== -1) this.#idle.splice(i, 1);
    // A connection that failed to open: the first waiting request fails with it, the rest retry.
    if (!c.connected && this.#pending.length > 0 && !c.busy) {
      const p = this.#pending.shift();
      p?.handler.onError(
        new PalisadeError(
          'PAL_ERR_HTTP1_UPSTREAM_RESET',
          'upstream connection failed',
          c.lastError === undefined ? {} : { cause: c.lastError },
        ),
      );
    }
    if (this.#pending.length > 0 && this.#all.size < this.#maxConnections && !this.#closed)
      this.#all.add(new PoolConnection(this, this.#connect, this.#limits));
  }

  /** @internal A stale connection's request, sent again on a fresh connection. */
  retry(p: Pending): void {
    this.#pending.unshift(p);
    if (this.#all.size < this.#maxConnections && !this.#closed)
      this.#all.add(new PoolConnection(this, this.#connect, this.#limits));
  }

  /** @internal */
  dropPending(b: PendingBody): void {
    const i = this.#pending.findIndex((p) => p.body === b);
    if (i !== -1) this.#pending.splice(i, 1);
  }

  #tick(): void {
    this.now = Date.now();
    for (const c of this.#all) {
      if (c.waitingSince !== 0 && this.now - c.waitingSince > this.#responseTimeoutMs) c.timeout();
      else if (!c.busy && c.connected && this.now - c.idleSince > this.#idleTimeoutMs)
        c.socket.destroy();
    }
  }

  /** Closes every connection; waiting requests fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const p of this.#pending.splice(0))
      p.handler.onError(new PalisadeError('PAL_ERR_HTTP1_POOL_OVERFLOW', 'the pool is closed'));
    for (const c of this.#all) c.socket.destroy();
  }
}
