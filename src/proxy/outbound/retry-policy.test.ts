// The retry policy without processes: retry_on conditions (HTTP, reset and
// gRPC), the num_retries default and the cluster's max_retries cap, timeouts
// and back-off bounds (Envoy's route.v3.RetryPolicy, see retry-policy.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { backoffMs, mayRetry, retriable, retryPolicyOf } from './retry-policy.js';

test('retry_on conditions decide which outcomes are retried', () => {
  const p = retryPolicyOf(
    {
      retry_policy: {
        retry_on: 'gateway-error,retriable-status-codes',
        retriable_status_codes: [418],
      },
    },
    3,
  );
  assert.equal(retriable(p, { kind: 'response', status: 503 }), true);
  assert.equal(
    retriable(p, { kind: 'response', status: 500 }),
    false,
    '500 is not a gateway error',
  );
  assert.equal(retriable(p, { kind: 'response', status: 418 }), true);
  assert.equal(retriable(p, { kind: 'reset' }), true);
  const conflict = retryPolicyOf({ retry_policy: { retry_on: 'retriable-4xx' } }, 3);
  assert.equal(retriable(conflict, { kind: 'response', status: 409 }), true);
  assert.equal(retriable(conflict, { kind: 'reset' }), false);
  const fivexx = retryPolicyOf({ retry_policy: { retry_on: '5xx' } }, 3);
  assert.equal(retriable(fivexx, { kind: 'response', status: 500 }), true);
  assert.equal(retriable(fivexx, { kind: 'response', status: 404 }), false);
});

test('gRPC retry_on names match the grpc-status of a trailers-only answer', () => {
  const p = retryPolicyOf({ retry_policy: { retry_on: 'unavailable,cancelled' } }, 3);
  assert.equal(
    retriable(p, { kind: 'response', status: 200, grpcStatus: GrpcStatus.UNAVAILABLE }),
    true,
  );
  assert.equal(
    retriable(p, { kind: 'response', status: 200, grpcStatus: GrpcStatus.CANCELLED }),
    true,
  );
  assert.equal(
    retriable(p, { kind: 'response', status: 200, grpcStatus: GrpcStatus.INTERNAL }),
    false,
  );
  assert.equal(retriable(p, { kind: 'response', status: 200 }), false);
});

test('num_retries defaults to 1 with retry_on, 0 without, and is capped by max_retries', () => {
  assert.equal(retryPolicyOf({ retry_policy: { retry_on: '5xx' } }, 3).numRetries, 1);
  assert.equal(retryPolicyOf({}, 3).numRetries, 0);
  const capped = retryPolicyOf({ retry_policy: { retry_on: '5xx', num_retries: { value: 5 } } }, 2);
  assert.equal(capped.numRetries, 2);
  assert.deepEqual(
    [1, 2, 3].map((n) => mayRetry(capped, n)),
    [true, true, false],
  );
});

test('timeout defaults to 15 s, 0 disables; per_try_timeout is read', () => {
  assert.equal(retryPolicyOf({}, 3).timeoutMs, 15_000);
  assert.equal(retryPolicyOf({ timeout: { seconds: 0 } }, 3).timeoutMs, 0);
  const p = retryPolicyOf(
    {
      timeout: { seconds: 1, nanos: 500_000_000 },
      retry_policy: { retry_on: '5xx', per_try_timeout: { nanos: 200_000_000 } },
    },
    3,
  );
  assert.deepEqual([p.timeoutMs, p.perTryMs], [1500, 200]);
});

test('back-off is full jitter over 25 ms × 2^(n−1), capped at 250 ms', () => {
  const max = (n: number): number => backoffMs(n, (m) => m - 1);
  assert.deepEqual([1, 2, 3, 4, 5, 10].map(max), [25, 50, 100, 200, 250, 250]);
  assert.equal(
    backoffMs(3, () => 0),
    0,
  );
});
