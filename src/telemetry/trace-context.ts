/**
 * Trace propagation for the proxy: reads W3C Trace Context (`traceparent`,
 * `tracestate`) or Zipkin B3 (single `b3` header, then the `x-b3-*`
 * multi-headers), makes child/root span contexts with node:crypto random ids, and
 * writes W3C and B3 headers that agree with each other, so applications
 * instrumented for either format join the same trace. Also keeps or mints
 * `x-request-id` as Envoy does.
 *
 * Every parser here reads untrusted headers: it never throws and returns
 * `undefined` for anything malformed (fuzzed by the property tests).
 *
 * Specs: W3C Trace Context Level 1 (§3.2 traceparent, §3.3 tracestate);
 * openzipkin/b3-propagation (single header and multiple headers).
 */
import { randomFillSync, randomUUID } from 'node:crypto';

/** Incoming headers as Node gives them (lower-case names). */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;
/** Outgoing headers the proxy is about to send (lower-case names). */
export type OutgoingHeaders = Record<string, string | readonly string[] | number | undefined>;

/** Where a parsed context came from. */
export type TraceFormat = 'w3c' | 'b3' | 'b3multi';

/** The propagated identity of one span. Ids are lower-case hex. */
export interface SpanContext {
  /** 32 hex digits (a 64-bit B3 trace id is left-padded with zeros). */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** The span this one is a child of, when known. */
  readonly parentSpanId?: string | undefined;
  /** Sampling decision (W3C `sampled` flag, B3 `1`/`d`). */
  readonly sampled: boolean;
  /** B3 debug (`d`, `X-B3-Flags: 1`). */
  readonly debug?: boolean | undefined;
  /** W3C `tracestate`, passed through unchanged. */
  readonly traceState?: string | undefined;
  /** Format it was read from; absent for spans made here. */
  readonly format?: TraceFormat | undefined;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/** One header's value; repeated headers are joined with `,` (RFC 9110 §5.3). */
function header(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 0 ? undefined : value.join(',');
}

/** The single value of a header that must not repeat; repeated → undefined. */
function singleHeader(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined || typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

// W3C tracestate: at most 32 list-members, each `key=value` (§3.3.1).
const TRACESTATE_KEY =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Validates `tracestate` and returns it normalised (empty members dropped,
 * OWS trimmed), or undefined when it is invalid or empty — W3C §3.3.1: a
 * vendor that cannot parse tracestate discards it, but traceparent stays.
 */
export function parseTraceState(value: string | undefined): string | undefined {
  if (value === undefined || value.length > 8192) return undefined;
  const members: string[] = [];
  for (const raw of value.split(',')) {
    const m = raw.trim();
    if (m === '') continue;
    const eq = m.indexOf('=');
    if (eq <= 0) return undefined;
    if (!TRACESTATE_KEY.test(m.slice(0, eq)) || !TRACESTATE_VALUE.test(m.slice(eq + 1))) {
      return undefined;
    }
    members.push(m);
    if (members.length > 32) return undefined;
  }
  return members.length === 0 ? undefined : members.join(',');
}

/**
 * Parses a W3C `traceparent` (§3.2.2): `version-traceid-parentid-flags`,
 * lower-case hex; version `ff` is invalid; version 00 is exactly 55
 * characters; a future version may append `-…` fields, which are ignored;
 * all-zero trace or parent ids are invalid.
 */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX2.test(version) || version === 'ff') return undefined;
  if (version === '00' && v.length !== 55) return undefined;
  if (v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX32.test(traceId) || traceId === ZERO32) return undefined;
  if (!HEX16.test(spanId) || spanId === ZERO16) return undefined;
  if (!HEX2.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1, format: 'w3c' };
}

/** A B3 trace id: 16 or 32 lower-hex digits, not all zero; returned as 32 digits. */
function b3TraceId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let id: string;
  if (HEX32.test(value)) id = value;
  else if (HEX16.test(value)) id = ZERO16 + value;
  else return undefined;
  return id === ZERO32 ? undefined : id;
}

