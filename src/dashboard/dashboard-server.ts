/**
 * `palisade dashboard`'s HTTP server: the web UI (assets served from here —
 * no CDN, it works offline) and its JSON API:
 *
 * - `GET /api/graph` — the service graph (`{nodes, edges}`, service-graph.ts)
 * - `GET /api/top` — per-workload inbound RPS, success rate, p50/p99
 * - `GET /api/security` — the security view (security-view.ts)
 * - `GET /api/proxies` — the control plane's proxy-status (xDS sync, NACKs)
 * - `GET /api/traces`, `/api/traces/{id}` — the trace receiver's API, relayed
 * - `GET /api/tap?workload=ID` — live requests through a workload (Server-Sent Events)
 *
 * Access: the server binds 127.0.0.1 by default and then, like the proxy
 * admin, answers only requests whose Host is loopback (a DNS-rebinding page
 * cannot read it). Binding any other address requires a token: every
 * request must carry it (`Authorization: Bearer`, or the cookie set by
 * opening `/?token=…` once), compared in constant time (SHA-256 digests
 * through `timingSafeEqual`, so neither content nor length leaks).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import { isIPv4 } from 'node:net';
import { PalisadeError } from '../errors/index.js';
import { DASHBOARD_ASSETS } from './assets.js';
import { httpGet, type MeshData } from './mesh-data.js';
import { readConfigObjects, trustDomainOf } from './mesh-topology.js';
import { securityView } from './security-view.js';

/** Options of {@link startDashboardServer}. */
export interface DashboardServerOptions {
  readonly data: MeshData;
  /** Address to bind; default 127.0.0.1. */
  readonly host?: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Required when `host` is not loopback. */
  readonly token?: string;
}

/** A listening dashboard. */
export interface DashboardServer {
  /** `http://HOST:PORT/`. */
  readonly url: string;
  close(): Promise<void>;
}

const COOKIE = 'palisade_dashboard_token';

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIPv4(h) && h.startsWith('127.'));
}

