/**
 * Retry and timeout as a handler around one dispatch (undici's
 * lib/handler/retry-handler.js): {@link forward} sends a routed request to
 * its cluster — circuit breaker, fault delay/abort, overall timeout, then
 * attempts, each picking a host through the cluster layer (avoiding the
 * last one), dispatching on the endpoint layer's pool and deciding by
 * retry-policy.ts whether the outcome is retried (with back-off) or relayed.
 * The response is relayed with the route's and virtual host's header
 * operations, the CORS headers and a sticky-session cookie; a trailers-only
 * gRPC answer is re-sent as headers then trailers.
 *
 * A request body is retried only when small enough to buffer (Envoy's
 * per-request buffer limit, 64 KiB): it streams to the first attempt and is
 * kept for the retries.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { str } from '../../xds/index.js';
import { PEER_METADATA_FIELDS, PEER_METADATA_HEADER } from '../../telemetry/index.js';
import { forwardedResponseHeaders, relayedTrailers } from '../forwarded-headers.js';
import type { HeaderOps } from '../envoy-values.js';
import { responseRecord } from '../http1/dispatcher.js';
import { fieldValue } from '../http1/server-exchange.js';
import { headerRecord } from '../../policy/evaluation.js';
import { takeTrailersOnlyStatus } from '../h2-downstream.js';
import type { UpstreamController, UpstreamHandler } from '../h2-upstream.js';
import { proxyFailure, type ProxyFailure } from '../http/proxy-failure.js';
import type { Exchange, ReplayableBody } from '../http/types.js';
import type { ClusterManager, ResolvedCluster } from './cluster.js';
import type { EndpointConnector } from './endpoint.js';
import { admitRequest, endpointKey, observeOutcome, releaseRequest } from './load-balancer.js';
import { backoffMs, mayRetry, retriable, type RetryPolicy } from './retry-policy.js';
import { applyResponseHeaderOps, type RouteMatch } from './router.js';
import type { FaultRoll } from './filters.js';

/** No fields to add to a forwarded response head. */
const NO_FIELDS: readonly string[] = [];

const noHeaderOps = (ops: HeaderOps): boolean => ops.add.length === 0 && ops.remove.length === 0;

/** Request bodies up to this size are kept for retries (Envoy's default per-request buffer limit). */
export const RETRY_BUFFER_LIMIT = 65_536;

/** Answers `ex` with a failure (a started response is reset instead). */
export function answerFailure(ex: Exchange, failure: ProxyFailure): void {
  if (ex.sink.headersSent) {
    ex.sink.destroy();
    return;
  }
  ex.reply(
    failure.status,
    failure.body,
    { 'x-palisade-response-flags': failure.flags },
    failure.grpcStatus,
  );
}

/** One routed request ready for its cluster. */
export interface ForwardRequest {
  readonly ex: Exchange;
  readonly match: RouteMatch;
  readonly cluster: ResolvedCluster;
  readonly retry: RetryPolicy;
  /** The upstream head (router.ts); `x-envoy-attempt-count` is set on it for retries. */
  readonly headers: OutgoingHttpHeaders;
  readonly path: string;
  readonly fault: FaultRoll;
  readonly cors: OutgoingHttpHeaders | undefined;
  /** RING_HASH/MAGLEV: the request's hash and a generated sticky-session cookie. */
  readonly hash: number | undefined;
  readonly setCookie: string | undefined;
  /** HTTP/2 to the upstream (cluster protocol options, or downstream h2 with USE_DOWNSTREAM). */
  readonly h2: boolean;
  /** SNI to send (the cluster's `sni`), overriding the Host header. */
  readonly servername: string | undefined;
  /** Istio's metadata exchange with a mesh upstream: the server's peer, when vouched for. */
  readonly peer?: ((headers: Record<string, string | string[] | undefined>) => void) | undefined;
  /** Called once when the exchange ends: status, flags, upstream host, attempts. */
  readonly finish: (status: number, flags: string, upstream: string, attempts: number) => void;
}

/** The layers {@link forward} uses. */
export interface ForwardLayers {
  readonly clusters: ClusterManager;
  readonly connector: EndpointConnector;
}

