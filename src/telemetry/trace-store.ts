/**
 * The trace receiver `palisade up --tracing` runs: an OTLP/HTTP collector
 * endpoint (`POST /v1/traces`, protobuf or JSON encoding, OTLP specification
 * "OTLP/HTTP") that keeps recent spans in a bounded in-memory store and
 * serves them as JSON for the dashboard and for scripts:
 *
 * - `GET /api/traces?service=&minDurationMs=&error=true|false&limit=` →
 *   `{"traces":[{traceId, rootService, rootName, startTimeUnixMs, durationMs,
 *   spanCount, services, error}]}`, newest first;
 * - `GET /api/traces/{traceId}` → `{traceId, spans:[{spanId, parentSpanId,
 *   name, service, workload, kind, startTimeUnixMs, durationMs, error,
 *   attributes}]}`.
 *
 * Why not a real backend: Jaeger (all-in-one) and Tempo are not packaged in
 * Debian, and npm has no maintained trace backend; OpenTelemetry Collector
 * is not packaged either. This receiver is only what the local mesh needs.
 *
 * Bounds: at most `maxTraces` traces and `maxSpans` spans (oldest trace
 * evicted first), 4 MiB per POST. It binds loopback only: spans carry URLs
 * and principals.
 */
import * as http from 'node:http';
import { isIPv4, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type protobuf from 'protobufjs';
import { PalisadeError } from '../errors/index.js';

/** OTLP `SpanKind` numbers → names. */
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;

/** One stored span, as served by `GET /api/traces/{id}`. */
export interface StoredSpan {
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** Resource `service.name` (Istio: `<workload>.<namespace>`). */
  readonly service: string;
  /** The workload part of the service name. */
  readonly workload: string;
  readonly kind: string;
  readonly startTimeUnixMs: number;
  readonly durationMs: number;
  readonly error: boolean;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

/** One trace in `GET /api/traces`. */
export interface TraceSummary {
  readonly traceId: string;
  readonly rootService: string;
  readonly rootName: string;
  readonly startTimeUnixMs: number;
  readonly durationMs: number;
  readonly spanCount: number;
  readonly services: readonly string[];
  readonly error: boolean;
}

/** Filters of {@link TraceStore.search}. */
export interface TraceQuery {
  readonly service?: string | undefined;
  readonly minDurationMs?: number | undefined;
  readonly error?: boolean | undefined;
  readonly limit?: number | undefined;
}

/** The bounded store. */
export interface TraceStore {
  /** Adds the spans of one decoded ExportTraceServiceRequest; returns how many were kept. */
  add(request: unknown): number;
  search(query: TraceQuery): TraceSummary[];
  trace(traceId: string): StoredSpan[] | undefined;
  readonly size: { readonly traces: number; readonly spans: number };
}

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** OTLP ids: hex in JSON, bytes in protobuf (decoded here to base64 by toObject). */
function hexId(v: unknown, bytes: number): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  if (new RegExp(`^[0-9a-fA-F]{${String(bytes * 2)}}$`).test(v)) return v.toLowerCase();
  const b = Buffer.from(v, 'base64');
  return b.length === bytes ? b.toString('hex') : undefined;
}

function anyValue(v: unknown): string | number | boolean | undefined {
  const o = rec(v);
  if (typeof o['stringValue'] === 'string') return o['stringValue'];
  if (typeof o['boolValue'] === 'boolean') return o['boolValue'];
  if (o['intValue'] !== undefined) return Number(o['intValue']);
  if (typeof o['doubleValue'] === 'number') return o['doubleValue'];
  return undefined;
}

function attributesOf(v: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list(v).slice(0, 128)) {
    const key = rec(kv)['key'];
    const value = anyValue(rec(kv)['value']);
    if (typeof key === 'string' && value !== undefined) out[key] = value;
  }
  return out;
}

/** Epoch nanoseconds (decimal string or number) → milliseconds. */
function nanosToMs(v: unknown): number {
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return Number(BigInt(v) / 1000n) / 1000;
  if (typeof v === 'number' && Number.isFinite(v)) return v / 1e6;
  return 0;
}

