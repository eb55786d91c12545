/**
 * Reading Envoy's common value types on the request path: Duration, FractionalPercent
 * (fault, mirror and rate-limit percentages) and HeaderValueOption lists
 * (route, virtual-host and rate-limit header additions).
 */
import type * as http from 'node:http';
import { randomInt } from 'node:crypto';
import { list, rec, str } from '../xds/index.js';

/** A proto Duration in ms (undefined when absent). */
export function durationMs(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = rec(value);
  return Number(v['seconds'] ?? 0) * 1000 + Number(v['nanos'] ?? 0) / 1e6;
}

/** A Duration in ms, 0 when absent. */
export function durationOrZeroMs(value: unknown): number {
  return durationMs(value) ?? 0;
}

/** A FractionalPercent as a probability in [0, 1]. */
export function fraction(value: unknown): number {
  const v = rec(value);
  const denominators: Record<string, number> = {
    HUNDRED: 100,
    TEN_THOUSAND: 10_000,
    MILLION: 1_000_000,
  };
  const d = denominators[str(v['denominator'], 'HUNDRED')] ?? 100;
  return Math.min(1, Number(v['numerator'] ?? 0) / d);
}

/** True with probability `p` (CSPRNG-backed; the draw has a resolution of one in a million). */
export function chance(p: number): boolean {
  return p >= 1 || (p > 0 && randomInt(1_000_000) < p * 1_000_000);
}

function headerValueOf(
  entry: Record<string, unknown>,
): { key: string; value: string; append: boolean } | undefined {
  const header = rec(entry['header']);
  if (typeof header['key'] !== 'string') return undefined;
  const action = entry['append_action'];
  const append =
    action === 'APPEND_IF_EXISTS_OR_ADD' ||
    (action === undefined && rec(entry['append'])['value'] === true);
  return { key: header['key'].toLowerCase(), value: str(header['value']), append };
}

/** Header operations compiled: names to remove (lower-cased), then headers to add. */
export interface HeaderOps {
  readonly remove: readonly string[];
  readonly add: readonly {
    readonly key: string;
    readonly value: string;
    readonly append: boolean;
  }[];
}

/** No header operations. */
export const NO_HEADER_OPS: HeaderOps = { remove: [], add: [] };

/** Compiles `*_headers_to_add` (HeaderValueOptions) and `*_headers_to_remove` (names). */
export function compileHeaderOps(add: unknown, remove: unknown): HeaderOps {
  const adds = list(add)
    .map(headerValueOf)
    .filter((h) => h !== undefined);
  const removes = Array.isArray(remove) ? remove.map((name) => String(name).toLowerCase()) : [];
  return adds.length === 0 && removes.length === 0 ? NO_HEADER_OPS : { remove: removes, add: adds };
}

/** Removes the `remove` names, then adds each header (append or overwrite). */
export function applyCompiledHeaderOps(headers: http.OutgoingHttpHeaders, ops: HeaderOps): void {
  for (const name of ops.remove) Reflect.deleteProperty(headers, name);
  for (const h of ops.add) {
    const existing = headers[h.key];
    if (h.append && existing !== undefined)
      headers[h.key] = [...(Array.isArray(existing) ? existing : [String(existing)]), h.value];
    else headers[h.key] = h.value;
  }
}

/** Removes `remove` names, then adds each HeaderValueOption of `add` (append or overwrite). */
export function applyHeaderOps(
  headers: http.OutgoingHttpHeaders,
  add: unknown,
  remove: unknown,
): void {
  applyCompiledHeaderOps(headers, compileHeaderOps(add, remove));
}

/** A request header's value (repeated headers joined with `,`), by case-insensitive name. */
export function headerValue(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}
