/**
 * Palisade's own request/response types: what the router, filters, cluster
 * and endpoint layers of the proxy speak (docs/proxy.md "Layers"). A request
 * is a parsed head plus a body stream; a response goes to a {@link ResponseSink}.
 * The HTTP transport under them (node:http and node:http2 today, a raw-socket
 * HTTP/1.1 server later) only has to produce these, so replacing it touches
 * no layer above it.
 *
 * node:http's `ServerResponse` and node:http2's `Http2ServerResponse` are
 * structurally {@link ResponseSink}s, so the current transports hand their
 * responses up without an adapter (no allocation per request).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ResponseHead as UpstreamResponseHead } from '../http1/types.js';

/** Request header fields as parsed (lower-case names; repeated fields as arrays, set-cookie always). */
export type RequestHeaders = IncomingHttpHeaders;
/** Response header fields to send. */
export type ResponseHeaders = OutgoingHttpHeaders;
/** Header fields as an upstream client returns them. */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** Where a request goes: its authority and origin-form path, the port it names (or its default). */
export interface RequestTarget {
  /** `host[:port]` as the client sent it (absolute-form URL, or Host / :authority). */
  readonly authority: string;
  /** The host without the port (IPv6 without brackets for CONNECT targets). */
  readonly host: string;
  readonly port: number;
  /** Origin-form path with query, after the request-head normalisation of its HCM. */
  readonly path: string;
}

/** What routing needs of a request (route-table.ts matches on exactly this). */
export interface RouteRequest {
  readonly authority: string;
  readonly path: string;
  readonly headers: RequestHeaders;
}

/** The parsed head of a downstream request. */
export interface RequestHead extends RouteRequest {
  readonly method: string;
  /** `HTTP/1.1` or `HTTP/2`. */
  readonly protocol: string;
  /** The downstream peer's address (source-IP hashing, access log). */
  readonly remoteAddress: string | undefined;
}

/**
 * Where a response goes. Writing returns false when the caller must wait
 * for `drain`; `close` fires when the downstream goes away (finished or not).
 */
export interface ResponseSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  statusCode: number;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  appendHeader(name: string, value: string | readonly string[]): unknown;
  writeHead(status: number, headers?: ResponseHeaders): unknown;
  /**
   * The raw-socket transport's sink only: forwards an HTTP/1.1 upstream's response head as
   * received (its bytes copied, hop-by-hop fields and the `remove` ones dropped, names
   * lower-cased, `add` appended, the reason phrase the status's own). False when it cannot
   * (fields set before, a connection to close): the caller then uses `writeHead`.
   */
  forwardHead?(
    head: UpstreamResponseHead,
    remove: ReadonlySet<string>,
    add: readonly string[],
  ): boolean;
  /** Writes a body chunk; false asks the caller to wait for `drain`. */
  write(chunk: Buffer): boolean;
  addTrailers(trailers: Record<string, string | string[]>): void;
  // Two signatures (not `body?`): node's end(callback?) overload must stay assignable.
  end(): unknown;
  // eslint-disable-next-line @typescript-eslint/unified-signatures
  end(body: string): unknown;
  destroy(error?: Error): unknown;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

/** A request body: streamed to the first attempt, replayed (when small enough) to retries. */
export interface RequestBody {
  /** False for a request without a body (no content-length/transfer-encoding; END_STREAM on h2 HEADERS). */
  readonly present: boolean;
  readonly stream: Readable;
}

/**
 * One downstream request/response exchange as the layers see it. The
 * transport creates it (http/node-exchange.ts for node:http and node:http2);
 * local replies, body replay for retries and the gRPC status relayed are
 * transport concerns the layers reach only through it.
 */
export interface Exchange {
  readonly head: RequestHead;
  readonly sink: ResponseSink;
  /** True for a request with a body. */
  readonly hasBody: boolean;
  /** True for gRPC (`content-type: application/grpc…`): local replies carry the status in trailers. */
  readonly grpc: boolean;
  /** The downstream connection (per-connection rate-limit buckets): the socket, or the h2 session. */
  readonly connection: object;
  /** The live body stream. */
  body(): Readable;
  /** The body streamed to the first attempt and kept up to `limit` bytes for retries. */
  replayable(limit: number): ReplayableBody;
  /** Answers locally (gRPC: HTTP 200 with the status in trailers; `grpcStatus` overrides the mapping). */
  reply(
    status: number,
    body: string,
    headers: Readonly<Record<string, string>>,
    grpcStatus?: number,
  ): void;
  /** Notes the gRPC status relayed in trailers (or trailers-only headers), for metrics. */
  noteGrpcStatus(fields: Readonly<Record<string, unknown>>): void;
  /** The gRPC status sent to the client, when one was. */
  sentGrpcStatus(): number | undefined;
}

/** A request body streamed to the first attempt and kept (up to a limit) for retries. */
export interface ReplayableBody {
  readonly first: Readable;
  replayable(): boolean;
  replay(): Readable;
}
