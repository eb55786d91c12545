/**
 * Envoy's HTTP local rate limit filter (`envoy.filters.http.local_ratelimit`,
 * LocalRateLimit v3), as Istio users configure it: a token bucket
 * (`max_tokens`, `tokens_per_fill` every `fill_interval`, starting full) in
 * the HCM's filter config applies to every route; a route's
 * `typed_per_filter_config` entry replaces it for that route with a bucket of
 * its own. The limiter only runs for the `filter_enabled` share of requests
 * and only rejects for the `filter_enforced` share — both default to 0 %
 * when absent, as in Envoy. A rejected request gets `status` (429) with body
 * `local_rate_limited`, `x-envoy-ratelimited: true` and
 * `response_headers_to_add`; a limited but unenforced one goes on with
 * `request_headers_to_add_when_not_enforced`. Buckets live per accepted
 * config object (a new config starts full), per process or, with
 * `local_rate_limit_per_downstream_connection`, per connection. Descriptors,
 * stages and cluster-wide sharing are not implemented: NACKed.
 */
import { enumNumber, list, rec, str } from '../xds/index.js';
import {
  applyCompiledHeaderOps,
  chance,
  compileHeaderOps,
  durationOrZeroMs as durationMs,
  fraction,
  type HeaderOps,
} from './envoy-values.js';
import { isH2, type AnyRequest } from './h2-downstream.js';

export const LOCAL_RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';

type R = Record<string, unknown>;

const FIELDS = [
  '@type',
  'stat_prefix',
  'status',
  'token_bucket',
  'filter_enabled',
  'filter_enforced',
  'request_headers_to_add_when_not_enforced',
  'response_headers_to_add',
  'local_rate_limit_per_downstream_connection',
  'enable_x_ratelimit_headers',
  'rate_limited_as_resource_exhausted',
  // Defaults only (checked below).
  'descriptors',
  'stage',
  'vh_rate_limits',
];

/** Problems with a LocalRateLimit config at `at` (empty when the proxy enforces all of it). */
export function localRateLimitProblems(config: R, at: string): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(config)) {
    const value = config[key];
    // oneof discriminators (protobufjs `oneofs: true`) name a sibling field.
    if (typeof value === 'string' && value in config && value !== key) continue;
    if (!FIELDS.includes(key)) problems.push(`${at}: unsupported field ${key}`);
  }
  if (list(config['descriptors']).length > 0)
    problems.push(`${at}.descriptors: rate-limit descriptors are not implemented`);
  if (Number(config['stage'] ?? 0) !== 0) problems.push(`${at}.stage: only stage 0 is implemented`);
  const vh = str(config['vh_rate_limits'], 'OVERRIDE');
  if (vh !== 'OVERRIDE' && vh !== '0')
    problems.push(`${at}.vh_rate_limits: only OVERRIDE is implemented`);
  const headers = str(config['enable_x_ratelimit_headers'], 'OFF');
  if (headers !== 'OFF' && headers !== 'DRAFT_VERSION_03' && headers !== '0' && headers !== '1')
    problems.push(`${at}.enable_x_ratelimit_headers: unknown value ${headers}`);
  const status = rec(config['status'])['code'];
  if (status !== undefined) {
    const code = enumNumber('envoy.type.v3.StatusCode', status) ?? 0;
    if (code < 200 || code > 599)
      problems.push(`${at}.status: ${JSON.stringify(status)} is not an HTTP status`);
  }
  if (config['token_bucket'] !== undefined) {
    const bucket = rec(config['token_bucket']);
    if (Number(bucket['max_tokens'] ?? 0) < 1)
      problems.push(`${at}.token_bucket.max_tokens: must be at least 1`);
    if (durationMs(bucket['fill_interval']) <= 0)
      problems.push(`${at}.token_bucket.fill_interval: must be positive`);
  }
  return problems;
}