/** Creates a store keeping at most `maxTraces` traces and `maxSpans` spans. */
export function createTraceStore(maxTraces = 1_000, maxSpans = 10_000): TraceStore {
  // Map order = insertion order: the first key is the oldest trace.
  const traces = new Map<string, Map<string, StoredSpan>>();
  let spanCount = 0;
  const evict = (): void => {
    while (traces.size > maxTraces || spanCount > maxSpans) {
      const oldest = traces.keys().next();
      if (oldest.done === true) return;
      spanCount -= traces.get(oldest.value)?.size ?? 0;
      traces.delete(oldest.value);
    }
  };
  const summary = (traceId: string, spans: readonly StoredSpan[]): TraceSummary => {
    const ids = new Set(spans.map((s) => s.spanId));
    const roots = spans.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
    const root = [...roots].sort((a, b) => a.startTimeUnixMs - b.startTimeUnixMs)[0] ?? spans[0];
    const start = Math.min(...spans.map((s) => s.startTimeUnixMs));
    const end = Math.max(...spans.map((s) => s.startTimeUnixMs + s.durationMs));
    return {
      traceId,
      rootService: root?.service ?? '',
      rootName: root?.name ?? '',
      startTimeUnixMs: start,
      durationMs: Math.round((end - start) * 1000) / 1000,
      spanCount: spans.length,
      services: [...new Set(spans.map((s) => s.service))].sort(),
      error: spans.some((s) => s.error),
    };
  };
  return {
    add(request) {
      let kept = 0;
      for (const rs of list(rec(request)['resourceSpans'])) {
        const resource = attributesOf(rec(rec(rs)['resource'])['attributes']);
        const service = String(resource['service.name'] ?? 'unknown');
        for (const ss of list(rec(rs)['scopeSpans']))
          for (const raw of list(rec(ss)['spans'])) {
            const s = rec(raw);
            const traceId = hexId(s['traceId'], 16);
            const spanId = hexId(s['spanId'], 8);
            if (traceId === undefined || spanId === undefined) continue;
            const start = nanosToMs(s['startTimeUnixNano']);
            const end = nanosToMs(s['endTimeUnixNano']);
            const kind = typeof s['kind'] === 'number' ? KINDS[s['kind']] : s['kind'];
            const span: StoredSpan = {
              spanId,
              parentSpanId: hexId(s['parentSpanId'], 8),
              name: typeof s['name'] === 'string' ? s['name'].slice(0, 512) : '',
              service,
              workload: service.split('.')[0] ?? service,
              kind:
                typeof kind === 'string'
                  ? kind.replace(/^SPAN_KIND_/, '').toLowerCase()
                  : 'unspecified',
              startTimeUnixMs: start,
              durationMs: Math.max(0, Math.round((end - start) * 1000) / 1000),
              error:
                rec(s['status'])['code'] === 2 || rec(s['status'])['code'] === 'STATUS_CODE_ERROR',
              attributes: attributesOf(s['attributes']),
            };
            let spans = traces.get(traceId);
            if (spans === undefined) {
              spans = new Map();
              traces.set(traceId, spans);
            }
            // Keyed by span id: a duplicate is one lookup, not a scan (a single
            // export of 100k spans of one trace was quadratic: minutes of CPU).
            // One trace holds at most maxSpans spans; the rest of a flood is dropped.
            if (spans.has(spanId) || spans.size >= maxSpans) continue;
            spans.set(spanId, span);
            spanCount += 1;
            kept += 1;
            // The store never holds more than maxSpans: evict as we go, so one
            // huge export cannot grow it to the body's size first.
            if (spanCount > maxSpans) evict();
          }
      }
      evict();
      return kept;
    },
    search(query) {
      const out: TraceSummary[] = [];
      const limit = Math.min(Math.max(query.limit ?? 20, 1), 1_000);
      for (const [id, spans] of [...traces].reverse()) {
        const s = summary(id, [...spans.values()]);
        if (
          query.service !== undefined &&
          query.service !== '' &&
          !s.services.some((x) => x === query.service || x.split('.')[0] === query.service)
        )
          continue;
        if (query.minDurationMs !== undefined && s.durationMs < query.minDurationMs) continue;
        if (query.error !== undefined && s.error !== query.error) continue;
        out.push(s);
      }
      // Newest first by start time (a trace's spans may arrive out of order).
      return out.sort((a, b) => b.startTimeUnixMs - a.startTimeUnixMs).slice(0, limit);
    },
    trace(traceId) {
      const spans = traces.get(traceId.toLowerCase());
      return spans === undefined
        ? undefined
        : [...spans.values()].sort((a, b) => a.startTimeUnixMs - b.startTimeUnixMs);
    },
    get size() {
      return { traces: traces.size, spans: spanCount };
    },
  };
}

