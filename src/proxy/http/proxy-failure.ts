/**
 * The one place a proxy failure becomes a response (STYLE.md §4, linkerd's
 * edge "rescue"): each `PAL_ERR_PROXY_*` code maps to its HTTP status, its
 * Envoy response flags (access log `%RESPONSE_FLAGS%`, `x-palisade-response-flags`)
 * and the gRPC status a gRPC client gets. Layers report a code; none writes
 * a status of its own, and none branches on error message text.
 *
 * The HTTP → gRPC mapping is Envoy's `Grpc::Utility::httpToGrpcStatus`
 * (source/common/grpc/status.cc), gRPC's own table (`grpcStatusOfHttp`, src/xds).
 */
import { grpcStatusOfHttp } from '../../xds/index.js';
import type { ErrorCode } from '../../errors/index.js';

/** The proxy's failure codes (src/errors/codes-proxy.ts). */
export type ProxyFailureCode = Extract<ErrorCode, `PAL_ERR_PROXY_${string}`>;

/** How a failure is answered. */
export interface ProxyFailure {
  readonly code: ProxyFailureCode;
  readonly status: number;
  /** Envoy response flags, comma-separated (`UF,URX`). */
  readonly flags: string;
  /** The status a gRPC request gets in its trailers (the HTTP status is then 200). */
  readonly grpcStatus: number;
  readonly body: string;
}

/** What a layer knows beyond the code: a configured status, the reason text, retries spent. */
export interface ProxyFailureDetail {
  /** The configured status (rate limit, fault abort, request-head rejection). */
  readonly status?: number;
  /** The configured gRPC status (fault abort `grpc_status`, rate limit). */
  readonly grpcStatus?: number;
  /** The reason, for UF: the TLS error; for DPE: the rejection body. */
  readonly reason?: string;
  /** True when retries were spent on this failure (Envoy adds URX and says "retried"). */
  readonly retried?: boolean;
  /** True when the retry policy would have retried it but retries ran out (URX). */
  readonly exhausted?: boolean;
  /** True when the TLS failure happened on a connection attempt (handshake), not before one. */
  readonly connecting?: boolean;
}

const RESET = 'upstream connect error or disconnect/reset before headers.';

/** Envoy's HTTP status → gRPC status for local replies (gRPC's own mapping). */
export const grpcStatusForHttp: (status: number) => number = grpcStatusOfHttp;

/** Status, flags and body of `code` (Envoy's wording, so clients and tests see what Envoy sends). */
function answer(
  code: ProxyFailureCode,
  d: ProxyFailureDetail,
): { status: number; flags: string; body: string } {
  switch (code) {
    case 'PAL_ERR_PROXY_BAD_REQUEST':
      return { status: d.status ?? 400, flags: 'DPE', body: d.reason ?? 'Bad Request' };
    case 'PAL_ERR_PROXY_NO_ROUTE':
      return { status: 404, flags: 'NR', body: '' };
    case 'PAL_ERR_PROXY_BLACKHOLE':
      return { status: 502, flags: 'NR', body: '' };
    case 'PAL_ERR_PROXY_NO_CLUSTER':
      return { status: 503, flags: 'NC', body: 'no healthy upstream' };
    case 'PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM':
      return { status: 503, flags: 'UH', body: 'no healthy upstream' };
    case 'PAL_ERR_PROXY_OVERFLOW':
      return { status: 503, flags: 'UO', body: `${RESET} reset reason: overflow` };
    case 'PAL_ERR_PROXY_UPSTREAM_CONNECT':
      return {
        status: 503,
        flags: d.exhausted === true ? 'UF,URX' : 'UF',
        body: `${RESET} ${d.retried === true ? 'retried and the latest ' : ''}reset reason: connection failure`,
      };
    case 'PAL_ERR_PROXY_UPSTREAM_TLS':
      return {
        status: 503,
        flags: 'UF',
        // A connection refused by the handshake (secure naming) is a reset; no usable SVID is not.
        body:
          d.connecting === true
            ? `${RESET} ${d.retried === true ? 'retried and the latest ' : ''}reset reason: TLS error: ${d.reason ?? ''}`
            : `${RESET} TLS error: ${d.reason ?? ''}`,
      };
    case 'PAL_ERR_PROXY_TIMEOUT':
      return { status: 504, flags: 'UT', body: 'upstream request timeout' };
    case 'PAL_ERR_PROXY_RATE_LIMITED':
      return { status: d.status ?? 429, flags: 'RL', body: 'local_rate_limited' };
    case 'PAL_ERR_PROXY_FAULT_ABORT':
      // A grpc_status abort answers with HTTP 200 and that status (Envoy's fault filter).
      return {
        status: d.grpcStatus === undefined ? (d.status ?? 503) : 200,
        flags: 'FI',
        body: 'fault filter abort',
      };
    case 'PAL_ERR_PROXY_UPGRADE_REFUSED':
      return { status: 403, flags: 'UPE', body: '' };
  }
}

/** The response for a proxy failure: HTTP status, response flags, gRPC status and body. */
export function proxyFailure(
  code: ProxyFailureCode,
  detail: ProxyFailureDetail = {},
): ProxyFailure {
  const { status, flags, body } = answer(code, detail);
  return { code, status, flags, body, grpcStatus: detail.grpcStatus ?? grpcStatusForHttp(status) };
}
