/**
 * HTTP/2 to upstreams (clusters whose HttpProtocolOptions say
 * `http2_protocol_options`, Istio's compile of `grpc`/`http2` ports and of
 * `h2UpgradePolicy: UPGRADE`): one multiplexed session per origin — h2c with
 * prior knowledge (RFC 9113 §3.3) in plaintext, `h2` by ALPN over TLS with
 * the cluster's SVID and secure-naming check. A session that closes, errors
 * or receives GOAWAY is dropped and the next request opens a new one.
 *
 * `dispatch` has the shape of undici's `Dispatcher.dispatch` (the subset the
 * listeners use), so the request path is the same for HTTP/1.1 pools and
 * HTTP/2 sessions.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { ResponseHead } from './http1/types.js';

/** The request controller (undici's DispatchController subset the listeners use). */
export interface UpstreamController {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Response callbacks (undici's DispatchHandler subset the listeners use). */
export interface UpstreamHandler {
  onRequestStart?(controller: UpstreamController, context: unknown): void;
  onResponseStart?(
    controller: UpstreamController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void;
  /**
   * HTTP/1.1 origins (http1/dispatcher.ts) only: the response head as parsed, instead of
   * {@link onResponseStart}'s record, so a handler can forward it without converting its
   * fields (`responseRecord` gives the record when it needs one).
   */
  onResponseHead?(controller: UpstreamController, head: ResponseHead): void;
  onResponseData?(controller: UpstreamController, chunk: Buffer): void;
  onResponseEnd?(
    controller: UpstreamController,
    trailers: Record<string, string | string[] | undefined>,
  ): void;
  onResponseError?(controller: UpstreamController, error: Error): void;
}

/** One request for {@link UpstreamDispatcher.dispatch}. */
export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable | null;
  readonly servername?: string;
}

/** Something requests can be dispatched to: an undici Pool or an HTTP/2 origin. */
export interface UpstreamDispatcher {
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): unknown;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Where an HTTP/2 origin is and how to reach it. */
export interface H2OriginOptions {
  readonly host: string;
  readonly port: number;
  /** TLS options (SVID, trust bundle, checkServerIdentity); plaintext h2c when absent. */
  readonly tls?: tls.ConnectionOptions | undefined;
  readonly localAddress?: string | undefined;
}

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2); `te` is allowed only as `trailers`. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

/** Response header block without the pseudo-headers. */
function plainHeaders(
  headers: http2.IncomingHttpHeaders,
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) if (name.charCodeAt(0) !== 58) out[name] = headers[name];
  return out;
}