/**
 * The subset of opentelemetry-proto's trace service messages the receiver
 * reads (field numbers from opentelemetry/proto/trace/v1/trace.proto and
 * common/v1/common.proto); unknown fields are skipped by protobuf rules.
 */
let otlp: protobuf.Type | undefined;

/**
 * The message type, built on first use: the proxy imports this module's
 * telemetry siblings, and protobufjs is loaded only where a receiver runs.
 */
function otlpType(): protobuf.Type {
  otlp ??= otlpRoot();
  return otlp;
}

function otlpRoot(): protobuf.Type {
  const protobufJs = createRequire(import.meta.url)('protobufjs') as typeof protobuf;
  return protobufJs.Root.fromJSON({
    nested: {
      otlp: {
        nested: {
          ExportTraceServiceRequest: {
            fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } },
          },
          ResourceSpans: {
            fields: {
              resource: { type: 'Resource', id: 1 },
              scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 },
            },
          },
          Resource: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
          ScopeSpans: { fields: { spans: { rule: 'repeated', type: 'Span', id: 2 } } },
          Span: {
            fields: {
              traceId: { type: 'bytes', id: 1 },
              spanId: { type: 'bytes', id: 2 },
              parentSpanId: { type: 'bytes', id: 4 },
              name: { type: 'string', id: 5 },
              kind: { type: 'int32', id: 6 },
              startTimeUnixNano: { type: 'fixed64', id: 7 },
              endTimeUnixNano: { type: 'fixed64', id: 8 },
              attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
              status: { type: 'Status', id: 15 },
            },
          },
          Status: {
            fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } },
          },
          KeyValue: {
            fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } },
          },
          AnyValue: {
            fields: {
              stringValue: { type: 'string', id: 1 },
              boolValue: { type: 'bool', id: 2 },
              intValue: { type: 'int64', id: 3 },
              doubleValue: { type: 'double', id: 4 },
            },
          },
        },
      },
    },
  }).lookupType('otlp.ExportTraceServiceRequest');
}

/** Decodes an OTLP/HTTP protobuf body to the JSON-mapping object shape. */
export function decodeOtlpProtobuf(body: Uint8Array): unknown {
  const type = otlpType();
  return type.toObject(type.decode(body), { longs: String, bytes: String, defaults: false });
}

/** Encodes a JSON-mapping ExportTraceServiceRequest as protobuf (ids as hex → bytes); for tests and benches. */
export function encodeOtlpProtobuf(request: unknown): Uint8Array {
  const fix = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return v.map((x) => fix(x));
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x, k)]));
    if (typeof v === 'string' && key !== undefined && /^(trace|span|parentSpan)Id$/.test(key))
      return Buffer.from(v, 'hex');
    return v;
  };
  const type = otlpType();
  return type.encode(type.fromObject(fix(request) as R)).finish();
}

/** A running receiver. */
export interface TraceReceiver {
  readonly url: string;
  readonly store: TraceStore;
  close(): Promise<void>;
}

const MAX_BODY = 4 * 1024 * 1024;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * True when every Host header names loopback (127/8, ::1, localhost) or `bound` (the bridge
 * address it listens on in netns mode: an IP literal, which no rebinding name can be), with or
 * without a port.
 */
