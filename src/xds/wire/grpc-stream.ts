/**
 * One bidirectional gRPC call over node:http2 (gRPC over HTTP/2: "PROTOCOL-HTTP2"
 * in grpc/grpc): `POST path` with `content-type: application/grpc` and
 * `te: trailers`, each message a 5-byte prefix (compressed flag, big-endian
 * length) plus its bytes, the status in the trailers (`grpc-status`,
 * percent-encoded `grpc-message`) or in a trailers-only response. The proxy's
 * ADS stream needs nothing more, and grpc-js cost every proxy ~6 MB idle.
 * Compressed messages are refused (nothing asks for compression), as is a
 * message over `maxMessageBytes` (grpc-js's default receive limit, 4 MiB).
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { PeerCertificate } from 'node:tls';

export interface GrpcStreamOptions {
  /** `host:port` (an IPv6 host in brackets). */
  readonly address: string;
  /** `:path`, e.g. `/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources`. */
  readonly path: string;
  /** `:authority` and, with TLS, the SNI. */
  readonly authority: string;
  /** Plaintext (h2c), or TLS verified against `ca` with `checkServerIdentity`. */
  readonly tls?: {
    readonly ca: string;
    readonly checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
  };
  /** Request metadata (lower-case names). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly maxMessageBytes?: number;
  /**
   * HTTP/2 PING interval and how long an answer may take (default 30 s and 10 s, as
   * Istio's bootstrap sets `connection_keepalive` on the xds-grpc cluster): a control
   * plane that vanished without closing the connection ends the call (UNAVAILABLE),
   * so the client reconnects instead of waiting on a dead stream forever.
   */
  readonly keepalive?: { readonly intervalMs: number; readonly timeoutMs: number };
}

/** How a call ended: a gRPC status code (0 OK) and its message. */
export interface GrpcStatus {
  readonly code: number;
  readonly details: string;
}

/** gRPC status codes used here (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A running call. Events: `'headers'` (the server answered), `'message'`
 * (Buffer), then exactly one `'end'` (GrpcStatus) — also for transport
 * failures (UNAVAILABLE) and protocol violations (INTERNAL).
 */
export interface GrpcStream extends EventEmitter {
  write(message: Buffer): void;
  /** Ends the call from this side (CANCELLED unless `status` says why) and closes its connection. */
  cancel(status?: GrpcStatus): void;
}

/**
 * HTTP status → gRPC code (grpc/doc/http-grpc-status-mapping.md), for an answer that is not
 * gRPC; Envoy maps its local replies to gRPC clients the same way.
 */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

function decodeDetails(value: unknown): string {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Opens the call at once; its connection is its own and closes with it. */
export function openGrpcStream(options: GrpcStreamOptions): GrpcStream {
  const events = new EventEmitter() as GrpcStream;
  const maxMessage = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const session = http2.connect(
    `${options.tls === undefined ? 'http' : 'https'}://${options.address}`,
    options.tls === undefined
      ? {}
      : {
          ca: options.tls.ca,
          servername: options.authority,
          checkServerIdentity: options.tls.checkServerIdentity,
          ALPNProtocols: ['h2'],
        },
  );
  let ended = false;
  const isEnded = (): boolean => ended;
  const keepalive = options.keepalive ?? { intervalMs: 30_000, timeoutMs: 10_000 };
  let pingDeadline: NodeJS.Timeout | undefined;
  const pinger = setInterval(() => {
    if (pingDeadline !== undefined || session.destroyed) return;
    pingDeadline = setTimeout(() => {
      finish(
        GRPC_STATUS.UNAVAILABLE,
        `keepalive ping not answered within ${String(keepalive.timeoutMs)} ms`,
      );
    }, keepalive.timeoutMs);
    pingDeadline.unref();
    let sent: boolean;
    try {
      sent = session.ping((error) => {
        clearTimeout(pingDeadline);
        pingDeadline = undefined;
        if (error !== null) finish(GRPC_STATUS.UNAVAILABLE, `keepalive ping: ${error.message}`);
      });
    } catch (error) {
      // A session that cannot ping (closing, destroyed meanwhile) has ended for this call.
      finish(
        GRPC_STATUS.UNAVAILABLE,
        `keepalive ping: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
    if (!sent) {
      clearTimeout(pingDeadline);
      pingDeadline = undefined;
    }
  }, keepalive.intervalMs);
  pinger.unref();
  const finish = (code: number, details: string): void => {
    if (ended) return;
    ended = true;
    clearInterval(pinger);
    clearTimeout(pingDeadline);
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
    if (!session.destroyed) session.destroy();
    events.emit('end', { code, details } satisfies GrpcStatus);
  };
  session.on('error', (error: Error) => {
    finish(GRPC_STATUS.UNAVAILABLE, error.message);
  });
  session.on('close', () => {
    finish(GRPC_STATUS.UNAVAILABLE, 'connection closed');
  });
  const stream = session.request({
    ':method': 'POST',
    ':path': options.path,
    ':authority': options.authority,
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'palisade-proxy',
    ...options.metadata,
  });
  let pending: Buffer = Buffer.alloc(0);
  let gotHeaders = false;
  stream.on('response', (headers) => {
    const status = Number(headers[':status']);
    const type = headers['content-type'] ?? '';
    if (headers['grpc-status'] !== undefined) {
      // Trailers-only: the call ended before any message.
      finish(Number(headers['grpc-status']), decodeDetails(headers['grpc-message']));
      return;
    }
    if (status !== 200 || !/^application\/grpc(?:[+;]|$)/.test(type)) {
      finish(grpcStatusOfHttp(status), `HTTP ${String(status)} ${type}`.trim());
      return;
    }
    gotHeaders = true;
    events.emit('headers');
  });
  stream.on('data', (chunk: Buffer) => {
    if (ended) return;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      if (pending[0] !== 0) {
        finish(GRPC_STATUS.INTERNAL, 'compressed message without a negotiated encoding');
        return;
      }
      const length = pending.readUInt32BE(1);
      if (length > maxMessage) {
        finish(
          GRPC_STATUS.RESOURCE_EXHAUSTED,
          `received message larger than max (${String(length)} vs ${String(maxMessage)})`,
        );
        return;
      }
      if (pending.length < 5 + length) return;
      const message = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      events.emit('message', message);
      if (isEnded()) return; // a listener may have cancelled the call
    }
  });
  stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
    const code = trailers['grpc-status'];
    finish(
      code === undefined ? GRPC_STATUS.UNKNOWN : Number(code),
      decodeDetails(trailers['grpc-message']),
    );
  });
  stream.on('error', (error: Error) => {
    finish(GRPC_STATUS.UNAVAILABLE, error.message);
  });
  stream.on('close', () => {
    // No trailers: reset or torn down (UNAVAILABLE, as grpc-js), or ended without a status.
    const reset = stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
    finish(
      reset || !gotHeaders ? GRPC_STATUS.UNAVAILABLE : GRPC_STATUS.UNKNOWN,
      pending.length > 0
        ? 'stream ended inside a message'
        : reset
          ? `stream reset (HTTP/2 error ${String(stream.rstCode)})`
          : 'stream closed without a status',
    );
  });
  events.write = (message: Buffer): void => {
    if (ended || stream.closed || stream.destroyed) return;
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    stream.write(Buffer.concat([prefix, message]));
  };
  events.cancel = (status?: GrpcStatus): void => {
    finish(status?.code ?? GRPC_STATUS.CANCELLED, status?.details ?? 'cancelled');
  };
  return events;
}
