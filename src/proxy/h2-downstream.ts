/**
 * HTTP/2 from downstream clients and the gRPC rules every listener shares.
 *
 * Connections are handed over already accepted (after TLS with ALPN `h2`, or
 * a plaintext connection whose first bytes are the HTTP/2 preface, RFC 9113
 * §3.4) to a node:http2 server that never listens; its compatibility API
 * gives the same request/response objects the HTTP/1.1 handlers take, so one
 * handler serves both protocols. What the handler needs to know about the
 * connection (the verified peer, its addresses, the CONNECT target) is
 * attached per session.
 *
 * A connection whose first bytes were already read (to sniff the preface) is
 * handed over through a stream wrapper: Node 20's HTTP/2 session reads the
 * socket's native handle and would never see bytes put back with unshift().
 *
 * gRPC (gRPC over HTTP/2, PROTOCOL-HTTP2.md): a local reply to a gRPC request
 * is an HTTP 200 whose status travels in `grpc-status`/`grpc-message`
 * trailers, mapped from the HTTP status as Envoy maps it
 * (Grpc::Utility::httpToGrpcStatus); a trailers-only upstream response is
 * re-sent as headers followed by trailers.
 */
import * as http2 from 'node:http2';
import type * as http from 'node:http';
import { Duplex } from 'node:stream';
import type { Http1Request } from './http/http1-request.js';
import type { Http1Sink } from './http/http1-exchange.js';

/**
 * A request on either protocol (the HTTP/1.1 and HTTP/2 compatibility objects share what the
 * listeners use; an {@link Http1Request} is the raw-socket transport's, issue 22).
 */
export type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest | Http1Request;
export type AnyResponse = http.ServerResponse | http2.Http2ServerResponse | Http1Sink;
/** A request that asked for an upgrade or a CONNECT (HTTP/1.1 only). */
export type Http1AnyRequest = http.IncomingMessage | Http1Request;

/**
 * True when a request came over HTTP/2: told by its object, never by the version a
 * request line claims (`GET / HTTP/2.0` on an HTTP/1 connection is not HTTP/2).
 */
export function isH2(req: AnyRequest): req is http2.Http2ServerRequest {
  return 'stream' in req;
}

/** True when `first` starts like the HTTP/2 connection preface `PRI * HTTP/2.0`. */
export function isH2Preface(first: Buffer): boolean {
  return first.length >= 3 && first.toString('latin1', 0, 3) === 'PRI';
}

/** An HTTP/2 server fed with accepted connections; `contextOf` gives what was attached to a request's connection. */
export interface H2Downstream<C> {
  readonly server: http2.Http2Server;
  /** Serves `socket` as HTTP/2; `sniffed`: its first bytes were read and unshifted. */
  accept(socket: Duplex, context: C, sniffed: boolean): void;
  contextOf(req: AnyRequest): C | undefined;
  /** Sends GOAWAY on every session, letting open streams finish. */
  close(): void;
}

/** Creates the HTTP/2 side of a listener; `onRequest` is the listener's HTTP handler. */
export function createH2Downstream<C>(
  onRequest: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): H2Downstream<C> {
  const contexts = new WeakMap<http2.Http2Session, C>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let pending: C | undefined;
  const server = http2.createServer({
    maxHeaderListPairs: 128,
    maxSendHeaderBlockLength: 65_536,
    settings: { maxHeaderListSize: 16_384 },
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    // 'session' is emitted synchronously inside emit('connection'): `pending` is this connection's.
    if (pending !== undefined) contexts.set(session, pending);
    sessions.add(session);
    session.on('close', () => {
      sessions.delete(session);
    });
    session.on('error', () => {
      session.destroy();
    });
    session.setTimeout(300_000, () => {
      session.close();
    });
  });
  server.on('request', (req, res) => {
    // One header for the authority, as HTTP/1.1 requests have it (RFC 9113 §8.3.1).
    req.headers.host ??= req.headers[':authority'];
    onRequest(req, res);
  });
  return {
    server,
    accept(socket, context, sniffed) {
      pending = context;
      try {
        server.emit('connection', sniffed ? readThrough(socket) : socket);
      } finally {
        pending = undefined;
      }
      socket.resume();
    },
    contextOf(req) {
      return 'stream' in req ? contexts.get(req.stream.session as http2.Http2Session) : undefined;
    },
    close() {
      for (const session of sessions) session.close();
    },
  };
}