/** What the filter decided for one request. */
export type RateLimitVerdict =
  | {
      readonly kind: 'limited';
      readonly status: number;
      /** Headers of the local reply (`x-envoy-ratelimited`, `response_headers_to_add`, x-ratelimit-*). */
      readonly headers: Record<string, string>;
      /** gRPC status for a gRPC request (RESOURCE_EXHAUSTED when configured, else from the HTTP status). */
      readonly grpcStatus: number | undefined;
    }
  | {
      readonly kind: 'pass';
      /** Headers to add to the forwarded request (limited but not enforced). */
      readonly requestHeaders: Record<string, string>;
      /** x-ratelimit-* headers for the response, when enabled. */
      readonly responseHeaders: Record<string, string>;
    };

interface Bucket {
  tokens: number;
  lastFill: number;
}

/**
 * A LocalRateLimit config compiled when its HCM or route is accepted. The limiter keys its
 * token buckets by this object: a bucket lives exactly as long as its compiled config.
 */
export interface RateLimitConfig {
  /** `token_bucket`; without one the filter does nothing (Envoy). */
  readonly bucket:
    { readonly max: number; readonly perFill: number; readonly intervalMs: number } | undefined;
  /** `filter_enabled` and `filter_enforced` as shares of requests (0 when absent, as Envoy). */
  readonly enabledShare: number;
  readonly enforcedShare: number;
  readonly perConnection: boolean;
  /** `enable_x_ratelimit_headers: DRAFT_VERSION_03`. */
  readonly xRateLimitHeaders: boolean;
  readonly headersWhenNotEnforced: HeaderOps;
  readonly responseHeaders: HeaderOps;
  /** `status` (429 when absent or not an HTTP status). */
  readonly status: number;
  /** `rate_limited_as_resource_exhausted`: gRPC RESOURCE_EXHAUSTED instead of the mapped status. */
  readonly resourceExhausted: boolean;
}

/** Compiles an accepted LocalRateLimit config (localRateLimitProblems has checked it). */
export function compileRateLimit(config: R): RateLimitConfig {
  const spec = config['token_bucket'];
  const bucket = rec(spec);
  const perFill = rec(bucket['tokens_per_fill'])['value'];
  const draft = str(config['enable_x_ratelimit_headers']);
  const code = enumNumber('envoy.type.v3.StatusCode', rec(config['status'])['code']) ?? 0;
  return {
    bucket:
      spec === undefined
        ? undefined
        : {
            max: Number(bucket['max_tokens'] ?? 1),
            perFill: perFill === undefined ? 1 : Number(perFill),
            intervalMs: durationMs(bucket['fill_interval']),
          },
    enabledShare: fraction(rec(config['filter_enabled'])['default_value']),
    enforcedShare: fraction(rec(config['filter_enforced'])['default_value']),
    perConnection: config['local_rate_limit_per_downstream_connection'] === true,
    xRateLimitHeaders: draft === 'DRAFT_VERSION_03' || draft === '1',
    headersWhenNotEnforced: compileHeaderOps(
      config['request_headers_to_add_when_not_enforced'],
      [],
    ),
    responseHeaders: compileHeaderOps(config['response_headers_to_add'], []),
    status: code >= 200 ? code : 429,
    resourceExhausted: config['rate_limited_as_resource_exhausted'] === true,
  };
}

/** A process's local rate limiter; `now` is a monotonic clock in ms. */
export interface LocalRateLimiter {
  /**
   * Runs the filter for one request: `filter` is the HCM's filter config, `route` the
   * route's per-filter config (either may be undefined); `connection` keys per-connection
   * buckets. Undefined when no bucket applies.
   */
  check(
    filter: RateLimitConfig | undefined,
    route: RateLimitConfig | undefined,
    connection: object,
  ): RateLimitVerdict | undefined;
}

