/**
 * Checks of an HTTP/1.1 head that has not fully arrived (split from head-parser.ts): the bytes
 * so far must be the start of a valid head, as llhttp decides byte by byte, so garbage is
 * refused at once rather than after the head timeout.
 */
import {
  COLON,
  CR,
  FIELD_VALUE,
  HTAB,
  LF,
  METHODS,
  SP,
  TARGET,
  TOKEN,
  fail,
  isFailure,
  parseFields,
  skipEmptyLines,
  targetForm,
  version,
} from './head-parser.js';
import type { Http1Limits, ParseFailure } from './types.js';

const HTTP_VERSION_PREFIX = 'HTTP/1.1';

/**
 * Checks a request head that has not fully arrived, as llhttp does byte by byte: the bytes so
 * far must be the start of a valid head. Lets a server refuse garbage (a TLS hello on a
 * plaintext port, a bad byte after a body) at once instead of waiting for a head that never
 * completes, and keeps refusals the same as node:http's when the peer stops mid-head.
 */
export function checkPartialRequestHead(
  buf: Buffer,
  limits: Http1Limits,
): ParseFailure | undefined {
  const n = buf.length;
  const pos = skipEmptyLines(buf);
  if (pos === n) return undefined;
  let i = pos;
  while (i < n && TOKEN[buf[i] ?? 0] === 1) i += 1;
  const method = buf.toString('latin1', pos, i);
  if (i === n) {
    for (const m of METHODS) if (m.startsWith(method)) return undefined;
    return fail(400, 'invalid-method');
  }
  if (buf[i] !== SP || !METHODS.has(method)) return fail(400, 'invalid-method');
  while (i < n && buf[i] === SP) i += 1;
  const tStart = i;
  while (i < n && TARGET[buf[i] ?? 0] === 1) i += 1;
  if (i === n) return undefined;
  if (i > tStart && buf[i] === CR) return fail(400, 'http-0.9');
  if (i === tStart || buf[i] !== SP) return fail(400, 'invalid-url');
  // The whole target is in: its form is known now (llhttp refuses `a` as it reads the space).
  if (!targetForm(method, buf.toString('latin1', tStart, i))) return fail(400, 'invalid-url');
  while (i < n && buf[i] === SP) i += 1;
  if (i === n) return undefined;
  // The version: "HTTP/" DIGIT "." DIGIT CRLF, byte by byte, then as a whole once its eight
  // bytes are in (llhttp refuses `HTTP/1.2` before the line ends).
  const vStart = i;
  for (let k = 0; k < HTTP_VERSION_PREFIX.length && i < n; k += 1, i += 1) {
    const want = HTTP_VERSION_PREFIX.charCodeAt(k);
    const got = buf[i] ?? 0;
    if (k === 5 || k === 7 ? got < 0x30 || got > 0x39 : got !== want)
      return fail(400, k < 5 ? 'invalid-constant' : 'invalid-version');
  }
  if (i === n) return undefined;
  const known = version(buf, vStart);
  if (isFailure(known)) return known;
  if (buf[i] !== CR) return fail(400, 'invalid-version');
  if (i + 1 === n) return undefined;
  if (buf[i + 1] !== LF) return fail(400, 'lf-expected');
  return checkPartialFields(buf, i + 2, limits);
}

/**
 * Checks header (or trailer) lines that have not fully arrived, from `linesStart`: the whole
 * lines so far as {@link parseFields} would, then the line being received, byte by byte.
 */
export function checkPartialFields(
  buf: Buffer,
  linesStart: number,
  limits: Http1Limits,
): ParseFailure | undefined {
  const n = buf.length;
  // Whole header lines so far, then the line being received.
  const lastLf = buf.lastIndexOf(LF);
  const whole = lastLf + 1 > linesStart ? lastLf + 1 : linesStart;
  if (whole > linesStart) {
    const f = parseFields(buf, linesStart, whole + 2, limits);
    if (isFailure(f)) return f;
  }
  let i = whole;
  if (i === n) return undefined;
  if (buf[i] === SP || buf[i] === HTAB) return fail(400, 'obs-fold');
  const nameStart = i;
  while (i < n && TOKEN[buf[i] ?? 0] === 1) i += 1;
  if (i === n) return undefined;
  if (buf[i] === CR && i === nameStart)
    return i + 1 === n || buf[i + 1] === LF ? undefined : fail(400, 'lf-expected');
  if (buf[i] !== COLON || i === nameStart) return fail(400, 'invalid-header-token');
  i += 1;
  while (i < n && FIELD_VALUE[buf[i] ?? 0] === 1) i += 1;
  if (i === n) return undefined;
  if (buf[i] !== CR) return fail(400, 'invalid-header-token');
  return i + 1 === n ? undefined : fail(400, 'lf-expected');
}
