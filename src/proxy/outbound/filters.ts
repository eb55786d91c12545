/**
 * The HTTP filters of the outbound and gateway stacks, in Envoy's filter
 * order (CORS → local rate limit → fault → router): each runs on an
 * {@link Exchange} and either answers it (a {@link FilterStop}) or lets it
 * go on, possibly with headers for the response. The filters' own logic
 * lives in cors.ts, ../local-rate-limit.ts and here (fault); this module
 * only composes them, so a direction (outbound, gateway) enables a filter by
 * naming it in its HCM's `http_filters`, as Envoy does.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { chance } from '../envoy-values.js';
import type { Exchange } from '../http/types.js';
import { proxyFailure, type ProxyFailure } from '../http/proxy-failure.js';
import type { LocalRateLimiter } from '../local-rate-limit.js';
import { corsOutcome } from './cors.js';
import type { HcmConfig } from './hcm-config.js';
import { NO_FAULT } from './fault-config.js';
import type { RouteMatch } from './router.js';

/** A filter answered: a CORS preflight (200 with `headers`) or a failure. */
export type FilterStop =
  | { readonly kind: 'preflight'; readonly headers: OutgoingHttpHeaders }
  | {
      readonly kind: 'failure';
      readonly failure: ProxyFailure;
      readonly headers: Record<string, string>;
    };

/** The request goes on: headers the filters set on whatever response it gets. */
export interface FilterPass {
  readonly kind: 'pass';
  /** CORS headers, set over the upstream's (Envoy's encodeHeaders). */
  readonly cors: OutgoingHttpHeaders | undefined;
}

/**
 * CORS then local rate limit for a routed request. Headers for the
 * response are set on the sink at once (so local replies carry them too);
 * the rate limiter's request headers are added to the request head.
 */
export function runRequestFilters(
  ex: Exchange,
  hcm: HcmConfig | undefined,
  match: RouteMatch,
  limiter: LocalRateLimiter,
  setResponseHeaders: boolean,
): FilterPass | FilterStop {
  let cors: OutgoingHttpHeaders | undefined;
  if (setResponseHeaders) {
    // CORS (before fault and router): preflights from allowed origins are answered here.
    const policy = hcm?.cors === true ? match.entry.cors : undefined;
    const outcome = corsOutcome(policy, ex.head.method, ex.head.headers);
    if (outcome.kind === 'preflight') return { kind: 'preflight', headers: outcome.headers };
    if (outcome.kind === 'response') {
      cors = outcome.headers;
      for (const [name, value] of Object.entries(cors))
        if (value !== undefined) ex.sink.setHeader(name, value);
    }
  }
  // Local rate limit (after CORS, before fault and router).
  const limit = limiter.check(hcm?.rateLimit, match.entry.rateLimit, ex.connection);
  if (limit?.kind === 'limited')
    return {
      kind: 'failure',
      failure: proxyFailure('PAL_ERR_PROXY_RATE_LIMITED', {
        status: limit.status,
        ...(limit.grpcStatus === undefined ? {} : { grpcStatus: limit.grpcStatus }),
      }),
      headers: limit.headers,
    };
  if (limit !== undefined) {
    Object.assign(ex.head.headers, limit.requestHeaders);
    if (setResponseHeaders)
      for (const [name, value] of Object.entries(limit.responseHeaders))
        ex.sink.setHeader(name, value);
  }
  return { kind: 'pass', cors };
}

/** What the fault filter does to one request: a delay first, then maybe an abort. */
export interface FaultRoll {
  readonly delayMs: number | undefined;
  readonly abort: ProxyFailure | undefined;
}

/** Envoy's fault filter (envoy.filters.http.fault, per-route config), only when the HCM runs it. */
export function rollFault(hcm: HcmConfig | undefined, match: RouteMatch): FaultRoll {
  const f = hcm?.fault === true ? match.entry.fault : NO_FAULT;
  const delayMs = f.delayMs !== undefined && chance(f.delayShare) ? f.delayMs : undefined;
  const abort =
    f.abort !== undefined && chance(f.abortShare)
      ? proxyFailure('PAL_ERR_PROXY_FAULT_ABORT', {
          status: f.abort.status,
          ...(f.abort.grpcStatus === undefined ? {} : { grpcStatus: f.abort.grpcStatus }),
        })
      : undefined;
  return { delayMs, abort };
}
