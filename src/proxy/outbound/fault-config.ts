/**
 * A route's fault filter config (envoy.filters.http.fault in its
 * `typed_per_filter_config`), compiled with the route before the ACK;
 * filters.ts rolls it per request when the HCM runs the fault filter.
 */
import { durationMs, fraction } from '../envoy-values.js';

type R = Record<string, unknown>;
const isRecord = (v: unknown): v is R => typeof v === 'object' && v !== null && !Array.isArray(v);
const rec = (v: unknown): R => (isRecord(v) ? v : {});

/** Delay and abort, each with the share of requests it applies to. */
export interface FaultConfig {
  readonly delayMs: number | undefined;
  readonly delayShare: number;
  readonly abort: { readonly status: number; readonly grpcStatus: number | undefined } | undefined;
  readonly abortShare: number;
}

/** No fault (a route without a fault config, or an HCM without the fault filter). */
export const NO_FAULT: FaultConfig = {
  delayMs: undefined,
  delayShare: 0,
  abort: undefined,
  abortShare: 0,
};

/** The fault config of an accepted route. */
export function compileFault(route: R): FaultConfig {
  const perFilter = rec(route['typed_per_filter_config']);
  if (!('envoy.filters.http.fault' in perFilter)) return NO_FAULT;
  const fault = rec(perFilter['envoy.filters.http.fault']);
  const abort = rec(fault['abort']);
  const delay = rec(fault['delay']);
  const hasAbort = abort['http_status'] !== undefined || abort['grpc_status'] !== undefined;
  return {
    delayMs: durationMs(delay['fixed_delay']),
    delayShare: fraction(delay['percentage']),
    abort: hasAbort
      ? {
          status: Number(abort['http_status']),
          grpcStatus: abort['grpc_status'] === undefined ? undefined : Number(abort['grpc_status']),
        }
      : undefined,
    abortShare: fraction(abort['percentage']),
  };
}
