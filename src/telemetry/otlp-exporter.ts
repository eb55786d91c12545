/**
 * Exports finished spans to an OpenTelemetry collector over OTLP/HTTP with
 * the JSON encoding (`POST /v1/traces`, `Content-Type: application/json`,
 * body = ExportTraceServiceRequest in the OTLP JSON mapping: lowerCamelCase
 * field names, trace/span ids as hex strings, enums as integers, 64-bit
 * integers as decimal strings — OTLP specification, "JSON Protobuf Encoding").
 *
 * Hand-written rather than @opentelemetry/sdk-trace-base + exporter-trace-otlp-http:
 * the proxy already has its span ids and timings, needs only the batching
 * and one documented JSON shape, and the SDK would add a tracer provider,
 * context manager and a dozen packages to every sidecar. The POST goes
 * through an undici Pool, loaded with the first batch (a proxy without an
 * exporter never loads the whole of undici).
 *
 * The request path only calls `export()`, which pushes onto a bounded queue
 * (full → dropped and counted) and never throws or waits. Batches leave on
 * a timer or when `maxBatch` spans are queued, one POST at a time, each with
 * a deadline; failures are counted, never retried (OTLP allows dropping).
 */
import type { Pool } from 'undici';
import { PalisadeError } from '../errors/index.js';
import type { SpanContext } from './trace-context.js';

/** OTLP `Span.SpanKind`. */
export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
const SPAN_KIND: Readonly<Record<SpanKind, number>> = {
  internal: 1,
  server: 2,
  client: 3,
  producer: 4,
  consumer: 5,
};

/** OTLP `Status.StatusCode`. */
export type SpanStatusCode = 'unset' | 'ok' | 'error';
const STATUS_CODE: Readonly<Record<SpanStatusCode, number>> = { unset: 0, ok: 1, error: 2 };

/** Attribute values the proxy records (OTLP AnyValue subset). */
export type AttributeValue = string | number | boolean;

/** A span the proxy has finished. */
export interface FinishedSpan {
  readonly context: SpanContext;
  /** e.g. `reviews.default.svc.cluster.local:9080/*` (Istio names spans after the route). */
  readonly name: string;
  readonly kind: SpanKind;
  /** Epoch nanoseconds, see {@link unixNanoNow}. */
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes?: Readonly<Record<string, AttributeValue>> | undefined;
  readonly status?: { readonly code: SpanStatusCode; readonly message?: string } | undefined;
}

/** The current time in epoch nanoseconds (microsecond resolution). */
export function unixNanoNow(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function anyValue(value: AttributeValue): Record<string, unknown> {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
}

function attributes(
  attrs: Readonly<Record<string, AttributeValue>> | undefined,
): Record<string, unknown>[] {
  if (attrs === undefined) return [];
  return Object.entries(attrs).map(([key, value]) => ({ key, value: anyValue(value) }));
}

/** Options of {@link encodeOtlpTraces}. */
export interface OtlpResourceOptions {
  /** `service.name` resource attribute (e.g. `reviews.default`, as Istio names sidecars). */
  readonly serviceName: string;
  /** Extra resource attributes. */
  readonly resourceAttributes?: Readonly<Record<string, AttributeValue>> | undefined;
  /** InstrumentationScope name; default `palisade-proxy`. */
  readonly scopeName?: string | undefined;
}

/** Encodes spans as an OTLP/JSON ExportTraceServiceRequest object (one resource, one scope). */
export function encodeOtlpTraces(
  spans: readonly FinishedSpan[],
  options: OtlpResourceOptions,
): Record<string, unknown> {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: attributes({
            'service.name': options.serviceName,
            ...options.resourceAttributes,
          }),
        },
        scopeSpans: [
          {
            scope: { name: options.scopeName ?? 'palisade-proxy' },
            spans: spans.map((s) => {
              const out: Record<string, unknown> = {
                traceId: s.context.traceId,
                spanId: s.context.spanId,
              };
              if (s.context.parentSpanId !== undefined) out.parentSpanId = s.context.parentSpanId;
              if (s.context.traceState !== undefined) out.traceState = s.context.traceState;
              out.name = s.name;
              out.kind = SPAN_KIND[s.kind];
              out.startTimeUnixNano = s.startTimeUnixNano.toString();
              out.endTimeUnixNano = s.endTimeUnixNano.toString();
              out.attributes = attributes(s.attributes);
              const status = s.status ?? { code: 'unset' };
              out.status =
                status.message === undefined
                  ? { code: STATUS_CODE[status.code] }
                  : { code: STATUS_CODE[status.code], message: status.message };
              return out;
            }),
          },
        ],
      },
    ],
  };
}

