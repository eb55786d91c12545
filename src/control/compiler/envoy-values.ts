/**
 * Small builders for Envoy value shapes in their decoded plain-object form
 * (docs/xds-contract.md): Durations, FractionalPercents, Any, cluster names.
 */
import { EXTENSION_TYPE_URLS } from '../../xds/index.js';

/** A proto Duration. */
export interface ProtoDuration {
  readonly seconds: string;
  readonly nanos: number;
}

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  ns: 0.000001,
};

/** Parses an Istio duration (`1h2m3.5s`, `250ms`) into milliseconds. */
export function durationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|ns)/g))
    total += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 0);
  return total;
}

/** Milliseconds → proto Duration. */
export function protoDuration(ms: number): ProtoDuration {
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

/** Istio duration text → proto Duration. */
export function durationOf(text: string): ProtoDuration {
  return protoDuration(durationMs(text));
}

/** Istio's percentage (a double 0–100) → FractionalPercent per million, as Istio translates it. */
export function fractionalPercent(percent: number): { numerator: number; denominator: 'MILLION' } {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** `outbound|<port>|<subset>|<host>` (Istio's cluster naming). */
export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${String(port)}|${subset}|${host}`;
}

/** `inbound|<port>||` */
export function inboundClusterName(port: number): string {
  return `inbound|${String(port)}||`;
}

/** A router http filter (always last). */
export const ROUTER_FILTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': EXTENSION_TYPE_URLS.router },
} as const;

/** SDS reference to a secret delivered over ADS. */
export function sdsSecret(name: string): {
  name: string;
  sds_config: { ads: Record<string, never> };
} {
  return { name, sds_config: { ads: {} } };
}

/** The SDS name of the workload certificate and the trust bundle (Istio's names). */
export const SECRET_DEFAULT = 'default';
export const SECRET_ROOTCA = 'ROOTCA';
