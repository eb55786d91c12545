/**
 * Head serialisation for forwarding: a parsed head is written out as runs of
 * its own bytes (no re-serialisation of the header lines kept), with every
 * change — hop-by-hop removal (RFC 9110 §7.6.1), removed and added fields, a
 * new start line — applied in the same single pass, into one buffer that can
 * also carry the first body bytes (one `write` per head + body).
 */
import type { HeaderList, RequestHead, ResponseHead } from './types.js';
import { lowerName } from './field-names.js';

/**
 * Hop-by-hop fields, never forwarded by any hop of the proxy (RFC 9110 §7.6.1, plus
 * `keep-alive` and `proxy-connection` as Envoy strips them, and the proxy credentials
 * `proxy-authorization` / `proxy-authenticate`, which belong to the hop they were sent
 * on). `te: trailers` is kept by the proxy's forwarded copies (forwarded-headers.ts) for gRPC.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Changes applied while a head is written. */
export interface HeadEdits {
  /** A start line to write instead of the received one (without CRLF). */
  readonly startLine?: string;
  /** Lower-case names to drop, besides the hop-by-hop ones. */
  readonly remove?: ReadonlySet<string>;
  /** Fields to append (validated by their producer: names are tokens, values field-values). */
  readonly add?: readonly string[];
  /** Keep `Connection`/`Upgrade` (an upgrade being forwarded). Default false. */
  readonly keepUpgrade?: boolean;
  /**
   * Write `transfer-encoding: chunked` (the body is re-framed chunked on this hop) — the
   * received `Transfer-Encoding` is hop-by-hop and always dropped.
   */
  readonly chunked?: boolean;
  /** Body bytes to append after the head, in the same buffer. */
  readonly body?: Buffer;
  /**
   * Lower-case the kept field names, as Envoy's HTTP/1 codec writes them. The names are
   * lower-cased in the received bytes themselves (`raw`), which nothing reads after.
   */
  readonly lowerCaseNames?: boolean;
}

/** Lower-cases the ASCII letters of `length` bytes at `at` (a field name) in place. */
function lowerCaseName(raw: Buffer, at: number, length: number): void {
  for (let i = at; i < at + length; i += 1) {
    const c = raw[i] ?? 0;
    if (c >= 0x41 && c <= 0x5a) raw[i] = c | 0x20;
  }
}

// The last start line `serializeHead` wrote and the same with its CRLF. It writes response
// heads only, which mostly repeat one line (`statusLine(200)`), so the line is not concatenated
// again. `buildHead` does not use it: it also writes request lines, a new one per request,
// which would push the status line out each time.
let lastLine = '';
let lastLineCrlf = '\r\n';

function withCrlf(line: string): string {
  if (line !== lastLine) {
    lastLine = line;
    lastLineCrlf = `${line}\r\n`;
  }
  return lastLineCrlf;
}

/** Writes `head` with `edits` applied: one allocation, runs of the received bytes copied. */
export function serializeHead(head: RequestHead | ResponseHead, edits: HeadEdits = {}): Buffer {
  const { raw, lines, headers, connectionTokens } = head;
  const n = headers.length >> 1;
  // Which lines to keep: runs of consecutive kept lines are copied as one slice.
  const runs: number[] = [];
  let runStart = -1;
  for (let k = 0; k < n; k += 1) {
    const name = lowerName(headers[2 * k] ?? '');
    const drop =
      (HOP_BY_HOP.has(name) &&
        !(edits.keepUpgrade === true && (name === 'upgrade' || name === 'connection'))) ||
      (connectionTokens.length > 0 &&
        connectionTokens.includes(name) &&
        edits.keepUpgrade !== true) ||
      (edits.remove?.has(name) ?? false);
    const at = lines[k] ?? 0;
    if (!drop && edits.lowerCaseNames === true) lowerCaseName(raw, at, name.length);
    if (drop) {
      if (runStart !== -1) runs.push(runStart, at);
      runStart = -1;
    } else if (runStart === -1) runStart = at;
  }
  if (runStart !== -1) runs.push(runStart, lines[n] ?? 0);
  let added = '';
  if (edits.chunked === true) added += 'transfer-encoding: chunked\r\n';
  const add = edits.add;
  if (add !== undefined)
    for (let k = 0; k + 1 < add.length; k += 2) added += `${add[k] ?? ''}: ${add[k + 1] ?? ''}\r\n`;
  // The start line: the received one (after any leading empty lines) or the replacement.
  let first = lines[0] ?? 0;
  let lineStart = 0;
  while (raw[lineStart] === 0x0d || raw[lineStart] === 0x0a) lineStart += 1;
  const start = edits.startLine === undefined ? undefined : withCrlf(edits.startLine);
  let total = start === undefined ? first - lineStart : Buffer.byteLength(start, 'latin1');
  for (let k = 0; k < runs.length; k += 2) total += (runs[k + 1] ?? 0) - (runs[k] ?? 0);
  total += added.length + 2 + (edits.body?.length ?? 0);
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  if (start === undefined) o += raw.copy(out, 0, lineStart, first);
  else o += out.write(start, 0, 'latin1');
  for (let k = 0; k < runs.length; k += 2) o += raw.copy(out, o, runs[k], runs[k + 1]);
  if (added.length > 0) o += out.write(added, o, 'latin1');
  out[o] = 0x0d;
  out[o + 1] = 0x0a;
  o += 2;
  if (edits.body !== undefined) o += edits.body.copy(out, o);
  first = o;
  return first === total ? out : out.subarray(0, first);
}

/** Writes a head from parts (a response the server makes up, or a request the client sends). */
export function buildHead(startLine: string, headers: HeaderList, body?: Buffer): Buffer {
  let s = `${startLine}\r\n`;
  for (let k = 0; k + 1 < headers.length; k += 2)
    s += `${headers[k] ?? ''}: ${headers[k + 1] ?? ''}\r\n`;
  s += '\r\n';
  if (body === undefined || body.length === 0) return Buffer.from(s, 'latin1');
  const out = Buffer.allocUnsafe(Buffer.byteLength(s, 'latin1') + body.length);
  const o = out.write(s, 0, 'latin1');
  body.copy(out, o);
  return out;
}

/** The reason phrases a server writes (RFC 9110 §15); any other status gets an empty phrase. */
export const REASONS: Readonly<Record<number, string>> = {
  100: 'Continue',
  101: 'Switching Protocols',
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** Status lines made so far, by status (100–999). */
const statusLines: (string | undefined)[] = [];

/**
 * `HTTP/1.1 <status> <reason>` with the reason phrase a server writes ({@link REASONS}),
 * made once per status: a response's start line was a new concatenation each time, flattened
 * again when the head was written.
 */
export function statusLine(status: number): string {
  const known = statusLines[status];
  if (known !== undefined) return known;
  const line = `HTTP/1.1 ${String(status)} ${REASONS[status] ?? ''}`;
  if (Number.isInteger(status) && status >= 100 && status <= 999) statusLines[status] = line;
  return line;
}
