/**
 * Access logs in Istio's JSON encoding (`meshConfig.accessLogEncoding: JSON`):
 * one JSON object per line with the field names of Istio's default format,
 * each the value of an Envoy command operator (%START_TIME%, %RESPONSE_FLAGS%,
 * …). As Envoy's JSON formatter does, numbers stay numbers (response_code,
 * bytes, duration), a value that is not set is `null`, and %RESPONSE_FLAGS%
 * is `-` when there are none. Keys are in alphabetical order, as Envoy prints them.
 *
 * The line is written out field by field (JSON.stringify only for a string
 * that needs escaping): it is the whole cost of a log line (see
 * bench/telemetry.bench.ts); the logger writes lines to a stream and drops (and counts) lines while the
 * stream is backed up instead of buffering without bound.
 */
import type { Writable } from 'node:stream';

/** One request or TCP connection as the proxy saw it. Absent fields log as `null`. */
export interface AccessLogEntry {
  /** %START_TIME%: when the first byte arrived (a Date or epoch milliseconds). */
  readonly startTime: Date | number;
  /** %REQ(:METHOD)% */
  readonly method?: string | undefined;
  /** %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%: the path before any rewrite. */
  readonly path?: string | undefined;
  /** %PROTOCOL%: `HTTP/1.1`, `HTTP/2`; absent for TCP. */
  readonly protocol?: string | undefined;
  /** %RESPONSE_CODE%: 0 when no response was sent (and for TCP). */
  readonly responseCode?: number | undefined;
  /** %RESPONSE_FLAGS%: Envoy flags (`UH`, `UF,URX`, `NR`); none → `-`. */
  readonly responseFlags?: string | undefined;
  /** %RESPONSE_CODE_DETAILS%: `via_upstream`, `route_not_found`, `rbac_access_denied_matched_policy[…]`. */
  readonly responseCodeDetails?: string | undefined;
  /** %CONNECTION_TERMINATION_DETAILS% */
  readonly connectionTerminationDetails?: string | undefined;
  /** %UPSTREAM_TRANSPORT_FAILURE_REASON%: e.g. a TLS handshake error. */
  readonly upstreamTransportFailureReason?: string | undefined;
  /** %BYTES_RECEIVED%: request body bytes (TCP: bytes from downstream). */
  readonly bytesReceived?: number | undefined;
  /** %BYTES_SENT%: response body bytes (TCP: bytes to downstream). */
  readonly bytesSent?: number | undefined;
  /** %DURATION%: total milliseconds (rounded down, as Envoy does). */
  readonly durationMs?: number | undefined;
  /** %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%: milliseconds spent upstream. */
  readonly upstreamServiceTimeMs?: number | undefined;
  /** %REQ(X-FORWARDED-FOR)% */
  readonly xForwardedFor?: string | undefined;
  /** %REQ(USER-AGENT)% */
  readonly userAgent?: string | undefined;
  /** %REQ(X-REQUEST-ID)% */
  readonly requestId?: string | undefined;
  /** %REQ(:AUTHORITY)% */
  readonly authority?: string | undefined;
  /** %UPSTREAM_HOST%: `ip:port` of the chosen endpoint. */
  readonly upstreamHost?: string | undefined;
  /** %UPSTREAM_CLUSTER%: e.g. `outbound|9080||reviews.default.svc.cluster.local`. */
  readonly upstreamCluster?: string | undefined;
  /** %UPSTREAM_LOCAL_ADDRESS% */
  readonly upstreamLocalAddress?: string | undefined;
  /** %DOWNSTREAM_LOCAL_ADDRESS% */
  readonly downstreamLocalAddress?: string | undefined;
  /** %DOWNSTREAM_REMOTE_ADDRESS% */
  readonly downstreamRemoteAddress?: string | undefined;
  /** %REQUESTED_SERVER_NAME%: the TLS SNI. */
  readonly requestedServerName?: string | undefined;
  /** %ROUTE_NAME% */
  readonly routeName?: string | undefined;
}

