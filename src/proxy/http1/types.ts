/**
 * The raw-socket HTTP/1.1 transport's own small types: request and response
 * heads as parsed (the head's bytes are kept, so a head can be forwarded
 * without being re-serialised), the body framing read from a head, and the
 * limits a connection enforces.
 */

/**
 * Header fields in arrival order, flat: `[name0, value0, name1, value1, …]`.
 * Names keep their case as received; values are latin1 strings with leading
 * and trailing whitespace removed (RFC 9110 §5.5). Node's `rawHeaders` shape.
 */
export type HeaderList = string[];

/** How a message's body is delimited (RFC 9112 §6.3). */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Response only: the body ends when the connection closes (§6.3 rule 8). */
  | { readonly kind: 'close' };

/** The head fields both directions share. */
interface HeadCommon {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (no other version is accepted). */
  readonly minor: 0 | 1;
  readonly headers: HeaderList;
  /** The head as received, start line through the empty line (for verbatim forwarding). */
  readonly raw: Buffer;
  /**
   * Byte offsets in `raw`: `lines[i]` is where header line `i` starts; `lines[n]`
   * (n = header count) is where the final empty line starts. The start line ends at `lines[0]`.
   */
  readonly lines: readonly number[];
  readonly framing: BodyFraming;
  /** False when the connection must close after this message (§9.3, `Connection: close`, 1.0). */
  readonly keepAlive: boolean;
  /** Lower-case names listed in `Connection` (each is hop-by-hop for this message, RFC 9110 §7.6.1). */
  readonly connectionTokens: readonly string[];
}

/** A parsed request head (RFC 9112 §3). */
export interface RequestHead extends HeadCommon {
  readonly method: string;
  /** The request-target as sent: origin-form, absolute-form, authority-form (CONNECT) or `*`. */
  readonly target: string;
  /** The `Host` field value (`''` when absent, which only HTTP/1.0 may do). */
  readonly host: string;
  /** `Expect: 100-continue` was sent (RFC 9110 §10.1.1). */
  readonly expectContinue: boolean;
  /** `Upgrade` was asked for (its value, lower-case), or `''`. */
  readonly upgrade: string;
}

/** A parsed response head (RFC 9112 §4). */
export interface ResponseHead extends HeadCommon {
  readonly status: number;
  readonly reason: string;
}

/** Limits a connection enforces on what it reads (defaults: {@link DEFAULT_LIMITS}). */
export interface Http1Limits {
  /** Bytes of a head, start line through the empty line (Node's and Envoy's default: 16 KiB → 431). */
  readonly maxHeadBytes: number;
  /** Header fields per head (Envoy's `max_headers_count` default 100 → 431). */
  readonly maxHeaders: number;
  /** Bytes of a chunked body's trailer section. */
  readonly maxTrailerBytes: number;
}

export const DEFAULT_LIMITS: Http1Limits = {
  maxHeadBytes: 16 * 1024,
  maxHeaders: 100,
  maxTrailerBytes: 16 * 1024,
};

/** Why a message was refused, and the status a server answers with. */
export interface ParseFailure {
  readonly status: 400 | 408 | 431 | 501 | 505;
  /** Short and stable, like llhttp's `HPE_*` codes (e.g. `invalid-header-token`). */
  readonly reason: string;
}
