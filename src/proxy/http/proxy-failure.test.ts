// Every PAL_ERR_PROXY_* code maps to one HTTP status, response flags and gRPC
// status (Envoy's httpToGrpcStatus), and the mapping covers the registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ERROR_CODES } from '../../errors/index.js';
import { proxyFailure, type ProxyFailureCode } from './proxy-failure.js';

test('each proxy code has its status, flags and gRPC status', () => {
  const expected: Record<ProxyFailureCode, [number, string, number]> = {
    PAL_ERR_PROXY_BAD_REQUEST: [400, 'DPE', GrpcStatus.INTERNAL],
    PAL_ERR_PROXY_NO_ROUTE: [404, 'NR', GrpcStatus.UNIMPLEMENTED],
    PAL_ERR_PROXY_BLACKHOLE: [502, 'NR', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_NO_CLUSTER: [503, 'NC', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM: [503, 'UH', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_OVERFLOW: [503, 'UO', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_UPSTREAM_CONNECT: [503, 'UF', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_UPSTREAM_TLS: [503, 'UF', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_TIMEOUT: [504, 'UT', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_RATE_LIMITED: [429, 'RL', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_FAULT_ABORT: [503, 'FI', GrpcStatus.UNAVAILABLE],
    PAL_ERR_PROXY_UPGRADE_REFUSED: [403, 'UPE', GrpcStatus.PERMISSION_DENIED],
  };
  const registered = Object.keys(ERROR_CODES).filter((c) => c.startsWith('PAL_ERR_PROXY_'));
  assert.deepEqual(registered.sort(), Object.keys(expected).sort());
  for (const [code, [status, flags, grpc]] of Object.entries(expected)) {
    const f = proxyFailure(code as ProxyFailureCode);
    assert.deepEqual([f.status, f.flags, f.grpcStatus], [status, flags, grpc], code);
  }
});

test('details: configured statuses, retries exhausted, TLS reasons, gRPC overrides', () => {
  const exhausted = proxyFailure('PAL_ERR_PROXY_UPSTREAM_CONNECT', {
    retried: true,
    exhausted: true,
  });
  assert.equal(exhausted.flags, 'UF,URX');
  assert.match(exhausted.body, /retried and the latest reset reason: connection failure$/);
  const naming = proxyFailure('PAL_ERR_PROXY_UPSTREAM_TLS', {
    reason: 'secure naming: x',
    connecting: true,
  });
  assert.match(naming.body, /reset reason: TLS error: secure naming: x$/);
  assert.equal(proxyFailure('PAL_ERR_PROXY_RATE_LIMITED', { status: 503 }).status, 503);
  const rl = proxyFailure('PAL_ERR_PROXY_RATE_LIMITED', {
    grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED,
  });
  assert.equal(rl.grpcStatus, GrpcStatus.RESOURCE_EXHAUSTED);
  // A grpc_status fault abort answers HTTP 200 with that status in trailers.
  const abort = proxyFailure('PAL_ERR_PROXY_FAULT_ABORT', { grpcStatus: GrpcStatus.UNAVAILABLE });
  assert.deepEqual([abort.status, abort.grpcStatus], [200, GrpcStatus.UNAVAILABLE]);
  assert.equal(proxyFailure('PAL_ERR_PROXY_FAULT_ABORT', { status: 418 }).status, 418);
});