/** The host part of a Host header value. */
function hostOnly(value: string): string {
  const v = value.trim();
  if (v.startsWith('[')) return v.slice(0, v.indexOf(']') + 1);
  return v.split(':')[0] ?? v;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time token comparison (hashing first makes the lengths equal). */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

function presentedToken(req: http.IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ') === true) return auth.slice('Bearer '.length).trim();
  const cookie = req.headers.cookie
    ?.split(';')
    .map((c) => c.trim())
    .find((c) => c.startsWith(`${COOKIE}=`));
  if (cookie !== undefined) {
    // A malformed escape (`%E0%A4%A`) threw out of the request handler and ended the process.
    try {
      return decodeURIComponent(cookie.slice(COOKIE.length + 1));
    } catch {
      return undefined;
    }
  }
  return url.searchParams.get('token') ?? undefined;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** At most this many /api/tap streams at once (each holds a connection to every proxy of its workload). */
const MAX_TAPS = 32;
/** A tap line longer than this (no newline yet) ends that proxy's stream. */
const MAX_TAP_LINE = 64 * 1024;
let openTaps = 0;

/** One relayed tap line as an SSE event, or undefined when the proxy sent no JSON object. */
function tapEvent(proxy: string, line: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return `data: ${JSON.stringify({ proxy, ...parsed })}\n\n`;
}

/** Relays `/api/tap` as Server-Sent Events from every proxy of the workload. */
function tap(data: MeshData, workloadId: string, res: http.ServerResponse): void {
  const w = data.workloads().find((x) => x.id === workloadId || x.workload === workloadId);
  if (w === undefined || w.proxies.length === 0) {
    sendJson(res, 404, { error: `no workload ${workloadId} with a proxy in this mesh` });
    return;
  }
  if (openTaps >= MAX_TAPS) {
    res.setHeader('retry-after', '5');
    sendJson(res, 503, { error: `${String(MAX_TAPS)} tap streams are open; close one first` });
    return;
  }
  openTaps += 1;
  res.once('close', () => {
    openTaps -= 1;
  });
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write(': tap\n\n');
  const upstream = w.proxies.map((p) =>
    http.get(`${p.adminUrl}/tap`, { agent: false }, (up) => {
      let buffered = '';
      up.setEncoding('utf8');
      up.on('data', (chunk: string) => {
        buffered += chunk;
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          // A line that is not a JSON object is skipped: JSON.parse threw out of this
          // handler and ended the dashboard.
          const event = line === '' ? undefined : tapEvent(p.name, line);
          if (event !== undefined) res.write(event);
          nl = buffered.indexOf('\n');
        }
        // Unbounded otherwise: a proxy that never sends a newline grew this without limit.
        if (buffered.length > MAX_TAP_LINE) up.destroy();
      });
      up.on('error', () => undefined);
    }),
  );
  for (const u of upstream) u.on('error', () => undefined);
  res.on('close', () => {
    for (const u of upstream) u.destroy();
  });
}

/** Maps one API request to its answer; unknown errors become a generic 502 (the data is a proxy's or the control plane's). */
async function api(
  data: MeshData,
  path: string,
  url: URL,
  res: http.ServerResponse,
): Promise<void> {
  if (path === '/api/graph') {
    sendJson(res, 200, data.graph());
    return;
  }
  if (path === '/api/top') {
    sendJson(res, 200, { workloads: data.top() });
    return;
  }
  if (path === '/api/mesh') {
    const s = data.state();
    sendJson(res, 200, {
      name: s.name,
      control: s.control,
      tracing: s.tracesUrl !== undefined,
      prometheus: s.prometheusUrl ?? null,
      workloads: data
        .workloads()
        .map((w) => ({ id: w.id, kind: w.kind, proxies: w.proxies.map((p) => p.name) })),
    });
    return;
  }
  if (path === '/api/security') {
    const s = data.state();
    sendJson(
      res,
      200,
      await securityView(
        data.workloads(),
        readConfigObjects(s.configDir),
        trustDomainOf(s.stateDir),
      ),
    );
    return;
  }
  if (path === '/api/proxies') {
    try {
      sendJson(res, 200, await data.syncStatus());
      return;
    } catch (error) {
      sendJson(res, 502, {
        error: `the control plane's debug API did not answer: ${(error as { details?: string }).details ?? (error as Error).message}`,
      });
      return;
    }
  }
  if (path === '/api/traces' || path.startsWith('/api/traces/')) {
    const base = data.state().tracesUrl;
    if (base === undefined) {
      sendJson(res, 404, {
        error: 'tracing is off in this mesh: start it with palisade up --tracing',
      });
      return;
    }
    const target = new URL(path.slice(1) + url.search, base.endsWith('/') ? base : `${base}/`);
    const r = await httpGet(target.href, 5000);
    if (r === undefined) {
      sendJson(res, 502, { error: `the trace receiver at ${base} did not answer` });
      return;
    }
    res.writeHead(r.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(r.body);
    return;
  }
  if (path === '/api/tap') {
    tap(data, url.searchParams.get('workload') ?? '', res);
    return;
  }
  sendJson(res, 404, { error: `no API ${path}` });
}

/** Starts the dashboard; rejects binding a non-loopback address without a token. */
export async function startDashboardServer(
  options: DashboardServerOptions,
): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopbackAddress(host);
  const token = options.token;
  if (!loopback && (token === undefined || token.length < 16))
    throw new PalisadeError(
      'PAL_ERR_DASHBOARD_TOKEN_REQUIRED',
      `the dashboard would listen on ${host}, which is not loopback: pass --token-file FILE (a secret of at least 16 characters) so only holders of it can read the mesh`,
    );
  const server = http.createServer(
    {
      // Slowloris bounds (Node's defaults are 60 s / 300 s): a GET's head in 10 s.
      headersTimeout: 10_000,
      requestTimeout: 15_000,
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://dashboard');
      if (token !== undefined) {
        const presented = presentedToken(req, url);
        if (!tokenMatches(token, presented)) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
          res.end(
            'unauthorized: open the dashboard URL with ?token=… (see palisade dashboard --help)\n',
          );
          return;
        }
        if (url.searchParams.has('token')) {
          // Trade the URL token for a cookie so it leaves the address bar and history.
          res.writeHead(303, {
            location: url.pathname,
            'set-cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
          });
          res.end();
          return;
        }
      } else {
        // Loopback without a token: refuse non-loopback Host names (DNS rebinding), as the proxy admin does.
        const hosts = req.rawHeaders.filter(
          (_, i, a) => i % 2 === 1 && a[i - 1]?.toLowerCase() === 'host',
        );
        if (!hosts.every((h) => isLoopbackAddress(hostOnly(h)))) {
          res.writeHead(403, { 'content-type': 'text/plain' });
          res.end('forbidden: the dashboard answers only Host: localhost / 127.0.0.1 / [::1]\n');
          return;
        }
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
        res.end('the dashboard is read-only\n');
        return;
      }
      const path = url.pathname;
      const asset = DASHBOARD_ASSETS[path === '/' ? '/index.html' : path];
      if (asset !== undefined) {
        res.writeHead(200, {
          'content-type': asset.type,
          'cache-control': 'no-cache',
          // Everything comes from this origin; no inline script, no third party.
          'content-security-policy':
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'",
          'x-content-type-options': 'nosniff',
        });
        res.end(asset.body);
        return;
      }
      if (path.startsWith('/api/')) {
        api(options.data, path, url, res).catch(() => {
          if (!res.headersSent) sendJson(res, 502, { error: 'the mesh did not answer' });
          else res.end();
        });
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found: ${path}\n`);
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${String(port)}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
