/**
 * Readers for decoded xDS messages (plain objects decoded by protobufjs):
 * every field may be absent or of an unexpected shape, so reads are total and
 * never stringify objects by accident.
 */

/** A plain object, or `{}` for anything else. */
export function rec(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** The plain objects of an array, or `[]`. */
export function list(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.map(rec) : [];
}

/** A string field, or `fallback`. */
export function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/** A numeric field (numbers and 64-bit values decoded as strings), or `fallback`. */
export function num(value: unknown, fallback = 0): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
    return Number(value);
  return fallback;
}