/** The field names Istio's default JSON access log uses, in the order lines print them. */
export const ACCESS_LOG_FIELDS = [
  'authority',
  'bytes_received',
  'bytes_sent',
  'connection_termination_details',
  'downstream_local_address',
  'downstream_remote_address',
  'duration',
  'method',
  'path',
  'protocol',
  'request_id',
  'requested_server_name',
  'response_code',
  'response_code_details',
  'response_flags',
  'route_name',
  'start_time',
  'upstream_cluster',
  'upstream_host',
  'upstream_local_address',
  'upstream_service_time',
  'upstream_transport_failure_reason',
  'user_agent',
  'x_forwarded_for',
] as const;

/** Whether JSON.stringify would escape something in `value` (a control, `"`, `\\`, non-ASCII). */
function needsEscape(value: string): boolean {
  for (let i = 0; i < value.length; i += 1) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x7f) return true;
  }
  return false;
}

/** A string field as JSON: `null` when absent or empty. */
function s(value: string | undefined): string {
  if (value === undefined || value === '') return 'null';
  return needsEscape(value) ? JSON.stringify(value) : `"${value}"`;
}

/** A number field as JSON: whole, not negative; `null` when absent or not finite. */
function n(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value)
    ? 'null'
    : String(Math.max(0, Math.floor(value)));
}

/** A count that Envoy prints as 0 when unknown. */
function count(value: number | undefined): string {
  const v = n(value);
  return v === 'null' ? '0' : v;
}

// Requests of the same second share the ISO text up to its milliseconds.
let lastSecond = Number.NaN;
let lastPrefix = '';

/** %START_TIME% as JSON: ISO 8601 UTC with milliseconds, or `null` for an invalid time. */
function isoStart(startTime: Date | number): string {
  // Whole milliseconds, as a Date keeps them (TimeClip truncates).
  const ms = Math.trunc(typeof startTime === 'number' ? startTime : startTime.getTime());
  if (!(Math.abs(ms) <= 8.64e15)) return 'null'; // NaN, or beyond a Date's range
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    const date = new Date(second * 1000);
    if (Number.isNaN(date.getTime())) return 'null';
    // `2026-12-04T05:43:40.000Z` without its `000Z`.
    lastPrefix = `"${date.toISOString().slice(0, -4)}`;
    lastSecond = second;
  }
  const milli = ms - second * 1000;
  return `${lastPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${String(milli)}Z"`;
}

/**
 * Formats one entry as a JSON line (with the trailing newline) in Istio's
 * field names and Envoy's conventions. Never throws. Written out field by
 * field rather than through JSON.stringify on an object (~3× less time per
 * line, bench/telemetry); a string that needs escaping still goes through
 * JSON.stringify, so the line is byte for byte what it would write
 * (src/telemetry/access-log.test.ts checks it against that).
 */
export function formatAccessLog(entry: AccessLogEntry): string {
  const upstreamTime = n(entry.upstreamServiceTimeMs);
  return (
    `{"authority":${s(entry.authority)}` +
    `,"bytes_received":${count(entry.bytesReceived)}` +
    `,"bytes_sent":${count(entry.bytesSent)}` +
    `,"connection_termination_details":${s(entry.connectionTerminationDetails)}` +
    `,"downstream_local_address":${s(entry.downstreamLocalAddress)}` +
    `,"downstream_remote_address":${s(entry.downstreamRemoteAddress)}` +
    `,"duration":${n(entry.durationMs)}` +
    `,"method":${s(entry.method)}` +
    `,"path":${s(entry.path)}` +
    `,"protocol":${s(entry.protocol)}` +
    `,"request_id":${s(entry.requestId)}` +
    `,"requested_server_name":${s(entry.requestedServerName)}` +
    `,"response_code":${count(entry.responseCode)}` +
    `,"response_code_details":${s(entry.responseCodeDetails)}` +
    `,"response_flags":${entry.responseFlags === undefined || entry.responseFlags === '' ? '"-"' : s(entry.responseFlags)}` +
    `,"route_name":${s(entry.routeName)}` +
    `,"start_time":${isoStart(entry.startTime)}` +
    `,"upstream_cluster":${s(entry.upstreamCluster)}` +
    `,"upstream_host":${s(entry.upstreamHost)}` +
    `,"upstream_local_address":${s(entry.upstreamLocalAddress)}` +
    // A response header in Envoy, so a string.
    `,"upstream_service_time":${upstreamTime === 'null' ? 'null' : `"${upstreamTime}"`}` +
    `,"upstream_transport_failure_reason":${s(entry.upstreamTransportFailureReason)}` +
    `,"user_agent":${s(entry.userAgent)}` +
    `,"x_forwarded_for":${s(entry.xForwardedFor)}}\n`
  );
}

