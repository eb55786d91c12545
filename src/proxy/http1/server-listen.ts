/**
 * Starting the raw HTTP/1.1 server (server.ts has the connection): on sockets
 * accepted elsewhere ({@link serveHttp1}, for the proxy's own listeners) or on
 * a net/tls server of its own ({@link createHttp1Server}), with one interval
 * per server checking every connection's timeouts.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Http1ServerConnection, type Http1ServerOptions, type ServerState } from './server.js';
import { DEFAULT_LIMITS } from './types.js';

/** An HTTP/1.1 server: a net.Server or tls.Server whose connections are served by this module. */
export interface Http1Server {
  readonly server: net.Server;
  /** Open connections (for draining). */
  readonly connections: number;
  listen(port: number, host: string): Promise<net.AddressInfo>;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

function stateFor(options: Http1ServerOptions): ServerState {
  return {
    options,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 300_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    maxReadAhead: options.maxReadAheadBytes ?? 64 * 1024,
    connections: new Set(),
    now: Date.now(),
    draining: false,
  };
}

/**
 * Serves HTTP/1.1 on sockets accepted elsewhere (a listener of the proxy's own): returns the
 * function to call per socket and a stop function for the timeout interval.
 */
export function serveHttp1(options: Http1ServerOptions): {
  accept: (socket: net.Socket) => void;
  stop: () => void;
  /** Closes the connections waiting for a next request (busy ones finish first). */
  closeIdle: () => void;
  /** Closes every connection now. */
  closeAll: () => void;
  /** Closes idle connections now and the others after their current response (a closing server). */
  drain: () => void;
  readonly connections: number;
} {
  const state = stateFor(options);
  // The timeout interval runs while there are connections: a server that is closed, or never
  // listened (it is handed sockets), holds no timer, and one handed a socket later has one again.
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    state.now = Date.now();
    for (const c of state.connections) c.tick(state.now);
    if (state.connections.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    accept(socket) {
      if (timer === undefined) {
        state.now = Date.now();
        timer = setInterval(check, options.checkIntervalMs ?? 1000);
        timer.unref();
      }
      state.connections.add(new Http1ServerConnection(socket, state));
    },
    drain() {
      state.draining = true;
      this.closeIdle();
    },
    closeAll() {
      for (const c of state.connections) c.socket.destroy();
    },
    closeIdle() {
      for (const c of state.connections) if (c.idle) c.end();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      for (const c of state.connections) c.socket.destroy();
    },
    get connections() {
      return state.connections.size;
    },
  };
}

/**
 * Creates an HTTP/1.1 server; with `tls` options a TLS server (each secure connection is
 * served once its handshake completed).
 */
export function createHttp1Server(
  options: Http1ServerOptions & { readonly tls?: tls.TlsOptions },
): Http1Server {
  const served = serveHttp1(options);
  const server =
    options.tls === undefined
      ? net.createServer({ noDelay: true, allowHalfOpen: true }, served.accept)
      : tls.createServer({ allowHalfOpen: true, ...options.tls }, served.accept);
  return {
    server,
    get connections() {
      return served.connections;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as net.AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        served.stop();
      });
    },
  };
}