/** An HTTP/2 origin: requests share one session, reopened when it goes away. */
export function createH2Origin(options: H2OriginOptions): UpstreamDispatcher {
  let session: http2.ClientHttp2Session | undefined;
  let closing = false;
  const scheme = options.tls === undefined ? 'http' : 'https';
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const authority = `${scheme}://${host}:${String(options.port)}`;

  const current = (servername: string | undefined): http2.ClientHttp2Session => {
    if (session !== undefined && !session.closed && !session.destroyed) return session;
    const opened = http2.connect(authority, {
      createConnection: () =>
        options.tls === undefined
          ? net.connect({
              host: options.host,
              port: options.port,
              ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
            })
          : tls.connect({
              ...options.tls,
              host: options.host,
              port: options.port,
              ALPNProtocols: ['h2'],
              ...(servername === undefined ? {} : { servername }),
              ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
            }),
    });
    const forget = (): void => {
      if (session === opened) session = undefined;
    };
    opened.on('error', forget);
    opened.on('close', forget);
    opened.on('goaway', forget);
    // An idle session does not keep the process alive; it closes after a minute without streams.
    opened.setTimeout(60_000, () => {
      opened.close();
    });
    opened.unref();
    session = opened;
    return opened;
  };

  return {
    dispatch(request, handler) {
      // An object, not a `let`: callbacks change it, and a let's narrowing would not see that.
      const state = { settled: false };
      const fail = (error: Error): void => {
        if (state.settled) return;
        state.settled = true;
        handler.onResponseError?.(controller, error);
      };
      const live: { stream?: http2.ClientHttp2Stream } = {};
      const controller: UpstreamController = {
        abort(reason) {
          live.stream?.close(http2.constants.NGHTTP2_CANCEL);
          fail(reason);
        },
        pause() {
          live.stream?.pause();
        },
        resume() {
          live.stream?.resume();
        },
      };
      if (closing) {
        fail(new Error('origin closed'));
        return false;
      }
      const out: http2.OutgoingHttpHeaders = {
        ':method': request.method,
        ':path': request.path,
        ':scheme': scheme,
        ':authority': typeof request.headers['host'] === 'string' ? request.headers['host'] : host,
      };
      for (const name in request.headers) {
        if (CONNECTION_SPECIFIC.has(name) || name.charCodeAt(0) === 58) continue;
        const value = request.headers[name];
        if (name === 'te' && value !== 'trailers') continue;
        out[name] = value;
      }
      handler.onRequestStart?.(controller, {});
      if (state.settled) return false;
      let opened: http2.ClientHttp2Stream;
      try {
        opened = current(request.servername).request(out, { endStream: request.body === null });
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
        return false;
      }
      live.stream = opened;
      let trailers: Record<string, string | string[] | undefined> = {};
      opened.on(
        'response',
        (headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => {
          if (!state.settled)
            handler.onResponseStart?.(
              controller,
              headers[':status'] ?? 502,
              plainHeaders(headers),
              '',
            );
        },
      );
      opened.on('data', (chunk: Buffer) => {
        if (!state.settled) handler.onResponseData?.(controller, chunk);
      });
      opened.on('trailers', (headers: http2.IncomingHttpHeaders) => {
        trailers = plainHeaders(headers);
      });
      opened.on('end', () => {
        if (state.settled) return;
        state.settled = true;
        handler.onResponseEnd?.(controller, trailers);
      });
      opened.on('error', (error: Error) => {
        fail(error);
      });
      opened.on('close', () => {
        fail(new Error(`stream reset (HTTP/2 error code ${String(opened.rstCode)})`));
      });
      if (request.body !== null) {
        const body = request.body;
        body.pipe(opened);
        body.on('error', (error) => opened.destroy(error));
      }
      return true;
    },
    close() {
      closing = true;
      const open = session;
      session = undefined;
      return new Promise((resolve) => {
        if (open === undefined || open.closed) resolve();
        else open.close(resolve);
      });
    },
    destroy() {
      closing = true;
      session?.destroy();
      session = undefined;
      return Promise.resolve();
    },
  };
}

/** When a cluster speaks HTTP/2 upstream: always, never, or when the downstream request does. */
export type UpstreamHttp2 = 'always' | 'never' | 'downstream';

/** A cluster's HttpProtocolOptions: explicit HTTP/2 or HTTP/1.1, or the downstream's protocol. */
export function upstreamHttp2Mode(cluster: Record<string, unknown>): UpstreamHttp2 {
  const all = cluster['typed_extension_protocol_options'];
  if (typeof all !== 'object' || all === null) return 'never';
  const options = (all as Record<string, unknown>)[HTTP_PROTOCOL_OPTIONS_KEY];
  if (typeof options !== 'object' || options === null) return 'never';
  const o = options as Record<string, unknown>;
  const explicit = o['explicit_http_config'];
  if (typeof explicit === 'object' && explicit !== null)
    return 'http2_protocol_options' in explicit ? 'always' : 'never';
  return o['use_downstream_protocol_config'] !== undefined ? 'downstream' : 'never';
}

/** True when a request goes upstream over HTTP/2 under `mode`. */
export function usesHttp2(mode: UpstreamHttp2, downstreamH2: boolean): boolean {
  return mode === 'always' || (mode === 'downstream' && downstreamH2);
}

/** The `typed_extension_protocol_options` key of Envoy's upstream HttpProtocolOptions. */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
