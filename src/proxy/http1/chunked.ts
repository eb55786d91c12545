/**
 * Chunked transfer coding (RFC 9112 §7.1): an incremental decoder that hands
 * out chunk data as views of the buffers it is given (no copies) and reads the
 * trailer section, and the encoder's framing bytes. As strict as llhttp:
 * chunk-size is 1–16 hex digits with no whitespace before `;` or the CRLF, an
 * extension is `;name[=[token|quoted-string]]` (a nameless one is refused),
 * chunk data must be followed by CRLF, and trailer fields follow the header
 * rules (token names, no obs-fold, no bare CR/LF, no NUL).
 */
import { parseFields } from './head-parser.js';
import { checkPartialFields } from './partial-head.js';
import type { HeaderList, Http1Limits, ParseFailure } from './types.js';

const CR = 0x0d;
const LF = 0x0a;
/** Longest chunk-size line with its extensions (llhttp has none; Envoy's is the head limit). */
const MAX_SIZE_LINE = 4096;
const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
const SIZE_LINE = new RegExp(
  `^([0-9A-Fa-f]{1,16})((?:;${TCHAR}+(?:=(?:${TCHAR}+|"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*")?)?)*)$`,
);

const enum State {
  Size,
  Data,
  DataCr,
  DataLf,
  Trailers,
  Done,
}

/** Decodes one chunked body; `onData` receives each piece of chunk data as it arrives. */
export class ChunkedDecoder {
  #state = State.Size;
  #remaining = 0;
  #line = '';
  #trailer: Buffer[] = [];
  #trailerBytes = 0;
  readonly #onData: (chunk: Buffer) => void;
  readonly #limits: Http1Limits;
  /** The trailer fields, once {@link done}. */
  trailers: HeaderList = [];

  constructor(onData: (chunk: Buffer) => void, limits: Http1Limits) {
    this.#onData = onData;
    this.#limits = limits;
  }

  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * Consumes `buf` from `start`. Returns the index it stopped at — `buf.length`, or just past
   * the body's end when it is done (the rest is the next message) — or why the body is refused.
   */
  push(buf: Buffer, start: number): number | ParseFailure {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.#state) {
        case State.Size: {
          const lf = buf.indexOf(LF, i);
          const stop = lf === -1 ? n : lf;
          this.#line += buf.toString('latin1', i, stop);
          if (this.#line.length > MAX_SIZE_LINE + 1)
            return { status: 400, reason: 'invalid-chunk-size' };
          if (lf === -1) return n;
          i = lf + 1;
          const line = this.#line;
          this.#line = '';
          if (line.charCodeAt(line.length - 1) !== CR)
            return { status: 400, reason: 'cr-expected' };
          const m = SIZE_LINE.exec(line.slice(0, -1));
          if (m === null) return { status: 400, reason: 'invalid-chunk-size' };
          const size = Number.parseInt(m[1] ?? '', 16);
          if (!Number.isSafeInteger(size)) return { status: 400, reason: 'invalid-chunk-size' };
          if (size === 0) this.#state = State.Trailers;
          else {
            this.#remaining = size;
            this.#state = State.Data;
          }
          break;
        }
        case State.Data: {
          const take = Math.min(this.#remaining, n - i);
          this.#onData(buf.subarray(i, i + take));
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (buf[i] !== CR) return { status: 400, reason: 'strict' };
          i += 1;
          this.#state = State.DataLf;
          break;
        case State.DataLf:
          if (buf[i] !== LF) return { status: 400, reason: 'strict' };
          i += 1;
          this.#state = State.Size;
          break;
        case State.Trailers: {
          const r = this.#readTrailers(buf, i);
          if (typeof r !== 'number') return r;
          i = r;
          break;
        }
        case State.Done:
          return i;
      }
    }
    return i;
  }

  /** Collects the trailer section up to its empty line, then parses it as header fields. */
  #readTrailers(buf: Buffer, start: number): number | ParseFailure {
    const prev = this.#trailerBytes;
    const piece = buf.subarray(start);
    this.#trailer.push(piece);
    this.#trailerBytes += piece.length;
    const all = this.#trailer.length === 1 ? piece : Buffer.concat(this.#trailer);
    let i = all.indexOf(LF, Math.max(0, prev - 3));
    while (i !== -1) {
      if (i === 0 || all[i - 1] !== CR) return { status: 400, reason: 'cr-expected' };
      const endsAt = i === 1 ? 2 : all[i - 2] === LF && all[i - 3] === CR ? i + 1 : -1;
      if (endsAt !== -1) {
        if (endsAt > this.#limits.maxTrailerBytes)
          return { status: 431, reason: 'trailers-too-large' };
        const f = parseFields(all.subarray(0, endsAt), 0, endsAt, this.#limits);
        if ('reason' in f) return f;
        // Framing fields never belong in trailers (RFC 9110 §6.5.1); llhttp refuses them too
        // unless the value is empty.
        if (f.teCount > 0 || f.contentLength !== -1)
          return { status: 400, reason: 'framing-field-in-trailers' };
        this.trailers = f.headers;
        this.#trailer = [];
        this.#state = State.Done;
        return start + (endsAt - prev);
      }
      i = all.indexOf(LF, i + 1);
    }
    if (this.#trailerBytes > this.#limits.maxTrailerBytes)
      return { status: 431, reason: 'trailers-too-large' };
    // Refuse a bad trailer line as soon as it shows (llhttp does), not at the section's end.
    const bad = checkPartialFields(all, 0, this.#limits);
    if (bad !== undefined) return bad;
    if (this.#trailer.length > 1) this.#trailer = [all];
    return buf.length;
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
/** The last chunk and an empty trailer section. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** The framing line that precedes a chunk of `size` bytes (size > 0). */
export function chunkHeader(size: number): Buffer {
  return Buffer.from(`${size.toString(16)}\r\n`, 'latin1');
}
export { CRLF };

/** The last chunk with trailer fields (names and values already validated by their source). */
export function lastChunk(trailers: HeaderList | undefined): Buffer {
  if (trailers === undefined || trailers.length === 0) return LAST_CHUNK;
  let s = '0\r\n';
  for (let k = 0; k + 1 < trailers.length; k += 2)
    s += `${trailers[k] ?? ''}: ${trailers[k + 1] ?? ''}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}
