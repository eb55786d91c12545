/**
 * HTTP/1.1 head parsing (RFC 9112 §2–§7), at least as strict as llhttp in
 * Node's default (strict) mode — the parser is where request smuggling and
 * desync live, so every rule here is checked against node:http by the
 * differential fuzz test (test/proxy/http1-differential.test.ts). Where this
 * parser is stricter than llhttp it says so (`stricter:`), and follows the RFC
 * or Envoy's documented behaviour:
 *
 * - only HTTP/1.0 and HTTP/1.1 (llhttp also takes 0.9 and 2.0): 400 otherwise, the status
 *   node:http answers every other version with (its hostile corpus expects it; not RFC 9110's 505);
 * - a request-target never carries a fragment (`#`, RFC 9112 §3.2; Envoy rejects it);
 * - exactly one `Host` in a request (RFC 9112 §3.2: 400 for more than one);
 * - `Transfer-Encoding` must be exactly `chunked` once (llhttp takes `gzip, chunked`):
 *   501 otherwise (RFC 9112 §6.1: a server MAY answer 501 to a coding it does not know);
 *   HTTP/1.0 with `Transfer-Encoding` is refused (RFC 9112 §6.1: "faulty framing");
 * - at most `maxHeaders` header fields (431).
 *
 * Same as llhttp: methods from Node's list only, case-sensitive; token-only
 * field names, no whitespace before the colon, no obs-fold (RFC 9112 §5.2),
 * no bare CR or LF, no NUL or other control character in a value (HTAB and
 * obs-text allowed), Content-Length digits only and at most once, never with
 * Transfer-Encoding (RFC 9112 §6.3 rule 3: the smuggling case), a
 * request-target of visible ASCII only, one or more empty lines before a
 * request line ignored (RFC 9112 §2.2).
 *
 * Parsing works on a buffer that holds the whole head ({@link findHeadEnd}
 * finds its end and rejects a bare LF as soon as it arrives).
 */
import { byteLookup, knownName, nameIs } from './field-names.js';
import { fieldValueEnd } from './field-scan.js';
import type { BodyFraming, HeaderList, Http1Limits, ParseFailure, RequestHead } from './types.js';

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;

/** Node's `http.METHODS` (llhttp's request methods in HTTP mode), kept here to avoid loading node:http. */
export const METHODS: ReadonlySet<string> = new Set([
  'ACL',
  'BIND',
  'CHECKOUT',
  'CONNECT',
  'COPY',
  'DELETE',
  'GET',
  'HEAD',
  'LINK',
  'LOCK',
  'M-SEARCH',
  'MERGE',
  'MKACTIVITY',
  'MKCALENDAR',
  'MKCOL',
  'MOVE',
  'NOTIFY',
  'OPTIONS',
  'PATCH',
  'POST',
  'PROPFIND',
  'PROPPATCH',
  'PURGE',
  'PUT',
  'QUERY',
  'REBIND',
  'REPORT',
  'SEARCH',
  'SOURCE',
  'SUBSCRIBE',
  'TRACE',
  'UNBIND',
  'UNLINK',
  'UNLOCK',
  'UNSUBSCRIBE',
]);

/** A method's bytes as the {@link METHODS} constant, undefined for any other token. */
const knownMethod = byteLookup(METHODS);

/** tchar (RFC 9110 §5.6.2). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c += 1) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c += 1) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c += 1) TOKEN[c] = 1;
/** field-vchar, SP and HTAB (RFC 9110 §5.5): VCHAR and obs-text; no NUL, CR, LF, DEL or other CTL. */
export const FIELD_VALUE = new Uint8Array(256);
FIELD_VALUE[HTAB] = 1;
for (let c = 0x20; c <= 0x7e; c += 1) FIELD_VALUE[c] = 1;
for (let c = 0x80; c <= 0xff; c += 1) FIELD_VALUE[c] = 1;
/** Request-target bytes: visible ASCII except `#` (a fragment is never sent, RFC 9112 §3.2). */
export const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c += 1) TARGET[c] = 1;
TARGET[0x23] = 0;

