/**
 * The raw-socket HTTP/1.1 server (src/proxy/http1) as the listeners use a
 * node:http server: a `net.Server` that is fed accepted connections with
 * `emit('connection', socket)` or listens itself, whose requests reach the
 * handler as an {@link Http1Request} and an {@link Http1Sink} (what the
 * handlers read and write of node:http's request and response), with
 * upgrades and CONNECT handed over with the socket and the bytes read after
 * the head, and `closeIdleConnections` / `closeAllConnections` for draining.
 *
 * The only HTTP/1.1 server of the listeners since issue 22 removed node:http's
 * (listeners/http-server.ts is the seam).
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { serveHttp1, type ParseFailure, type Http1Limits } from '../http1/index.js';
import type { ServerExchange } from '../http1/index.js';
import { Http1Request } from './http1-request.js';
import { Http1Sink } from './http1-exchange.js';

/** What the server does with requests, upgrades and CONNECTs. */
export interface Http1Handlers {
  readonly request: (req: Http1Request, res: Http1Sink) => void;
  /** Without it, a request asking for an upgrade is refused (501) and the connection closed. */
  readonly upgrade?: (req: Http1Request, socket: Duplex, head: Buffer) => void;
  /** Without it, a CONNECT closes the connection (as node:http without a 'connect' listener). */
  readonly connect?: (req: Http1Request, socket: net.Socket, head: Buffer) => void;
  /** Answers a request the parser refused; it ends or destroys the socket. */
  readonly parseError: (failure: ParseFailure, socket: Duplex) => void;
}

/** Options of {@link createRawHttpServer}. */
export interface RawHttpServerOptions {
  /** The first head must be complete within this long of the connection's arrival. */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection closes after this long. */
  readonly keepAliveTimeoutMs: number;
  readonly limits?: Partial<Http1Limits>;
}

/** A `net.Server` serving HTTP/1.1 with the raw-socket transport. */
export interface RawHttpServer extends net.Server {
  /** Closes the connections waiting for a next request. */
  closeIdleConnections(): void;
  /** Closes every connection now. */
  closeAllConnections(): void;
}

function requestOf(ex: ServerExchange): Http1Request {
  return new Http1Request(ex, ex.socket);
}

/** An upgrade or CONNECT request (its head without an exchange): the same request object. */
function handedOverRequest(head: ServerExchange['head'], socket: net.Socket): Http1Request {
  const pseudo = {
    head,
    socket,
    onBody() {
      /* an upgrade's bytes after the head are the tunnel's, handed over with the socket */
    },
    resume() {
      /* nothing is read for the request itself */
    },
  } as unknown as ServerExchange;
  return new Http1Request(pseudo, socket);
}

/** Creates the server; `listen` on it, or hand it accepted sockets with `emit('connection')`. */
export function createRawHttpServer(
  handlers: Http1Handlers,
  options: RawHttpServerOptions,
): RawHttpServer {
  const served = serveHttp1({
    onRequest(ex) {
      const req = requestOf(ex);
      const res = new Http1Sink(ex, (err) => {
        req.abort(err);
      });
      handlers.request(req, res);
    },
    onUpgrade(head, socket, rest) {
      const req = handedOverRequest(head, socket);
      if (head.method === 'CONNECT') {
        if (handlers.connect === undefined) socket.destroy();
        else handlers.connect(req, socket, rest);
        return;
      }
      if (handlers.upgrade === undefined) {
        socket.end(
          'HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
        );
        return;
      }
      handlers.upgrade(req, socket, rest);
    },
    answerParseError(failure, socket) {
      handlers.parseError(failure, socket);
    },
    headersTimeoutFromAccept: true,
    // A client gone (FIN) mid-request is a downstream disconnect (DC), as with node:http.
    abortOnHalfClose: true,
    headersTimeoutMs: options.headersTimeoutMs,
    requestTimeoutMs: 0,
    idleTimeoutMs: options.keepAliveTimeoutMs,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    served.accept(socket);
  }) as RawHttpServer;
  server.closeIdleConnections = () => {
    served.closeIdle();
  };
  server.closeAllConnections = () => {
    served.closeAll();
  };
  // As node:http's close(): idle keep-alive connections close now, busy ones after their
  // response (a replaced inbound chain's connection-level policy applies to new connections).
  const close = server.close.bind(server);
  server.close = (callback?: (error?: Error) => void) => {
    served.drain();
    return close(callback);
  };
  return server;
}