function b3SpanId(value: string | undefined): string | undefined {
  return value !== undefined && HEX16.test(value) && value !== ZERO16 ? value : undefined;
}

/**
 * Parses the single `b3` header: `{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`,
 * sampling `0`, `1` or `d`. A header carrying only a sampling decision
 * (`b3: 0`) has no ids to continue, so it yields undefined.
 */
export function parseB3Single(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined;
  const parts = value.trim().split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0]);
  const spanId = b3SpanId(parts[1]);
  if (traceId === undefined || spanId === undefined) return undefined;
  const sampling = parts[2];
  let sampled = true;
  let debug = false;
  if (sampling !== undefined) {
    if (sampling === '1') sampled = true;
    else if (sampling === '0') sampled = false;
    else if (sampling === 'd') debug = true;
    else return undefined;
  }
  let parentSpanId: string | undefined;
  if (parts[3] !== undefined) {
    parentSpanId = b3SpanId(parts[3]);
    if (parentSpanId === undefined) return undefined;
  }
  return { traceId, spanId, parentSpanId, sampled, debug: debug || undefined, format: 'b3' };
}

/**
 * Parses B3 multi-headers: `x-b3-traceid`, `x-b3-spanid` (both required),
 * `x-b3-parentspanid`, `x-b3-sampled` (`1`/`0`; `true`/`false` accepted as
 * older tracers send them), `x-b3-flags: 1` (debug, implies sampled).
 * Without `x-b3-sampled` the decision is deferred; Palisade samples.
 */
export function parseB3Multi(headers: IncomingHeaders): SpanContext | undefined {
  const traceId = b3TraceId(singleHeader(headers, 'x-b3-traceid')?.trim());
  const spanId = b3SpanId(singleHeader(headers, 'x-b3-spanid')?.trim());
  if (traceId === undefined || spanId === undefined) return undefined;
  const rawParent = singleHeader(headers, 'x-b3-parentspanid')?.trim();
  const parentSpanId = rawParent === undefined ? undefined : b3SpanId(rawParent);
  if (rawParent !== undefined && parentSpanId === undefined) return undefined;
  const rawSampled = singleHeader(headers, 'x-b3-sampled')?.trim().toLowerCase();
  let sampled = true;
  if (rawSampled === '0' || rawSampled === 'false') sampled = false;
  else if (rawSampled !== undefined && rawSampled !== '1' && rawSampled !== 'true') {
    return undefined;
  }
  const debug = singleHeader(headers, 'x-b3-flags')?.trim() === '1';
  if (debug) sampled = true;
  return { traceId, spanId, parentSpanId, sampled, debug: debug || undefined, format: 'b3multi' };
}

/**
 * Reads the caller's trace context: W3C `traceparent` first (with its
 * `tracestate`), then the single `b3` header, then B3 multi-headers. Returns
 * undefined when none is present and valid; never throws.
 */
export function parseTraceContext(headers: IncomingHeaders): SpanContext | undefined {
  try {
    const w3c = parseTraceparent(singleHeader(headers, 'traceparent'));
    if (w3c !== undefined) {
      const traceState = parseTraceState(header(headers, 'tracestate'));
      return traceState === undefined ? w3c : { ...w3c, traceState };
    }
    return parseB3Single(singleHeader(headers, 'b3')) ?? parseB3Multi(headers);
  } catch {
    return undefined;
  }
}

// Ids come from a pool filled by node:crypto, as randomUUID() does: one
// call into the CSPRNG per 512 ids instead of one per id.
const POOL = Buffer.alloc(4096);
let poolOffset = POOL.length;

/** A random non-zero id of `bytes` bytes as lower-case hex (node:crypto CSPRNG). */
function randomId(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL.length) {
      randomFillSync(POOL);
      poolOffset = 0;
    }
    const id = POOL.toString('hex', poolOffset, poolOffset + bytes);
    poolOffset += bytes;
    if (!/^0+$/.test(id)) return id;
  }
}

/** Options of {@link newRootSpan}. */
export interface RootSpanOptions {
  /** Sampling decision for a new trace; default true. */
  readonly sampled?: boolean | undefined;
}

