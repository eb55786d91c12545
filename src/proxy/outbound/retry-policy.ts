/**
 * A route's retry and timeout policy (route.v3.RouteAction `timeout`,
 * `retry_policy`), compiled with its route before the ACK and decided by pure
 * functions, so the retry handler (retry-handler.ts) holds no policy and
 * retry-policy.test.ts drives it without processes.
 *
 * Envoy semantics: `timeout` default 15 s, 0 disables; `retry_on` 5xx,
 * gateway-error, connect-failure, refused-stream, reset, retriable-4xx (409),
 * retriable-status-codes, and the gRPC conditions of x-envoy-retry-grpc-on
 * (cancelled, deadline-exceeded, resource-exhausted, internal, unavailable);
 * `num_retries` default 1 when `retry_on` is set, capped by the cluster's
 * circuit-breaker `max_retries`; `per_try_timeout`; back-off base 25 ms, cap
 * 10× base, full jitter (router/retry_state_impl.cc).
 */
import { GRPC_STATUS as GrpcStatus } from '../../xds/index.js';
import { randomInt } from 'node:crypto';
import { durationMs } from '../envoy-values.js';

/** A route's retry and timeout settings, typed. */
export interface RetryPolicy {
  readonly timeoutMs: number;
  readonly retryOn: ReadonlySet<string>;
  readonly numRetries: number;
  readonly perTryMs: number | undefined;
  readonly retriableStatusCodes: readonly number[];
}

/** gRPC statuses Envoy's `retry_on` can name (x-envoy-retry-grpc-on). */
const GRPC_RETRY_ON: ReadonlyMap<number, string> = new Map([
  [GrpcStatus.CANCELLED, 'cancelled'],
  [GrpcStatus.DEADLINE_EXCEEDED, 'deadline-exceeded'],
  [GrpcStatus.RESOURCE_EXHAUSTED, 'resource-exhausted'],
  [GrpcStatus.INTERNAL, 'internal'],
  [GrpcStatus.UNAVAILABLE, 'unavailable'],
]);

/** Conditions that retry a reset or connection failure (no response). */
const RESET_CONDITIONS = ['5xx', 'gateway-error', 'connect-failure', 'reset', 'refused-stream'];

/** Every condition `retriable` asks about, as the constants it asks with. */
const CONDITIONS: readonly string[] = [
  ...RESET_CONDITIONS,
  'retriable-4xx',
  'retriable-status-codes',
  ...GRPC_RETRY_ON.values(),
];

/**
 * A condition read from config as the constant string `retriable` looks up: a set holding a
 * string built by `split` compared it char by char on every response (a runtime call, ~0.3 %
 * of an outbound proxy's CPU in a profile); constants compare by identity.
 */
const asConstant = (s: string): string => CONDITIONS.find((c) => c === s) ?? s;

type R = Record<string, unknown>;
const isRecord = (v: unknown): v is R => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A route action's retry and timeout settings before the cluster's `max_retries` cap. */
export type RouteRetry = Omit<RetryPolicy, 'numRetries'> & { readonly asked: number };

/** Compiles a route action's `timeout` and `retry_policy` (once, with its route). */
export function compileRetry(action: R): RouteRetry {
  const retry = isRecord(action['retry_policy']) ? action['retry_policy'] : {};
  const retryOn = typeof retry['retry_on'] === 'string' ? retry['retry_on'] : '';
  return {
    timeoutMs: durationMs(action['timeout']) ?? 15_000,
    retryOn: new Set(
      retryOn
        .split(',')
        .map((s) => asConstant(s.trim()))
        .filter((s) => s !== ''),
    ),
    asked: isRecord(retry['num_retries'])
      ? Number(retry['num_retries']['value'])
      : retryOn === ''
        ? 0
        : 1,
    perTryMs: durationMs(retry['per_try_timeout']),
    retriableStatusCodes: Array.isArray(retry['retriable_status_codes'])
      ? (retry['retriable_status_codes'] as unknown[]).map(Number)
      : [],
  };
}

/** A compiled route retry capped by the cluster's `max_retries`. */
export function capRetries(retry: RouteRetry, maxRetries: number): RetryPolicy {
  return {
    timeoutMs: retry.timeoutMs,
    retryOn: retry.retryOn,
    numRetries: Math.min(retry.asked, maxRetries),
    perTryMs: retry.perTryMs,
    retriableStatusCodes: retry.retriableStatusCodes,
  };
}

/** The retry policy of a route action, capped by the cluster's `max_retries`. */
export function retryPolicyOf(action: R, maxRetries: number): RetryPolicy {
  return capRetries(compileRetry(action), maxRetries);
}

/** What an attempt ended with. */
export type AttemptOutcome =
  | { readonly kind: 'reset' }
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly grpcStatus?: number | undefined;
    };

/** True when the policy's `retry_on` covers the outcome (the retry budget is the caller's). */
export function retriable(policy: RetryPolicy, outcome: AttemptOutcome): boolean {
  const on = policy.retryOn;
  if (outcome.kind === 'reset') return RESET_CONDITIONS.some((c) => on.has(c));
  const { status, grpcStatus } = outcome;
  const grpcName = grpcStatus === undefined ? undefined : GRPC_RETRY_ON.get(grpcStatus);
  if (grpcName !== undefined && on.has(grpcName)) return true;
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  return on.has('retriable-status-codes') && policy.retriableStatusCodes.includes(status);
}

/** True when attempt `n` (1-based) may be followed by another. */
export function mayRetry(policy: RetryPolicy, n: number): boolean {
  return n <= policy.numRetries;
}

/** The back-off before attempt `n + 1`: full jitter over min(250, 25 × 2^(n−1)) ms. */
export function backoffMs(n: number, draw: (max: number) => number = randomInt): number {
  const cap = Math.min(250, 25 * 2 ** (n - 1));
  return draw(cap + 1);
}