/** Options of {@link createOtlpExporter}. */
export interface OtlpExporterOptions extends OtlpResourceOptions {
  /**
   * Collector URL. A bare origin (`http://collector:4318`) gets `/v1/traces`
   * appended, as OTEL_EXPORTER_OTLP_ENDPOINT does; a URL with a path is used as is.
   */
  readonly endpoint: string;
  /** Spans per POST; a full batch is sent without waiting for the timer. Default 512. */
  readonly maxBatch?: number | undefined;
  /** Longest a span waits in the queue; default 5000 ms. */
  readonly flushIntervalMs?: number | undefined;
  /** Queue bound; spans beyond it are dropped and counted. Default 2048. */
  readonly maxQueue?: number | undefined;
  /** Deadline of one POST; default 10000 ms (the OTLP exporter default). */
  readonly timeoutMs?: number | undefined;
  /** Extra request headers (e.g. a collector token). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** Counters of an exporter. */
export interface OtlpExporterStats {
  /** Spans waiting for a POST. */
  readonly queued: number;
  /** Spans the collector accepted (2xx). */
  readonly exported: number;
  /** Spans dropped because the queue was full or the exporter closed. */
  readonly dropped: number;
  /** Spans lost to a failed POST (connection error, timeout, non-2xx). */
  readonly failed: number;
}

/** Batches and sends finished spans; see the module comment. */
export interface OtlpExporter {
  /** Queues a finished span (unsampled spans are ignored). Never throws, never waits. */
  export(span: FinishedSpan): void;
  /** Sends everything queued now; resolves when done (never rejects). */
  flush(): Promise<void>;
  /** Stops the timer, sends what is queued, closes connections. Idempotent. */
  close(): Promise<void>;
  stats(): OtlpExporterStats;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new PalisadeError(
      'PAL_ERR_CONFIG_INVALID',
      `OTLP exporter: ${name} must be a positive integer`,
      {
        path: name,
        details: { value: v },
      },
    );
  }
  return v;
}

/** Creates an OTLP/HTTP JSON span exporter. Throws PAL_ERR_CONFIG_INVALID on bad options. */
export function createOtlpExporter(options: OtlpExporterOptions): OtlpExporter {
  let url: URL;
  try {
    url = new URL(options.endpoint);
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_CONFIG_INVALID', 'OTLP exporter: endpoint is not a URL', {
      path: 'endpoint',
      cause,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PalisadeError('PAL_ERR_CONFIG_INVALID', 'OTLP exporter: endpoint must be http(s)', {
      path: 'endpoint',
    });
  }
  const maxBatch = positiveInt('maxBatch', options.maxBatch, 512);
  const flushIntervalMs = positiveInt('flushIntervalMs', options.flushIntervalMs, 5000);
  const maxQueue = Math.max(maxBatch, positiveInt('maxQueue', options.maxQueue, 2048));
  const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 10_000);
  const path =
    (url.pathname === '/' || url.pathname === '' ? '/v1/traces' : url.pathname) + url.search;
  let pool: Promise<Pool> | undefined;
  const poolOf = (): Promise<Pool> =>
    (pool ??= import('undici').then(
      (undici) =>
        new undici.Pool(url.origin, {
          connections: 1,
          connectTimeout: timeoutMs,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }),
    ));
  const headers = { ...options.headers, 'content-type': 'application/json' };

  let queue: FinishedSpan[] = [];
  let exported = 0;
  let dropped = 0;
  let failed = 0;
  let closed = false;
  let sending: Promise<void> | undefined;
  let soon = false;

  const post = async (batch: readonly FinishedSpan[]): Promise<void> => {
    try {
      const res = await (
        await poolOf()
      ).request({
        path,
        method: 'POST',
        headers,
        body: JSON.stringify(encodeOtlpTraces(batch, options)),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) exported += batch.length;
      else failed += batch.length;
    } catch {
      failed += batch.length;
    }
  };

  // One POST at a time; a flush drains the queue batch by batch.
  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      await post(batch);
    }
  };
  const flush = (): Promise<void> => {
    sending ??= drain().finally(() => {
      sending = undefined;
    });
    return sending;
  };

  const timer = setInterval(() => {
    void flush();
  }, flushIntervalMs);
  timer.unref();

  return {
    export(span) {
      if (!span.context.sampled) return;
      if (closed || queue.length >= maxQueue) {
        dropped += 1;
        return;
      }
      queue.push(span);
      if (queue.length >= maxBatch && !soon) {
        soon = true;
        setImmediate(() => {
          soon = false;
          void flush();
        }).unref();
      }
    },
    flush: async () => {
      await flush();
      // Spans queued while the previous drain was sending.
      if (queue.length > 0) await flush();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await flush();
      if (queue.length > 0) await flush();
      if (pool !== undefined) await (await pool).close().catch(() => undefined);
    },
    stats: () => ({ queued: queue.length, exported, dropped, failed }),
  };
}