/** Starts a new trace: random 128-bit trace id and 64-bit span id. */
export function newRootSpan(options: RootSpanOptions = {}): SpanContext {
  return { traceId: randomId(16), spanId: randomId(8), sampled: options.sampled ?? true };
}

/**
 * The context of a span started under `parent`: same trace id, a new span
 * id, `parentSpanId` = the parent's span id, sampling/debug and tracestate
 * inherited. Without a parent, a new root.
 */
export function childSpan(
  parent: SpanContext | undefined,
  options: RootSpanOptions = {},
): SpanContext {
  if (parent === undefined) return newRootSpan(options);
  return {
    traceId: parent.traceId,
    spanId: randomId(8),
    parentSpanId: parent.spanId,
    sampled: parent.sampled,
    debug: parent.debug,
    traceState: parent.traceState,
  };
}

/** Headers {@link injectTraceContext} owns; stale values are replaced or removed. */
export const TRACE_HEADERS = [
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
] as const;

/** Options of {@link injectTraceContext}. */
export interface InjectOptions {
  /** Also write the single `b3` header; default: only when `headers` already had one. */
  readonly b3Single?: boolean | undefined;
}

/** Sets `name` to `value`, or removes it when `value` is undefined and the field is there. */
function put(headers: OutgoingHeaders, name: string, value: string | undefined): void {
  if (value !== undefined) headers[name] = value;
  else if (headers[name] !== undefined) Reflect.deleteProperty(headers, name);
}

/**
 * Writes `span` into outgoing `headers` (mutated and returned): W3C
 * `traceparent` (version 00) plus `tracestate` when the span carries one, and
 * B3 multi-headers with the same ids. The single `b3` header is rewritten
 * when present (or when asked) so no stale value contradicts the others.
 * B3: debug is sent as `x-b3-flags: 1` without `x-b3-sampled`.
 */
export function injectTraceContext(
  headers: OutgoingHeaders,
  span: SpanContext,
  options: InjectOptions = {},
): OutgoingHeaders {
  const writeSingle = options.b3Single ?? headers.b3 !== undefined;
  const sampling = span.debug === true ? 'd' : span.sampled ? '1' : '0';
  // Each field is written over in place, and only a stale one this span does not send is
  // deleted: deleting a field an incoming request carried (most do, from the previous hop)
  // turned every forwarded header record into a dictionary-mode object.
  put(
    headers,
    'traceparent',
    `00-${span.traceId}-${span.spanId}-${span.sampled || span.debug === true ? '01' : '00'}`,
  );
  put(
    headers,
    'tracestate',
    span.traceState !== undefined && span.traceState !== '' ? span.traceState : undefined,
  );
  put(headers, 'x-b3-traceid', span.traceId);
  put(headers, 'x-b3-spanid', span.spanId);
  put(headers, 'x-b3-parentspanid', span.parentSpanId);
  put(headers, 'x-b3-flags', span.debug === true ? '1' : undefined);
  put(headers, 'x-b3-sampled', span.debug === true ? undefined : span.sampled ? '1' : '0');
  put(
    headers,
    'b3',
    writeSingle
      ? `${span.traceId}-${span.spanId}-${sampling}` +
          (span.parentSpanId === undefined ? '' : `-${span.parentSpanId}`)
      : undefined,
  );
  return headers;
}

// Envoy keeps a caller's x-request-id; Palisade keeps it when it is a
// reasonable token (printable ASCII without spaces, at most 128 characters)
// and mints a UUIDv4 otherwise, so a hostile value cannot bloat logs.
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * Returns the request's `x-request-id`, setting a new UUIDv4 in `headers`
 * when it is absent, repeated or not a printable token of ≤ 128 characters.
 */
export function ensureRequestId(headers: Record<string, string | string[] | undefined>): string {
  const value = headers['x-request-id'];
  if (typeof value === 'string' && REQUEST_ID.test(value)) return value;
  const id = randomUUID();
  headers['x-request-id'] = id;
  return id;
}
