/**
 * The checks every HTTP listener (outbound, gateway, inbound) runs on a
 * request head before anything else sees it, so that routing, policy and the
 * app always see the same, well-formed request (the CVE-2019-9901 class):
 *
 * - HTTP version: only HTTP/1.1 on the HTTP/1 codec; HTTP/1.0 and HTTP/0.9
 *   get 426 Upgrade Required unless `http_protocol_options.accept_http_10`
 *   is set (Envoy's default, and Istio's); any other version (`HTTP/2.0` in
 *   a request line) is a protocol error, 400. HTTP/2 requests are told apart
 *   by their object (`Http2ServerRequest`), never by the version they claim.
 * - Framing: `Transfer-Encoding` other than exactly `chunked` is 501 Not
 *   Implemented, as Envoy answers (`identity, chunked`, `gzip`, repeated
 *   fields); Content-Length with Transfer-Encoding, repeated Content-Length,
 *   obs-fold, bare CR/LF and NUL are refused by the HTTP/1.1 parser
 *   (src/proxy/http1, at least as strict as llhttp) with 400 before a request exists.
 * - `Host`: more than one is 400 (RFC 9112 §3.2; Node would keep the first).
 * - Path: `#` (a fragment) is 400 as Envoy does by default; bytes outside
 *   visible ASCII are 400; the path is normalised per the HCM's
 *   `normalize_path` / `merge_slashes` / `path_with_escaped_slashes_action`
 *   (Istio's meshConfig.pathNormalization: BASE sets normalize_path, the
 *   default here too since the policy evaluators always normalise at least
 *   that much) and written back into the request, so the forwarded path is
 *   the one that was routed and authorised.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { normalizePath, type PathNormalization } from '../policy/evaluation.js';
import { isH2, type AnyRequest } from './h2-downstream.js';
import { lowerName } from './http1/field-names.js';
import { StringMemo } from './string-memo.js';

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};

/** How long a client may take to send a request head (from the connection's first byte on). */
export const REQUEST_HEADERS_TIMEOUT_MS = 15_000;
/** Largest request head accepted (Envoy's max_request_headers_kb is 60; the HTTP/1.1 parser's limit here, node:http's default). */
export const MAX_REQUEST_HEADER_BYTES = 16_384;
/** What a listener's HttpConnectionManager says about request heads. */
export interface RequestHeadPolicy {
  readonly normalization: PathNormalization;
  /** `path_with_escaped_slashes_action: REJECT_REQUEST`: `%2F`/`%5C` are refused with 400. */
  readonly rejectEscapedSlashes: boolean;
  readonly acceptHttp10: boolean;
}

/** Envoy's PathWithEscapedSlashesAction by name and number. */
const UNESCAPE = new Set(['UNESCAPE_AND_FORWARD', 'UNESCAPE_AND_REDIRECT', 3, 4]);
const REJECT = new Set(['REJECT_REQUEST', 2]);

/** Compiles the request-head policy of an HCM's typed_config (none: Envoy's defaults). */
export function compileRequestHeadPolicy(hcm: R | undefined): RequestHeadPolicy {
  const config = hcm ?? {};
  const normalize = rec(config['normalize_path'])['value'] !== false;
  const merge = config['merge_slashes'] === true;
  const escaped = config['path_with_escaped_slashes_action'];
  return {
    normalization: !normalize
      ? 'NONE'
      : UNESCAPE.has(escaped as string)
        ? 'DECODE_AND_MERGE_SLASHES'
        : merge
          ? 'MERGE_SLASHES'
          : 'BASE',
    rejectEscapedSlashes: REJECT.has(escaped as string),
    acceptHttp10: rec(config['http_protocol_options'])['accept_http_10'] === true,
  };
}

/** A request head refused: the local reply to send. */
export interface HeadRejection {
  readonly status: number;
  readonly body: string;
  /** Envoy's response code details, for the access log. */
  readonly details: string;
}

function reject(status: number, body: string, details: string): HeadRejection {
  return { status, body, details };
}

/**
 * The `Transfer-Encoding` values and the `Host` count of the raw header list (HTTP/1.1
 * requests keep every repetition there), in one pass that lower-cases only names of those
 * lengths (two passes lower-casing every name were ~0.5 % of the inbound proxy's CPU).
 */
function framingFields(req: { readonly rawHeaders: readonly string[] }): {
  te: string[];
  hosts: number;
} {
  const te: string[] = [];
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.length === 4 && lowerName(name) === 'host') hosts += 1;
    else if (name.length === 17 && lowerName(name) === 'transfer-encoding')
      te.push(raw[i + 1] ?? '');
  }
  return { te, hosts };
}

const VISIBLE_ASCII = /^[\x21-\x7e]*$/;
const ESCAPED_SLASH = /%(2f|5c)/i;
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)/;

/**
 * An absolute-form target's authority and origin-form rest; null for one refused (not
 * `http`, no authority, userinfo or whitespace in it); undefined when `url` is not in
 * absolute form. A function of `url` only, so answers are kept (bounded): the regexps ran
 * on every request from a client using the proxy as its HTTP proxy.
 */