function loopbackHost(req: http.IncomingMessage, bound: string | undefined): boolean {
  const hosts = req.rawHeaders.filter(
    (_, i, a) => i % 2 === 1 && a[i - 1]?.toLowerCase() === 'host',
  );
  return (
    hosts.length > 0 &&
    hosts.every((h) => {
      const v = h.trim().toLowerCase();
      const name = v.startsWith('[') ? v.slice(1, v.indexOf(']')) : (v.split(':')[0] ?? v);
      return (
        name === 'localhost' ||
        name === '::1' ||
        (isIPv4(name) && name.startsWith('127.')) ||
        (bound !== undefined && name === bound)
      );
    })
  );
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Starts the receiver on `host:port` (loopback; port 0 = any). */
export async function startTraceReceiver(
  options: {
    host?: string;
    port?: number;
    store?: TraceStore;
    /**
     * `host` is a local mesh's bridge address (netns mode: only its pods and this host reach
     * it), where the proxies in the pods export to; any other address must be loopback.
     */
    meshBridge?: boolean;
  } = {},
): Promise<TraceReceiver> {
  const host = options.host ?? '127.0.0.1';
  if (options.meshBridge !== true && !/^127\.|^::1$|^localhost$/.test(host))
    throw new PalisadeError(
      'PAL_ERR_CONFIG_INVALID',
      `trace receiver: ${host} is not a loopback address (spans carry URLs and identities)`,
      { path: 'host' },
    );
  const store = options.store ?? createTraceStore();
  const server = http.createServer(
    {
      // Slowloris bounds: a head must arrive in 5 s and a whole request in 10 s
      // (an exporter sends one small batch per POST; Node's defaults are 60/300 s).
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://receiver');
      // DNS rebinding: a web page whose name resolves to loopback must not read
      // spans (URLs, principals) nor write fake ones. Only loopback Host names (or the
      // bridge address it listens on).
      if (!loopbackHost(req, options.meshBridge === true ? host : undefined)) {
        res.writeHead(403, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: 'the trace receiver answers only loopback Host names' }));
        return;
      }
      if (req.method === 'POST' && url.pathname === '/v1/traces') {
        const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
        if (encoding !== 'identity') {
          // Not decompressing means no decompression bomb; OTLP exporters retry uncompressed.
          res.writeHead(415, { 'content-type': 'application/json', connection: 'close' });
          res.end(JSON.stringify({ error: `Content-Encoding ${encoding} is not accepted` }));
          req.destroy();
          return;
        }
        if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
          // Refused from the head alone: no waiting for a body that is too large anyway.
          res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
          res.end(JSON.stringify({ error: 'body larger than 4 MiB' }));
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            send(res, 413, { error: 'body larger than 4 MiB' });
            req.destroy();
            return;
          }
          chunks.push(c);
        });
        req.on('end', () => {
          if (res.headersSent) return;
          const body = Buffer.concat(chunks);
          const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
          try {
            const decoded =
              type === 'application/x-protobuf'
                ? decodeOtlpProtobuf(body)
                : (JSON.parse(body.toString('utf8')) as unknown);
            store.add(decoded);
          } catch (error) {
            send(res, 400, { error: error instanceof Error ? error.message : 'undecodable body' });
            return;
          }
          // OTLP/HTTP: a full success is an empty ExportTraceServiceResponse in the request's encoding.
          if (type === 'application/x-protobuf') {
            res.writeHead(200, { 'content-type': 'application/x-protobuf' });
            res.end();
          } else send(res, 200, {});
        });
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/traces') {
        const n = (k: string): number | undefined => {
          const v = url.searchParams.get(k);
          return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
        };
        const e = url.searchParams.get('error');
        send(res, 200, {
          traces: store.search({
            service: url.searchParams.get('service') ?? undefined,
            minDurationMs: n('minDurationMs'),
            error: e === 'true' ? true : e === 'false' ? false : undefined,
            limit: n('limit'),
          }),
        });
        return;
      }
      const one = /^\/api\/traces\/([0-9a-fA-F]{32})$/.exec(url.pathname);
      if (req.method === 'GET' && one !== null) {
        const spans = store.trace(one[1] ?? '');
        if (spans === undefined) send(res, 404, { error: 'no such trace' });
        else send(res, 200, { traceId: (one[1] ?? '').toLowerCase(), spans });
        return;
      }
      send(res, 404, { error: 'not found' });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${String(port)}`,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
