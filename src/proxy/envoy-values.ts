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

/** Removes `remove` names, then adds each HeaderValueOption of `add` (append or overwrite). */
export function applyHeaderOps(
  headers: http.OutgoingHttpHeaders,
  add: unknown,
  remove: unknown,
): void {
  if (Array.isArray(remove))
    for (const name of remove) Reflect.deleteProperty(headers, String(name).toLowerCase());
  for (const entry of list(add)) {
    const h = headerValueOf(entry);
    if (h === undefined) continue;
    const existing = headers[h.key];
    if (h.append && existing !== undefined)
      headers[h.key] = [...(Array.isArray(existing) ? existing : [String(existing)]), h.value];
    else headers[h.key] = h.value;
  }
}

/** A request header's value (repeated headers joined with `,`), by case-insensitive name. */
export function headerValue(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}
