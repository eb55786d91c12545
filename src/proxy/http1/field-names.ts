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
  const byLength: Known[][] = [];
  for (const s of strings) {
    const list = (byLength[s.length] ??= []);
    list.push({ bytes: Buffer.from(s, 'latin1'), value: internalized(s) });
  }
  return (raw, start, end) => {
    const candidates = byLength[end - start];
    if (candidates === undefined) return undefined;
    for (const known of candidates) {
      const b = known.bytes;
      let k = 0;
      while (k < b.length && raw[start + k] === b[k]) k += 1;
      if (k === b.length) return known.value;
    }
    return undefined;
  };
}

/** The shared constant for a known field name's exact bytes, undefined for any other. */
export const knownName = byteLookup(NAMES.flatMap((lower) => [lower, titleCase(lower)]));