/** Options of {@link createAccessLogger}. */
export interface AccessLoggerOptions {
  /** Where lines go (e.g. `process.stdout`, as Istio's `accessLogFile: /dev/stdout`). */
  readonly stream: Writable;
}

/** Writes access log lines; never throws into the request path. */
export interface AccessLogger {
  /** Formats and queues one entry (dropped and counted while the stream is backed up). */
  log(entry: AccessLogEntry): void;
  /** Writes queued lines now (they are otherwise written every {@link FLUSH_INTERVAL_MS}, or at {@link FLUSH_BYTES}). */
  flush(): void;
  /** Lines dropped because the stream was backed up, closed or failing. */
  readonly dropped: number;
  /** Lines written. */
  readonly written: number;
}

/** Most lines held for one write; beyond it lines are dropped like a backed-up stream. */
const MAX_BATCH_LINES = 4096;
/** Queued lines are written this long after the first of them (Envoy buffers file logs too). */
export const FLUSH_INTERVAL_MS = 50;
/** A batch this large is written at once. */
export const FLUSH_BYTES = 32 * 1024;

/**
 * An access logger over a stream. Lines go out in batches, one `write` each:
 * {@link FLUSH_INTERVAL_MS} after the first line of a batch, or as soon as
 * it holds {@link FLUSH_BYTES} (stdout to a file or pipe writes
 * synchronously: a syscall per request was ~10 % of the proxy's CPU, and a
 * batch per event-loop turn still ~12 % of a two-proxy chain's, since under
 * load a turn holds one or two requests). While the stream signals
 * backpressure (`write()` returned false and no `drain` yet) lines are
 * dropped and counted rather than buffered, so a slow log consumer costs
 * lines, not memory.
 */
export function createAccessLogger(options: AccessLoggerOptions): AccessLogger {
  const { stream } = options;
  let dropped = 0;
  let written = 0;
  let blocked = false;
  let broken = false;
  let batch = '';
  let lines = 0;
  let timer: NodeJS.Timeout | undefined;
  stream.on('drain', () => {
    blocked = false;
  });
  stream.on('error', () => {
    broken = true;
  });
  const unusable = (): boolean => blocked || broken || stream.destroyed || stream.writableEnded;
  const flush = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (lines === 0) return;
    const chunk = batch;
    const count = lines;
    batch = '';
    lines = 0;
    if (unusable()) {
      dropped += count;
      return;
    }
    written += count;
    if (!stream.write(chunk)) blocked = true;
  };
  return {
    get dropped() {
      return dropped;
    },
    get written() {
      return written;
    },
    flush,
    log(entry) {
      if (unusable() || lines >= MAX_BATCH_LINES) {
        dropped += 1;
        return;
      }
      let line: string;
      try {
        line = formatAccessLog(entry);
      } catch {
        dropped += 1;
        return;
      }
      batch += line;
      lines += 1;
      if (batch.length >= FLUSH_BYTES) flush();
      else timer ??= setTimeout(flush, FLUSH_INTERVAL_MS);
    },
  };
}