/** The per-route config of `route` for the local rate limit filter, compiled, if any. */
export function routeRateLimit(route: R | undefined): RateLimitConfig | undefined {
  const config = rec(route?.['typed_per_filter_config'])[LOCAL_RATE_LIMIT_FILTER];
  return config === undefined ? undefined : compileRateLimit(rec(config));
}

/** The local rate limit filter's config in an HCM's `http_filters`, compiled, if it runs there. */
export function hcmRateLimit(hcm: R | undefined): RateLimitConfig | undefined {
  const filter = list(hcm?.['http_filters']).find((f) => f['name'] === LOCAL_RATE_LIMIT_FILTER);
  return filter === undefined ? undefined : compileRateLimit(rec(filter['typed_config']));
}

/** Header values as one string each (repeated ones joined with `,`). */
function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
  );
}

/** Creates a limiter; buckets are created on first use of each compiled config. */
export function createLocalRateLimiter(
  now: () => number = () => performance.now(),
): LocalRateLimiter {
  const shared = new WeakMap<object, Bucket>();
  const perConnection = new WeakMap<object, WeakMap<object, Bucket>>();

  const bucketOf = (
    config: RateLimitConfig,
    spec: NonNullable<RateLimitConfig['bucket']>,
    connection: object,
  ): Bucket => {
    let buckets = shared;
    if (config.perConnection) {
      let own = perConnection.get(connection);
      if (own === undefined) {
        own = new WeakMap();
        perConnection.set(connection, own);
      }
      buckets = own;
    }
    let bucket = buckets.get(config);
    if (bucket === undefined) {
      bucket = { tokens: spec.max, lastFill: now() };
      buckets.set(config, bucket);
    }
    const fills = Math.floor((now() - bucket.lastFill) / spec.intervalMs);
    if (fills > 0) {
      bucket.tokens = Math.min(spec.max, bucket.tokens + fills * spec.perFill);
      bucket.lastFill += fills * spec.intervalMs;
    }
    return bucket;
  };

  return {
    check(filter, route, connection) {
      // The filter must run in the HCM for a per-route config to mean anything (Envoy).
      if (filter === undefined) return undefined;
      const config = route ?? filter;
      const spec = config.bucket;
      if (spec === undefined) return undefined;
      if (!chance(config.enabledShare)) return undefined;
      const bucket = bucketOf(config, spec, connection);
      const allowed = bucket.tokens >= 1;
      if (allowed) bucket.tokens -= 1;
      const responseHeaders: Record<string, string> = {};
      if (config.xRateLimitHeaders) {
        const resetMs = spec.intervalMs - (now() - bucket.lastFill);
        responseHeaders['x-ratelimit-limit'] = String(spec.max);
        responseHeaders['x-ratelimit-remaining'] = String(Math.floor(bucket.tokens));
        responseHeaders['x-ratelimit-reset'] = String(Math.max(0, Math.ceil(resetMs / 1000)));
      }
      if (allowed) return { kind: 'pass', requestHeaders: {}, responseHeaders };
      if (!chance(config.enforcedShare)) {
        const requestHeaders: Record<string, string | string[] | undefined> = {};
        applyCompiledHeaderOps(requestHeaders, config.headersWhenNotEnforced);
        return { kind: 'pass', requestHeaders: flatten(requestHeaders), responseHeaders };
      }
      const headers: Record<string, string | string[] | undefined> = {
        ...responseHeaders,
        'x-envoy-ratelimited': 'true',
      };
      applyCompiledHeaderOps(headers, config.responseHeaders);
      return {
        kind: 'limited',
        status: config.status,
        headers: flatten(headers),
        grpcStatus: config.resourceExhausted ? 8 : undefined,
      };
    },
  };
}

/** The downstream connection of a request (per-connection buckets): the socket, or the HTTP/2 session. */
export function downstreamConnection(req: AnyRequest): object {
  if (isH2(req)) return req.stream.session ?? req;
  return req.socket;
}