/** A Duplex over `socket` that reads through its JS stream (unshifted bytes included). */
function readThrough(socket: Duplex): Duplex {
  const wrapped = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!wrapped.push(chunk)) socket.pause();
  });
  socket.on('end', () => wrapped.push(null));
  socket.on('close', () => wrapped.destroy());
  socket.on('error', (error) => wrapped.destroy(error));
  return wrapped;
}

const grpcStatuses = new WeakMap<object, number>();

/** The gRPC status sent to the client for `req` (undefined: none sent, or not gRPC). */
export function sentGrpcStatus(req: AnyRequest): number | undefined {
  return grpcStatuses.get(req);
}

/** Notes the gRPC status in trailers (or trailers-only headers) sent for `req`, for metrics. */
export function noteGrpcStatus(req: AnyRequest, fields: Readonly<Record<string, unknown>>): void {
  const status = fields['grpc-status'];
  if (typeof status === 'string' || typeof status === 'number')
    grpcStatuses.set(req, Number(status));
}

/** `HTTP/2` or `HTTP/1.1`, as Envoy's `%PROTOCOL%` writes it. */
export function protocolOf(req: AnyRequest): string {
  if (isH2(req)) return 'HTTP/2';
  // The common answer as a constant: a concatenation per request was flattened again by the
  // access log's escape check.
  return req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`;
}

/** True for gRPC requests (`content-type: application/grpc[+proto|+json|…]`). */
export function isGrpc(headers: http.IncomingHttpHeaders): boolean {
  return headers['content-type']?.startsWith('application/grpc') === true;
}

/** gRPC status codes by name (grpc/doc/statuscodes.md): one table, with the ADS stream's. */
export { GRPC_STATUS } from '../xds/index.js';

/** Envoy's HTTP → gRPC status mapping for local replies (one home: http/proxy-failure.ts). */
export { grpcStatusForHttp } from './http/proxy-failure.js';
import { grpcStatusForHttp } from './http/proxy-failure.js';

/** `grpc-message` encoding (PROTOCOL-HTTP2.md): bytes outside 0x20–0x7E, and `%`, percent-encoded. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8'))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * A local reply: plain text, or for a gRPC request HTTP 200 with the status
 * in trailers (`grpcStatus` overrides the mapping, e.g. a fault abort's
 * `grpc_status`). `headers` go on either (flags, policy, CORS).
 */
export function localReply(
  req: AnyRequest,
  res: AnyResponse,
  status: number,
  body: string,
  headers: Readonly<Record<string, string>> = {},
  grpcStatus?: number,
): void {
  if (isGrpc(req.headers)) {
    res.writeHead(200, { ...headers, 'content-type': 'application/grpc' });
    const trailers = {
      'grpc-status': String(grpcStatus ?? grpcStatusForHttp(status)),
      'grpc-message': grpcMessage(body),
    };
    noteGrpcStatus(req, trailers);
    res.addTrailers(trailers);
    res.end();
    return;
  }
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

const GRPC_STATUS_FIELDS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

/**
 * A trailers-only gRPC response (its status in the response headers) moves
 * the status fields out of `headers` into the returned trailers, so the
 * response is re-sent as headers then trailers; undefined when it is not one.
 */
export function takeTrailersOnlyStatus(
  headers: Record<string, string | string[] | number | undefined>,
): Record<string, string | string[]> | undefined {
  if (headers['grpc-status'] === undefined) return undefined;
  const trailers: Record<string, string | string[]> = {};
  for (const field of GRPC_STATUS_FIELDS) {
    const value = headers[field];
    if (value !== undefined) trailers[field] = typeof value === 'number' ? String(value) : value;
    Reflect.deleteProperty(headers, field);
  }
  return trailers;
}

/** Writes a body chunk on either protocol's response; false asks the caller to wait for 'drain'. */
export function writeChunk(res: AnyResponse, chunk: Buffer): boolean {
  return 'stream' in res ? res.write(chunk) : res.write(chunk);
}

/** True when the request carries a body (HTTP/1.1 framing headers; HTTP/2: no END_STREAM on its headers). */
export function requestHasBody(req: AnyRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  return req.headers['content-length'] !== undefined
    ? req.headers['content-length'] !== '0'
    : req.headers['transfer-encoding'] !== undefined;
}

export { replayableBody } from './http/replayable-body.js';