const absoluteForm = new StringMemo(readAbsoluteForm, 1024, 512);

function readAbsoluteForm(url: string): { host: string; target: string } | null | undefined {
  const absolute = ABSOLUTE_FORM.exec(url);
  if (absolute === null) return undefined;
  const host = absolute[2];
  if (absolute[1]?.toLowerCase() !== 'http' || host === undefined || host === '') return null;
  if (/[@\s]/.test(host)) return null;
  let target = url.slice(absolute[0].length);
  if (target === '' || target.startsWith('?')) target = `/${target}`;
  return { host, target };
}

/**
 * Checks and normalises `req` in place (its `url` becomes the normalised
 * target); returns the rejection to answer with, or undefined when the
 * request may go on. CONNECT requests keep their authority-form target.
 */
export function checkRequestHead(
  req: AnyRequest,
  policy: RequestHeadPolicy,
): HeadRejection | undefined {
  if (!isH2(req)) {
    const h1 = req;
    if (h1.httpVersionMajor !== 1 || h1.httpVersionMinor !== 1) {
      const old =
        (h1.httpVersionMajor === 1 && h1.httpVersionMinor === 0) ||
        (h1.httpVersionMajor === 0 && h1.httpVersionMinor === 9);
      if (!old) return reject(400, 'Bad Request', 'http1.codec_error');
      if (!policy.acceptHttp10) return reject(426, 'Upgrade Required', 'low_version');
    }
    const { te, hosts } = framingFields(h1);
    if (te.length > 1 || (te.length === 1 && te[0]?.trim().toLowerCase() !== 'chunked'))
      return reject(501, 'Not Implemented', 'http1.invalid_transfer_encoding');
    if (hosts > 1) return reject(400, 'Bad Request', 'http1.duplicate_host');
  }
  if (req.method === 'CONNECT') return undefined;
  const url = req.url ?? '';
  if (!VISIBLE_ASCII.test(url)) return reject(400, 'Bad Request', 'http1.invalid_url');
  if (url.includes('#')) return reject(400, 'Bad Request', 'http.invalid_path');
  // Absolute-form (RFC 9112 §3.2.2, an explicit proxy's request) becomes origin-form with the
  // URL's authority as Host, as Envoy's HTTP/1 codec does: policy, routing and the app then
  // read one path and one authority, never `http://x/admin` beside `/admin`.
  let target = url;
  // An origin-form target (every inbound one) never matches the absolute form: no regexp run.
  const absolute = url.charCodeAt(0) === 0x2f ? undefined : absoluteForm.get(url);
  if (absolute === null) return reject(400, 'Bad Request', 'http1.invalid_url');
  if (absolute !== undefined) {
    req.headers.host = absolute.host;
    target = absolute.target;
  } else if (!url.startsWith('/')) {
    // OPTIONS * and other origin-less targets have no path to route or authorise.
    return reject(400, 'Bad Request', 'http.invalid_path');
  }
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  if (policy.rejectEscapedSlashes && ESCAPED_SLASH.test(rawPath))
    return reject(400, 'Bad Request', 'http.invalid_path');
  // Fast path: nothing to decode, no dot segment, no slash run to merge — already normal.
  if (
    !/[%\\]|\/\./.test(rawPath) &&
    (policy.normalization === 'BASE' || policy.normalization === 'NONE' || !rawPath.includes('//'))
  ) {
    if (target !== url) req.url = target;
    return undefined;
  }
  const normalized = normalizePath(target, policy.normalization);
  if (!normalized.ok) return reject(400, 'Bad Request', 'http.invalid_path');
  const next = `${normalized.path}${q === -1 ? '' : `?${normalized.query}`}`;
  if (next !== url) req.url = next;
  return undefined;
}

/**
 * An HCM's `upgrade_configs` compiled: the upgrade types with at least one enabled entry, or
 * undefined when it has none (then only `websocket` is allowed).
 */
export function compileHcmUpgrades(configs: unknown): ReadonlySet<string> | undefined {
  if (!Array.isArray(configs)) return undefined;
  const allowed = new Set<string>();
  for (const c of list(configs))
    if (rec(c['enabled'])['value'] !== false) allowed.add(String(c['upgrade_type']).toLowerCase());
  return allowed;
}

/** A route's `upgrade_configs` compiled: each type's first entry decides (enabled or not). */
export function compileRouteUpgrades(configs: unknown): ReadonlyMap<string, boolean> {
  const decided = new Map<string, boolean>();
  for (const c of list(configs)) {
    const type = String(c['upgrade_type']).toLowerCase();
    if (!decided.has(type)) decided.set(type, rec(c['enabled'])['value'] !== false);
  }
  return decided;
}

/**
 * The upgrade types a route allows (Envoy's `upgrade_configs`, compiled with the HCM and
 * the route): the route's entries override the HCM's; an HCM without any allows
 * `websocket` only, as Istio configures every HTTP connection manager. `h2c` is never
 * relayed: an HTTP/2 session inside the tunnel would bypass routing and policy per request.
 */
