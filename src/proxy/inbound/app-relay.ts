/**
 * The inbound response relay: a request allowed by the chain's filters goes
 * to the local app (`inbound|<port>||`) and the app's answer comes back —
 * status, headers, body with back-pressure, trailers (gRPC), and Envoy's 503
 * when the app cannot be reached before headers.
 *
 * Keep-alive pools to the app: the raw-socket HTTP/1.1 client
 * (src/proxy/http1); one multiplexed session for HTTP/2 apps (the inbound cluster's
 * HttpProtocolOptions ask for it on gRPC/HTTP2 ports).
 */
import type * as http from 'node:http';
import { createHttp1Origin, responseRecord } from '../http1/dispatcher.js';
import { hasField } from '../http1/server-exchange.js';
import { Http1Sink } from '../http/http1-exchange.js';
import type { ResponseEdits } from './inbound-telemetry.js';
import { TupleMap } from '../tuple-map.js';
import { forwardedResponseHeaders, relayedTrailers } from '../forwarded-headers.js';
import {
  noteGrpcStatus,
  requestHasBody,
  takeTrailersOnlyStatus,
  writeChunk,
  type AnyRequest,
  type AnyResponse,
} from '../h2-downstream.js';
import {
  createH2Origin,
  type UpstreamController,
  type UpstreamDispatcher,
  type UpstreamHandler,
} from '../h2-upstream.js';
import type { ResponseHead } from '../http1/types.js';

/** How the relay reports: response headers on their way out, the end, a failure before headers. */
export interface RelayHooks {
  /** Adds headers to the response (peer metadata) before they are written. */
  responseHeaders(headers: http.OutgoingHttpHeaders): void;
  /** The same as edits of a head forwarded as received (an HTTP/1.1 app to an HTTP/1.1 client). */
  responseEdits(): ResponseEdits;
  /** The response ended (trailers relayed). */
  ended(status: number): void;
  /** The app could not be reached, or reset before headers. */
  failed(error: Error): void;
}

/** Keep-alive pools to the local app's endpoints. */
export interface AppRelay {
  relay(
    target: { readonly host: string; readonly port: number; readonly h2: boolean },
    req: AnyRequest,
    res: AnyResponse,
    headers: http.OutgoingHttpHeaders,
    hooks: RelayHooks,
  ): void;
  close(): Promise<void>;
}

/**
 * One request relayed to the app: the pool's handler, as one object (a literal of six
 * methods and three closures per request before).
 */
class Relayed implements UpstreamHandler {
  readonly #req: AnyRequest;
  readonly #res: AnyResponse;
  readonly #hooks: RelayHooks;
  #ended = false;
  #upstream: UpstreamController | undefined;
  #trailersOnly: Record<string, string | string[]> | undefined;
  readonly #onClose = (): void => {
    if (!this.#ended) this.#upstream?.abort(new Error('downstream closed'));
  };

  constructor(req: AnyRequest, res: AnyResponse, hooks: RelayHooks) {
    this.#req = req;
    this.#res = res;
    this.#hooks = hooks;
    res.once('close', this.#onClose);
  }

  onRequestStart(controller: UpstreamController): void {
    this.#upstream = controller;
  }

  onResponseStart(
    controller: UpstreamController,
    statusCode: number,
    upstreamHeaders: Record<string, string | string[] | undefined>,
  ): void {
    const out: http.OutgoingHttpHeaders = forwardedResponseHeaders(upstreamHeaders);
    this.#hooks.responseHeaders(out);
    this.#trailersOnly = takeTrailersOnlyStatus(out);
    this.#res.writeHead(statusCode, out);
    this.#upstream = controller;
  }

  onResponseHead(controller: UpstreamController, head: ResponseHead): void {
    // An HTTP/1.1 client: the app's head is copied as received, with the same edits
    // (no header record, no second list). A trailers-only gRPC status needs the record.
    const edits = this.#hooks.responseEdits();
    const res = this.#res;
    if (
      res instanceof Http1Sink &&
      !hasField(head.headers, 'grpc-status') &&
      res.forwardHead(head, edits.remove, edits.add)
    ) {
      this.#upstream = controller;
      return;
    }
    this.onResponseStart(controller, head.status, responseRecord(head.headers));
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    if (!writeChunk(this.#res, chunk)) {
      controller.pause();
      this.#res.once('drain', () => {
        controller.resume();
      });
    }
  }

  onResponseEnd(
    _controller: UpstreamController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.#ended = true;
    const res = this.#res;
    res.removeListener('close', this.#onClose);
    const relayed = relayedTrailers(this.#trailersOnly, trailers);
    if (relayed !== undefined) {
      res.addTrailers(relayed);
      noteGrpcStatus(this.#req, relayed);
    }
    res.end();
    this.#hooks.ended(res.statusCode);
  }

  onResponseError(_controller: UpstreamController, error: Error): void {
    this.#ended = true;
    const res = this.#res;
    res.removeListener('close', this.#onClose);
    if (!res.headersSent) this.#hooks.failed(error);
    else res.destroy();
  }
}

export function createAppRelay(): AppRelay {
  const pools = new TupleMap<UpstreamDispatcher>(3);
  const poolFor = (host: string, port: number, h2: boolean): UpstreamDispatcher => {
    const key = [host, port, h2];
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = h2
        ? createH2Origin({ host, port })
        : createHttp1Origin({ host, port, maxConnections: 512 });
      pools.set(key, pool);
    }
    return pool;
  };
  return {
    relay(target, req, res, headers, hooks) {
      const relayed = new Relayed(req, res, hooks);
      poolFor(target.host, target.port, target.h2).dispatch(
        {
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers: headers as Record<string, string | string[]>,
          body: requestHasBody(req) ? req : null,
        },
        relayed,
      );
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.destroy()));
      pools.clear();
    },
  };
}