export function forward(layers: ForwardLayers, r: ForwardRequest): void {
  const { ex, cluster, retry } = r;
  const { sink } = ex;
  if (!admitRequest(cluster.policy, cluster.state)) {
    const failure = proxyFailure('PAL_ERR_PROXY_OVERFLOW');
    answerFailure(ex, failure);
    r.finish(failure.status, failure.flags, '', 0);
    return;
  }
  let finished = false;
  const finish = (status: number, flags: string, upstream: string, attempts: number): void => {
    if (finished) return;
    finished = true;
    releaseRequest(cluster.state);
    r.finish(status, flags, upstream, attempts);
  };
  const fail = (failure: ProxyFailure, upstream: string, attempts: number): void => {
    answerFailure(ex, failure);
    finish(failure.status, failure.flags, upstream, attempts);
  };
  const replay: ReplayableBody | undefined =
    ex.hasBody && retry.numRetries > 0 ? ex.replayable(RETRY_BUFFER_LIMIT) : undefined;
  const canRetry = (): boolean =>
    retry.numRetries > 0 && (replay === undefined ? !ex.hasBody : replay.replayable());

  let current: { abort(reason: Error): void } | undefined;
  const onClose = (): void => {
    if (!finished) {
      // Finish first: the aborted attempt's error handler must not answer or record it again.
      finish(sink.statusCode, 'DC', '', 0);
      current?.abort(new Error('downstream closed'));
    }
  };
  sink.on('close', onClose);

  let overallTimer: NodeJS.Timeout | undefined;
  const clear = (): void => {
    if (overallTimer !== undefined) clearTimeout(overallTimer);
  };
  if (r.setCookie !== undefined) sink.appendHeader('set-cookie', r.setCookie);

  const attempt = (n: number, avoid: string | undefined): void => {
    if (finished) return;
    const endpoint = layers.clusters.pick(cluster, avoid, r.hash);
    if (endpoint === undefined) {
      clear();
      fail(proxyFailure('PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM'), '', n);
      return;
    }
    const key = endpointKey(endpoint);
    const agent = layers.clusters.agent(cluster);
    if (agent instanceof Error) {
      clear();
      fail(proxyFailure('PAL_ERR_PROXY_UPSTREAM_TLS', { reason: agent.message }), key, n);
      return;
    }
    if (n > 1) r.headers['x-envoy-attempt-count'] = String(n);
    const state = cluster.state;
    state.activeByEndpoint.set(key, (state.activeByEndpoint.get(key) ?? 0) + 1);
    const done = (): void => {
      state.activeByEndpoint.set(key, Math.max(0, (state.activeByEndpoint.get(key) ?? 1) - 1));
    };
    // The attempt's request: aborting before the pool has started it is remembered.
    let controller: UpstreamController | undefined;
    let abortReason: Error | undefined;
    const upstream = {
      abort(reason: Error): void {
        abortReason ??= reason;
        controller?.abort(reason);
      },
    };
    current = upstream;
    const retryLater = (): void => {
      setTimeout(() => {
        attempt(n + 1, key);
      }, backoffMs(n));
    };
    const perTry =
      retry.perTryMs !== undefined && retry.perTryMs > 0
        ? setTimeout(() => {
            upstream.abort(new Error('per-try timeout'));
          }, retry.perTryMs)
        : undefined;
    /** True while the response body is forwarded (false: none yet, or discarded). */
    let forwarding = false;
    let responded = false;
    let status = 502;
    let responseFlags = '-';
    /** The status fields of a trailers-only gRPC answer, re-sent as trailers. */
    let trailersOnly: Record<string, string | string[]> | undefined;
    const onError = (error: Error): void => {
      if (perTry !== undefined) clearTimeout(perTry);
      if (responded) {
        // Reset after the response started: the downstream sees the reset too.
        if (forwarding) sink.destroy();
        return;
      }
      done();
      if (finished) return;
      observeOutcome(cluster.policy, state, key, undefined);
      const naming = agent !== undefined && secureNamingFailed(error);
      const retryable = !naming && canRetry() && retriable(retry, { kind: 'reset' });
      if (retryable && mayRetry(retry, n)) {
        retryLater();
        return;
      }
      clear();
      // Envoy: UF for the failed connection, plus URX when retries were exhausted on it.
      fail(
        naming
          ? proxyFailure('PAL_ERR_PROXY_UPSTREAM_TLS', {
              reason: error.message,
              connecting: true,
              retried: n > 1,
            })
          : proxyFailure('PAL_ERR_PROXY_UPSTREAM_CONNECT', {
              retried: n > 1,
              exhausted: retryable,
            }),
        key,
        n,
      );
    };
    /**
     * The response's status and gRPC status: a retry, or the response goes downstream (false).
     * Both `onResponseStart` and `onResponseHead` begin with it.
     */
    const retriedOn = (c: UpstreamController, statusCode: number, grpc: unknown): boolean => {
      controller = c;
      responded = true;
      if (perTry !== undefined) clearTimeout(perTry);
      done();
      status = statusCode;
      observeOutcome(cluster.policy, state, key, status);
      const retriableStatus =
        canRetry() &&
        retriable(retry, {
          kind: 'response',
          status,
          grpcStatus: grpc === undefined ? undefined : Number(grpc),
        });
      if (retriableStatus && mayRetry(retry, n) && !finished) {
        retryLater();
        return true;
      }
      // Retries exhausted: Envoy forwards the last response and flags URX.
      if (retriableStatus) responseFlags = 'URX';
      clear();
      return finished;
    };
    /** Writes the response head from a header record, with the route's and filters' changes. */
    const writeRecord = (upstreamHeaders: Record<string, string | string[] | undefined>): void => {
      // The peer's metadata stays on the mesh hop.
      const out: OutgoingHttpHeaders = forwardedResponseHeaders(
        upstreamHeaders,
        PEER_METADATA_FIELDS,
      );
      applyResponseHeaderOps(out, r.match);
      // The CORS filter sets its headers over the app's (Envoy's encodeHeaders).
      if (r.cors !== undefined) Object.assign(out, r.cors);
      // A generated sticky-session cookie goes out beside the app's own cookies.
      if (r.setCookie !== undefined) {
        const own = out['set-cookie'];
        out['set-cookie'] = [
          ...(Array.isArray(own) ? own : own === undefined ? [] : [own]),
          r.setCookie,
        ];
      }
      trailersOnly = takeTrailersOnlyStatus(out);
      sink.writeHead(status, out);
      forwarding = true;
    };
    const handler: UpstreamHandler = {
      onRequestStart(c) {
        controller = c;
        if (abortReason !== undefined) c.abort(abortReason);
      },
      onResponseHead(c, head) {
        // Forwarded as received when nothing changes it but hop-by-hop fields and the peer's
        // metadata (no header record, no second list); otherwise the record path below.
        const grpc = fieldValue(head.headers, 'grpc-status');
        const forwardable =
          sink.forwardHead !== undefined &&
          grpc === undefined &&
          r.cors === undefined &&
          r.setCookie === undefined &&
          noHeaderOps(r.match.entry.responseHeaders) &&
          noHeaderOps(r.match.host.responseHeaders);
        if (!forwardable) {
          handler.onResponseStart?.(c, head.status, responseRecord(head.headers), head.reason);
          return;
        }
        if (retriedOn(c, head.status, grpc)) return;
        if (r.peer !== undefined) {
          const claim = fieldValue(head.headers, PEER_METADATA_HEADER);
          const seen = headerRecord();
          if (claim !== undefined) seen[PEER_METADATA_HEADER] = claim;
          r.peer(seen);
        }
        if (sink.forwardHead?.(head, PEER_METADATA_FIELDS, NO_FIELDS) === true) {
          forwarding = true;
          return;
        }
        // The sink could not take the head as it came (fields set before it): the record path.
        writeRecord(responseRecord(head.headers));
      },
      onResponseStart(c, statusCode, upstreamHeaders) {
        if (retriedOn(c, statusCode, upstreamHeaders['grpc-status'])) return;
        r.peer?.(upstreamHeaders);
        writeRecord(upstreamHeaders);
      },
      onResponseData(c, chunk) {
        if (!forwarding) return;
        if (sink.destroyed) {
          c.abort(new Error('downstream closed'));
          return;
        }
        if (!sink.write(chunk)) {
          c.pause();
          sink.once('drain', () => {
            c.resume();
          });
        }
      },
      onResponseEnd(_c, trailers) {
        if (!forwarding) return;
        forwarding = false;
        const relayed = relayedTrailers(trailersOnly, trailers);
        if (relayed !== undefined) {
          sink.addTrailers(relayed);
          ex.noteGrpcStatus(relayed);
        }
        // Finished just below: its close listener would have nothing to do.
        sink.removeListener('close', onClose);
        sink.end();
        finish(status, responseFlags, key, n);
      },
      onResponseError(_c, error) {
        onError(error);
      },
    };
    const pool = layers.connector.dispatcher(
      cluster.name,
      endpoint,
      agent,
      str(r.headers['host']),
      r.h2,
    );
    try {
      pool.dispatch(
        {
          method: ex.head.method,
          path: r.path,
          headers: r.headers as Record<string, string | string[]>,
          body: !ex.hasBody
            ? null
            : replay === undefined
              ? ex.body()
              : n === 1
                ? replay.first
                : replay.replay(),
          // undici takes SNI from the Host header unless told: the cluster's `sni` wins.
          ...(r.servername === undefined ? {} : { servername: r.servername }),
        },
        handler,
      );
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
    }
  };

  const go = (): void => {
    if (r.fault.abort !== undefined) {
      clear();
      fail(r.fault.abort, '', 0);
      return;
    }
    // Started when the router gets the request, i.e. after a fault delay (Envoy's filter order).
    if (retry.timeoutMs > 0)
      overallTimer = setTimeout(() => {
        // Answer first: the aborted attempt's error handler then sees `finished` (else 503 UF).
        fail(proxyFailure('PAL_ERR_PROXY_TIMEOUT'), '', 0);
        current?.abort(new Error('request timeout'));
      }, retry.timeoutMs);
    attempt(1, undefined);
  };
  if (r.fault.delayMs !== undefined) setTimeout(go, r.fault.delayMs);
  else go();
}

/**
 * True when a TLS connection failed secure naming: the peer presented an
 * identity the cluster does not allow. Never retried (another host of the
 * same service would be the same impostor or the same misconfiguration).
 * Recognised by the error's code (upstream-tls.ts), not its text.
 */
function secureNamingFailed(error: Error): boolean {
  const coded = (e: unknown): boolean =>
    (e as { code?: unknown } | undefined)?.code === 'PAL_ERR_PEER_IDENTITY_MISMATCH';
  return coded(error) || coded(error.cause);
}
