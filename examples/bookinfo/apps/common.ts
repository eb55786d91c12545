/**
 * Shared plumbing of the Bookinfo example apps: a plain node:http server on
 * HOST:PORT, one log line per request, clean exit on SIGTERM, and calls to
 * other services by name (`http://details:9080`) with plain `fetch` — the
 * apps know nothing of the mesh: in netns mode the pod's capture rules take
 * the connection to the sidecar, in loopback mode the runtime preloads a
 * dispatcher that honours HTTP_PROXY (src/runtime/preload/http-proxy.ts).
 * Tracing headers are propagated as Istio's Bookinfo apps do, so the mesh can
 * join the spans.
 */
import * as http from 'node:http';

export const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

/** Headers Istio's Bookinfo apps forward from the incoming request. */
export const FORWARDED_HEADERS = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-ot-span-context',
  'end-user',
  'user-agent',
];

/** The incoming headers to forward downstream. */
export function forwardedHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const v = req.headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}

/** GETs JSON from another service; undefined with the reason on any failure or timeout. */
export async function getJson(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<
  { ok: true; status: number; body: unknown } | { ok: false; status: number; reason: string }
> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (res.status >= 400) {
      process.stdout.write(
        `${new Date().toISOString()} call ${url} failed: ${String(res.status)} ${text.slice(0, 200)}\n`,
      );
      return { ok: false, status: res.status, reason: text.slice(0, 200) };
    }
    return { ok: true, status: res.status, body: JSON.parse(text) as unknown };
  } catch (error) {
    // Logged as Istio's Bookinfo apps log a failed call: the page only says "unavailable".
    const cause =
      error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    const reason = `${error instanceof Error ? error.message : String(error)}${cause}`;
    process.stdout.write(`${new Date().toISOString()} call ${url} failed: ${reason}\n`);
    return { ok: false, status: 0, reason };
  }
}

/** Writes a JSON response. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts the app's server and wires logging and SIGTERM. */
export function serve(
  name: string,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => unknown,
): http.Server {
  const server = http.createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => {
      process.stdout.write(
        `${new Date().toISOString()} ${name} ${req.method ?? ''} ${req.url ?? ''} ${String(res.statusCode)} ${String(Date.now() - started)}ms\n`,
      );
    });
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
    });
  });
  const host = env('HOST', '127.0.0.1');
  const port = Number(env('PORT', '9080'));
  server.listen(port, host, () => {
    process.stdout.write(`${name} listening on ${host}:${String(port)}\n`);
  });
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
  return server;
}
