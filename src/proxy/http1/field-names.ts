/**
 * Common field names as shared constant strings (what undici's header-name tree
 * and llhttp's callers do): a name read from a head that is byte for byte one of
 * these comes back as the constant instead of a new string sliced from the
 * buffer. The layers use names as keys of header records, and a constant is
 * already in V8's string table, so each such key skips a slice, a hash and a
 * string-table lookup per field per hop.
 *
 * The match is exact (case included), so the name forwarded is still the one
 * received: each name is known in lower case (HTTP/2, Node, Envoy, curl's
 * HTTP/1.1 pseudo-less fields) and in the Title-Case browsers and many HTTP/1.1
 * clients send.
 *
 * Names in any case, without a builtin call per field: `lowerName` looks a known
 * name's lower case up, and `nameIs` compares a name on the head's bytes.
 */

const NAMES = [
  'accept',
  'accept-encoding',
  'accept-language',
  'authorization',
  'b3',
  'baggage',
  'cache-control',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'cookie',
  'date',
  'etag',
  'expect',
  'grpc-encoding',
  'grpc-message',
  'grpc-status',
  'grpc-timeout',
  'host',
  'keep-alive',
  'last-modified',
  'location',
  'origin',
  'referer',
  'server',
  'set-cookie',
  'te',
  'traceparent',
  'tracestate',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-spanid',
  'x-b3-traceid',
  'x-envoy-attempt-count',
  'x-envoy-decorator-operation',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-original-path',
  'x-envoy-peer-metadata',
  'x-envoy-peer-metadata-id',
  'x-envoy-upstream-service-time',
  'x-forwarded-client-cert',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-request-id',
];

/** `content-type` → `Content-Type`. */
const titleCase = (name: string): string =>
  name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => `${dash}${c.toUpperCase()}`);

/** The string-table copy of `s` (a computed string is not internalized until used as a key). */
const internalized = (s: string): string => Object.keys({ [s]: 0 })[0] ?? s;

interface Known {
  readonly bytes: Uint8Array;
  readonly value: string;
}

/**
 * A lookup of `strings` (exact bytes) in a buffer range: the constant string, or
 * undefined for anything else.
 */
export function byteLookup(
  strings: Iterable<string>,
): (raw: Uint8Array, start: number, end: number) => string | undefined {
  // Buckets by length, first and last byte: nearly every name finds an empty bucket or the
  // one candidate to compare (a list per length held ~10 names of common lengths, each
  // compared until its first differing byte).
  const buckets: (Known[] | undefined)[] = new Array<Known[] | undefined>(BUCKETS).fill(undefined);
  for (const s of strings) {
    const bytes = Buffer.from(s, 'latin1');
    const b = bucketOf(bytes.length, bytes[0] ?? 0, bytes[bytes.length - 1] ?? 0);
    (buckets[b] ??= []).push({ bytes, value: internalized(s) });
  }
  return (raw, start, end) => {
    const length = end - start;
    if (length <= 0) return undefined;
    const candidates = buckets[bucketOf(length, raw[start] ?? 0, raw[end - 1] ?? 0)];
    if (candidates === undefined) return undefined;
    for (const known of candidates) {
      const b = known.bytes;
      if (b.length !== length) continue;
      let k = 1;
      while (k < length && raw[start + k] === b[k]) k += 1;
      if (k === length && raw[start] === b[0]) return known.value;
    }
    return undefined;
  };
}

const BUCKETS = 1024;
const bucketOf = (length: number, first: number, last: number): number =>
  (length * 61 + first * 7 + last * 3) & (BUCKETS - 1);

/** The shared constant for a known field name's exact bytes, undefined for any other. */
export const knownName = byteLookup(NAMES.flatMap((lower) => [lower, titleCase(lower)]));

/** Every known name, in lower case and Title-Case, to its lower-case constant. */
const LOWER: ReadonlyMap<string, string> = new Map(
  NAMES.flatMap((lower) => [
    [internalized(lower), internalized(lower)],
    [internalized(titleCase(lower)), internalized(lower)],
  ]),
);

/**
 * A field name in lower case. A known name (what the parser hands out as a constant, and
 * every property key a header record has) is looked up, not converted: `toLowerCase` is a
 * builtin call per field, ~1 % of each proxy's CPU over the per-field loops of a request.
 */
export function lowerName(name: string): string {
  return LOWER.get(name) ?? name.toLowerCase();
}

/**
 * Whether the field name at `at` is `lower` in any case (the caller has compared the lengths).
 * On the head's bytes: `toLowerCase` on the name string was a builtin call costing ~130 ns per
 * framing-length name in a micro-benchmark. A token byte ORed with 0x20 is a lower-case letter
 * only when it is that letter in either case, and `-` and digits are unchanged.
 */
export function nameIs(raw: Uint8Array, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k += 1)
    if (((raw[at + k] ?? 0) | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}
