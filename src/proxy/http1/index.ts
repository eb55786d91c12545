/**
 * The raw-socket HTTP/1.1 transport (issue 22): RFC 9112 parsing, framing and
 * a server and client on node:net / node:tls, with no node:http objects and no
 * undici, for the proxy's HTTP/1.1 hops (wired under the proxy's layers once
 * its layered structure lands).
 *
 * Its own small types (types.ts):
 * - {@link RequestHead} / {@link ResponseHead}: a parsed head with its bytes (`raw`) and the
 *   offsets of its lines (`lines`), so forwarding copies the received bytes; `headers` is a flat
 *   `[name, value, …]` list in arrival order; `framing` says how the body is delimited.
 * - Bodies flow through callbacks with backpressure: a server exchange hands the request body to
 *   a {@link BodySink} (`data` returns false to pause; `resume()` restarts), and the response is
 *   written with `writeHead`/`forwardHead`, `write` (false → `onDrain`) and `end(chunk, trailers)`.
 *   The client is the mirror: `Http1Pool.request` takes the serialised head and a
 *   {@link ResponseHandler}, and returns a {@link RequestBody} to stream the request body into.
 *
 * How strict the parser is, and where it is stricter than llhttp, is in head-parser.ts; the
 * differential fuzz test against node:http is test/proxy/http1-differential.test.ts.
 */
export {
  DEFAULT_LIMITS,
  type BodyFraming,
  type HeaderList,
  type Http1Limits,
  type ParseFailure,
  type RequestHead,
  type ResponseHead,
} from './types.js';
export { findHeadEnd, isFailure, METHODS, parseRequestHead } from './head-parser.js';
export { parseResponseHead } from './response-head.js';
export { ChunkedDecoder, lastChunk } from './chunked.js';
export {
  buildHead,
  HOP_BY_HOP,
  REASONS,
  serializeHead,
  statusLine,
  type HeadEdits,
} from './serializer.js';
export { ServerExchange, type BodySink, type Http1ServerOptions } from './server.js';
export { createHttp1Server, serveHttp1, type Http1Server } from './server-listen.js';
export {
  Http1Pool,
  withOnread,
  type ClientRequest,
  type Connector,
  type Http1PoolOptions,
  type RequestBody,
  type ResponseHandler,
} from './client.js';
