/**
 * Parses an HTTP/1.1 response head (split from head-parser.ts, whose field
 * rules it shares): status line, fields, and the body's framing per RFC 9112
 * §6.3, stricter than RFC where a desync could follow.
 */
import {
  CHUNKED,
  CLOSE,
  CR,
  FIELD_VALUE,
  LF,
  NONE,
  SP,
  fail,
  isFailure,
  keepAlive,
  parseFields,
  version,
} from './head-parser.js';
import type { BodyFraming, Http1Limits, ParseFailure, ResponseHead } from './types.js';

/**
 * Parses a response head. `requestMethod` decides the framing of a HEAD response (no body,
 * RFC 9112 §6.3 rule 1). 1xx heads come back as such: the caller reads the next head.
 */
export function parseResponseHead(
  raw: Buffer,
  requestMethod: string,
  limits: Http1Limits,
): ResponseHead | ParseFailure {
  const end = raw.length;
  if (end > limits.maxHeadBytes) return fail(431, 'head-too-large');
  const minor = version(raw, 0);
  if (isFailure(minor)) return minor;
  if (raw[8] !== SP) return fail(400, 'invalid-status');
  let status = 0;
  for (let k = 9; k < 12; k += 1) {
    const d = (raw[k] ?? 0) - 0x30;
    if (d < 0 || d > 9) return fail(400, 'invalid-status');
    status = status * 10 + d;
  }
  if (status < 100) return fail(400, 'invalid-status');
  let i = 12;
  let reason = '';
  // The whole head as one string: the reason and every field value are slices of it.
  const text = raw.toString('latin1', 0, end);
  if (raw[i] === SP) {
    i += 1;
    const rStart = i;
    while (FIELD_VALUE[raw[i] ?? 0] === 1) i += 1;
    reason = text.slice(rStart, i);
  }
  if (raw[i] !== CR || raw[i + 1] !== LF) return fail(400, 'invalid-status');
  const f = parseFields(raw, i + 2, end, limits, text);
  if (isFailure(f)) return f;
  let framing: BodyFraming;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) framing = NONE;
  else if (f.teCount > 0) {
    // A response with both is refused too: it is the same desync in the other direction.
    if (f.contentLength !== -1) return fail(400, 'content-length-with-transfer-encoding');
    // RFC 9112 §6.3 rule 4: chunked not final in a response → read until the connection closes.
    framing = f.teCount === 1 && f.chunked ? CHUNKED : CLOSE;
  } else if (f.contentLength >= 0)
    framing = f.contentLength === 0 ? NONE : { kind: 'length', length: f.contentLength };
  else framing = CLOSE;
  return {
    status,
    reason,
    minor,
    headers: f.headers,
    raw,
    lines: f.lines,
    framing,
    keepAlive: framing.kind !== 'close' && keepAlive(minor, f.connection),
    connectionTokens: f.connection,
  };
}