export function upgradeAllowedBy(
  type: string,
  hcm: ReadonlySet<string> | undefined,
  route: ReadonlyMap<string, boolean>,
): boolean {
  const wanted = type.trim().toLowerCase();
  if (wanted === 'h2c' || wanted === '') return false;
  const decided = route.get(wanted);
  if (decided !== undefined) return decided;
  return hcm === undefined ? wanted === 'websocket' : hcm.has(wanted);
}

/** Envoy's PathWithEscapedSlashesAction values (by name and number). */
const ESCAPED_SLASH_ACTIONS = new Set<unknown>([
  'IMPLEMENTATION_SPECIFIC_DEFAULT',
  'KEEP_UNCHANGED',
  'REJECT_REQUEST',
  'UNESCAPE_AND_REDIRECT',
  'UNESCAPE_AND_FORWARD',
  0,
  1,
  2,
  3,
  4,
]);

/**
 * Problems with an HCM's request-head fields as this proxy enforces them: an
 * unknown `path_with_escaped_slashes_action`, or an `upgrade_configs` entry with
 * anything but `upgrade_type` and `enabled` (per-upgrade `filters` would be
 * skipped: NACK rather than fail open).
 */
export function hcmHeadProblems(hcm: R, at: string): string[] {
  const problems: string[] = [];
  const action = hcm['path_with_escaped_slashes_action'];
  if (action !== undefined && !ESCAPED_SLASH_ACTIONS.has(action))
    problems.push(
      `${at}.path_with_escaped_slashes_action: unknown value ${JSON.stringify(action)}`,
    );
  problems.push(...upgradeConfigProblems(hcm['upgrade_configs'], `${at}.upgrade_configs`));
  return problems;
}

/**
 * Problems with an `upgrade_configs` list (an HCM's or a RouteAction's): an entry with
 * anything but `upgrade_type` and `enabled`, or without a type.
 */
export function upgradeConfigProblems(configs: unknown, at: string): string[] {
  const problems: string[] = [];
  if (configs !== undefined && !Array.isArray(configs)) problems.push(`${at}: must be a list`);
  list(configs).forEach((c, i) => {
    for (const key of Object.keys(c))
      if (key !== 'upgrade_type' && key !== 'enabled')
        problems.push(`${at}[${String(i)}]: unsupported field ${key}`);
    if (typeof c['upgrade_type'] !== 'string' || c['upgrade_type'] === '')
      problems.push(`${at}[${String(i)}]: upgrade_type is required`);
  });
  return problems;
}

function list(value: unknown): R[] {
  return Array.isArray(value) ? value.map(rec) : [];
}

/** Writes a rejection on an HTTP/1.1 socket that has no response object (upgrades, parse errors). */
export function rejectOnSocket(socket: Duplex, rejection: HeadRejection): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${String(rejection.status)} ${rejection.body}\r\ncontent-type: text/plain\r\n` +
      `content-length: ${String(Buffer.byteLength(rejection.body))}\r\nconnection: close\r\n\r\n` +
      rejection.body,
  );
}

/** The answers to a head the HTTP/1.1 parser refused. */
const CODEC_REJECTIONS = {
  timeout: reject(408, 'Request Timeout', 'request_header_timeout'),
  tooLarge: reject(431, 'Request Header Fields Too Large', 'http1.codec_error'),
  bad: reject(400, 'Bad Request', 'http1.codec_error'),
  transferEncoding: reject(501, 'Not Implemented', 'http1.invalid_transfer_encoding'),
  http09: reject(426, 'Upgrade Required', 'low_version'),
};

/**
 * Answers a request the HTTP/1.1 parser refused (src/proxy/http1) as Envoy's
 * codec does; nothing of such a request is ever forwarded: 408 for a head not
 * complete in time, 431 for an oversized head, 501 for a transfer coding other
 * than chunked, 426 for HTTP/0.9 (as checkRequestHead answers HTTP/1.0), 400
 * for anything else (a version above 1.x too); a socket that cannot be written
 * is destroyed.
 */
export function answerHttp1Failure(
  failure: { status: number; reason: string },
  socket: Duplex,
): void {
  const { status } = failure;
  rejectOnSocket(
    socket,
    failure.reason === 'http-0.9'
      ? CODEC_REJECTIONS.http09
      : status === 408
        ? CODEC_REJECTIONS.timeout
        : status === 431
          ? CODEC_REJECTIONS.tooLarge
          : status === 501
            ? CODEC_REJECTIONS.transferEncoding
            : CODEC_REJECTIONS.bad,
  );
}

/** Response headers of a local rejection (`connection: close` on HTTP/1.1: framing is in doubt). */
export function rejectionHeaders(req: AnyRequest, rejection: HeadRejection): OutgoingHttpHeaders {
  return {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(rejection.body),
    ...(isH2(req) ? {} : { connection: 'close' }),
  };
}