export const fail = (status: ParseFailure['status'], reason: string): ParseFailure => ({
  status,
  reason,
});
/** A refusal, not a parsed head (a ResponseHead has a `reason` too, but no `raw`) or a number. */
const isFailure = (x: unknown): x is ParseFailure =>
  typeof x === 'object' && x !== null && 'reason' in x && !('raw' in x) && !('headers' in x);

/**
 * Finds the end of a head in `buf` (the index just past its empty line), scanning LFs from
 * `from` (pass the previous length − 3 when more bytes arrived). Returns -1 when the head is
 * not complete yet and -2 for an LF without its CR (bare LF: llhttp's `HPE_CR_EXPECTED`).
 * Empty lines before a request line are skipped by the parser, not here: a head that starts
 * with CRLF ends at the first CRLFCRLF after a non-empty line.
 */
export function findHeadEnd(buf: Buffer, from: number, length = buf.length): number {
  const s = skipEmptyLines(buf);
  let i = buf.indexOf(LF, Math.max(s, from));
  while (i !== -1 && i < length) {
    if (buf[i - 1] !== CR) return -2;
    // An empty line that ends the head: CRLF CRLF, after the start line.
    if (i >= s + 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}

/**
 * Where a request line starts: llhttp skips any CR and LF bytes before it (RFC 9112 §2.2: a
 * server SHOULD ignore at least one empty line received before the request-line).
 */
export function skipEmptyLines(buf: Buffer): number {
  let s = 0;
  while (buf[s] === CR || buf[s] === LF) s += 1;
  return s;
}

/**
 * The options a `Connection` field value lists (RFC 9110 §7.6.1), lower-cased, empty list
 * elements skipped; appended to `into` (a head's fields may repeat the field).
 */
export function connectionOptions(value: string, into: string[] = []): string[] {
  // One option (`keep-alive`, `close`: nearly every value) without a split's array.
  if (!value.includes(',')) {
    const option = value.trim().toLowerCase();
    if (option !== '') into.push(option);
    return into;
  }
  for (const part of value.split(',')) {
    const option = part.trim().toLowerCase();
    if (option !== '') into.push(option);
  }
  return into;
}

/**
 * The decimal number the bytes `start … end` spell, or -1 unless they are one or more digits
 * (at most 15 by the caller, so the number is exact). From the bytes: a regexp test and
 * `Number` on the value string were a runtime call per request.
 */
function digitsAt(raw: Buffer, start: number, end: number): number {
  if (end <= start) return -1;
  let n = 0;
  for (let k = start; k < end; k += 1) {
    const d = (raw[k] ?? 0) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Whether the optional whitespace between a field value's end and its CR holds an HTAB. */
function tabAfterValue(raw: Buffer, vEnd: number, cr: number): boolean {
  for (let k = vEnd; k < cr; k += 1) if (raw[k] === HTAB) return true;
  return false;
}

interface Fields {
  headers: HeaderList;
  lines: number[];
  contentLength: number;
  chunked: boolean;
  teCount: number;
  hosts: number;
  host: string;
  connection: string[];
  expectContinue: boolean;
  upgrade: string;
}

/**
 * Parses the header section of `raw` from `pos` (just past the start line's CRLF) to `end`.
 * The section is decoded to one latin1 string and each value (and each name that is not a
 * known constant) is a slice of it: one native call per head instead of one per field.
 */
export function parseFields(
  raw: Buffer,
  pos: number,
  end: number,
  limits: Http1Limits,
  /** All of `raw` already decoded (the start line's parser decodes the whole head once). */
  decoded?: string,
): Fields | ParseFailure {
  const headers: HeaderList = [];
  const starts: number[] = [];
  const text = decoded ?? raw.toString('latin1', pos, end);
  const base = decoded === undefined ? pos : 0;
  let contentLength = -1;
  let chunked = false;
  let teCount = 0;
  let hosts = 0;
  let host = '';
  const connection: string[] = [];
  let expectContinue = false;
  let upgrade = '';
  // The head ends with CRLF CRLF: the last CRLF (at end - 2) is the empty line.
  const last = end - 2;
  while (pos < last) {
    const nStart = pos;
    starts.push(pos);
    if (starts.length > limits.maxHeaders) return fail(431, 'too-many-headers');
    const first = raw[pos];
    // obs-fold (RFC 9112 §5.2: a server MUST reject it or replace it; llhttp rejects it).
    if (first === SP || first === HTAB) return fail(400, 'obs-fold');
    let i = pos;
    while (i < last && TOKEN[raw[i] ?? 0] === 1) i += 1;
    if (i === pos || raw[i] !== COLON) return fail(400, 'invalid-header-token');
    const name = knownName(raw, pos, i) ?? text.slice(pos - base, i - base);
    i += 1;
    while (raw[i] === SP || raw[i] === HTAB) i += 1;
    const vStart = i;
    i = fieldValueEnd(raw, i);
    if (raw[i] !== CR || raw[i + 1] !== LF) {
      return fail(400, raw[i] === CR ? 'lf-expected' : 'invalid-header-token');
    }
    let vEnd = i;
    while (vEnd > vStart && (raw[vEnd - 1] === SP || raw[vEnd - 1] === HTAB)) vEnd -= 1;
    const value = text.slice(vStart - base, vEnd - base);
    headers.push(name, value);
    pos = i + 2;
    // The framing and connection fields, by length first so most names cost one comparison.
    switch (name.length) {
      case 4:
        if (nameIs(raw, nStart, 'host')) {
          hosts += 1;
          host = value;
        }
        break;
      case 6:
        if (nameIs(raw, nStart, 'expect') && value.toLowerCase() === '100-continue')
          expectContinue = true;
        break;
      case 7:
        if (nameIs(raw, nStart, 'upgrade')) upgrade = value.toLowerCase();
        break;
      case 10:
        if (nameIs(raw, nStart, 'connection')) connectionOptions(value, connection);
        break;
      case 14:
        if (nameIs(raw, nStart, 'content-length')) {
          // llhttp: digits only (no sign, no list), and once (HPE_UNEXPECTED_CONTENT_LENGTH).
          if (contentLength !== -1) return fail(400, 'duplicate-content-length');
          // llhttp also refuses an HTAB after the digits (not before them, nor a SP after).
          const length = value.length > 15 ? -1 : digitsAt(raw, vStart, vEnd);
          if (length < 0 || tabAfterValue(raw, vEnd, i)) return fail(400, 'invalid-content-length');
          contentLength = length;
        }
        break;
      case 17:
        if (nameIs(raw, nStart, 'transfer-encoding')) {
          teCount += 1;
          // llhttp does not read `chunked` followed by an HTAB as chunked (then refuses a
          // request whose last coding is not chunked).
          chunked = value.toLowerCase() === 'chunked' && !tabAfterValue(raw, vEnd, i);
        }
        break;
      default:
        break;
    }
  }
  starts.push(last);
  return {
    headers,
    lines: starts,
    contentLength,
    chunked,
    teCount,
    hosts,
    host,
    connection,
    expectContinue,
    upgrade,
  };
}

/** Reads `HTTP/1.x` at `i`; returns the minor version, or a failure. */
export function version(raw: Buffer, i: number): 0 | 1 | ParseFailure {
  // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  if (
    raw[i] !== 0x48 ||
    raw[i + 1] !== 0x54 ||
    raw[i + 2] !== 0x54 ||
    raw[i + 3] !== 0x50 ||
    raw[i + 4] !== 0x2f
  )
    return fail(400, 'invalid-constant');
  const major = raw[i + 5] ?? 0;
  const minor = raw[i + 7] ?? 0;
  if (major < 0x30 || major > 0x39 || raw[i + 6] !== 0x2e || minor < 0x30 || minor > 0x39)
    return fail(400, 'invalid-version');
  // stricter: llhttp also takes 0.9 and 2.0 over HTTP/1 framing.
  if (major === 0x30 && minor === 0x39) return fail(400, 'http-0.9');
  if (major !== 0x31 || (minor !== 0x30 && minor !== 0x31)) return fail(400, 'unsupported-version');
  return minor === 0x31 ? 1 : 0;
}

/** Whether a request-target has a form RFC 9112 §3.2 allows for the method. */
export function targetForm(method: string, target: string): boolean {
  if (method === 'CONNECT') return /^[^/?@]+:[0-9]+$/.test(target); // authority-form
  if (target.charCodeAt(0) === 0x2f) return true; // origin-form
  if (target === '*') return true; // asterisk-form
  // absolute-form; the scheme letters only, as llhttp reads it (stricter than RFC 3986's),
  // and an authority without the bytes llhttp refuses there (`"<>\^`{|}`).
  return /^[A-Za-z]+:\/\/[^/?"<>\\^`{|}]+(?:[/?]|$)/.test(target);
}

/**
 * Parses a request head: `raw` holds exactly the head (as {@link findHeadEnd} delimited it;
 * leading empty lines included). Returns the head or why it is refused.
 */
export function parseRequestHead(raw: Buffer, limits: Http1Limits): RequestHead | ParseFailure {
  const end = raw.length;
  if (end > limits.maxHeadBytes) return fail(431, 'head-too-large');
  const pos = skipEmptyLines(raw);
  let i = pos;
  while (TOKEN[raw[i] ?? 0] === 1) i += 1;
  const method = knownMethod(raw, pos, i);
  if (raw[i] !== SP || method === undefined) return fail(400, 'invalid-method');
  while (raw[i] === SP) i += 1; // llhttp takes several spaces before the target
  const tStart = i;
  while (TARGET[raw[i] ?? 0] === 1) i += 1;
  // stricter: a target followed by the line's end is an HTTP/0.9 request, which llhttp takes.
  if (i > tStart && raw[i] === CR) return fail(400, 'http-0.9');
  if (i === tStart || raw[i] !== SP) return fail(400, 'invalid-url');
  // The whole head as one string: the target and every field value are slices of it.
  const text = raw.toString('latin1', 0, end);
  const target = text.slice(tStart, i);
  if (!targetForm(method, target)) return fail(400, 'invalid-url');
  while (raw[i + 1] === SP) i += 1; // and several before the version
  const minor = version(raw, i + 1);
  if (isFailure(minor)) return minor;
  if (raw[i + 9] !== CR || raw[i + 10] !== LF) return fail(400, 'invalid-version');
  const f = parseFields(raw, i + 11, end, limits, text);
  if (isFailure(f)) return f;
  // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host (as node:http), and (stricter) for two.
  if ((minor === 1 && f.hosts === 0) || f.hosts > 1) return fail(400, 'invalid-host');
  const framing = requestFraming(f, minor);
  if (isFailure(framing)) return framing;
  return {
    method,
    target,
    minor,
    headers: f.headers,
    raw,
    lines: f.lines,
    framing,
    keepAlive: keepAlive(minor, f.connection),
    connectionTokens: f.connection,
    host: f.host,
    expectContinue: f.expectContinue,
    upgrade: f.upgrade,
  };
}

export const NONE: BodyFraming = { kind: 'none' };
export const CHUNKED: BodyFraming = { kind: 'chunked' };
export const CLOSE: BodyFraming = { kind: 'close' };

function requestFraming(f: Fields, minor: 0 | 1): BodyFraming | ParseFailure {
  if (f.teCount > 0) {
    // RFC 9112 §6.3 rule 3: Transfer-Encoding with Content-Length is how requests are smuggled.
    if (f.contentLength !== -1) return fail(400, 'content-length-with-transfer-encoding');
    if (minor === 0) return fail(400, 'transfer-encoding-in-http-1.0');
    if (f.teCount > 1 || !f.chunked) return fail(501, 'transfer-encoding-not-chunked');
    return CHUNKED;
  }
  if (f.contentLength > 0) return { kind: 'length', length: f.contentLength };
  return NONE;
}

/** Whether a message keeps its connection open (RFC 9112 §9.3). */
export function keepAlive(minor: 0 | 1, connection: readonly string[]): boolean {
  if (connection.includes('close')) return false;
  return minor === 1 || connection.includes('keep-alive');
}

export { isFailure };
