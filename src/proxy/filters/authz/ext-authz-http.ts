/**
 * The HTTP service of Envoy's ext_authz filter (envoy.filters.http.ext_authz,
 * `http_service`), as Istio configures it for an `envoyExtAuthzHttp` provider.
 *
 * Envoy's documented behaviour (ext_authz filter, "HTTP service"):
 * - the check request has the client's method, `path_prefix` + the client's path,
 *   no body (`content-length: 0`), and the client headers matching
 *   `authorization_request.allowed_headers` plus Host, Method, Path, Content-Length
 *   and Authorization (all client headers when the list is not set);
 * - 200 allows; `authorization_response.allowed_upstream_headers` of the answer
 *   are set on the request (coexisting ones overridden);
 * - any other status denies with that status, the answer's body and its headers
 *   matching `allowed_client_headers`;
 * - a connection failure, a timeout or a 5xx answer is an error: the request is
 *   denied with `status_on_error` (403 by default) unless `failure_mode_allow`.
 * The provider is dialled at `server_uri.uri` (plain HTTP).
 */
import * as http from 'node:http';

/** A parsed ext_authz filter config with an HTTP service. */
export interface ExtAuthzHttpConfig {
  readonly host: string;
  readonly port: number;
  readonly pathPrefix: string;
  readonly timeoutMs: number;
  readonly statusOnError: number;
  readonly failOpen: boolean;
  /** Undefined: every client header is sent. */
  readonly allowedHeaders?: ReadonlySet<string>;
  readonly upstreamHeaders: ReadonlySet<string>;
  /** Undefined: every header of a denial goes to the client. */
  readonly clientHeaders?: ReadonlySet<string>;
}

export type ExtAuthzResult =
  | { readonly kind: 'allow'; readonly headers: Readonly<Record<string, string>> }
  | {
      readonly kind: 'deny';
      readonly status: number;
      readonly body: string;
      readonly headers: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'error'; readonly reason: string };

/** The most body of a denial the proxy relays (a larger one is an error). */
export const MAX_EXT_AUTHZ_BODY = 64 * 1024;

const ALWAYS_SENT = ['host', 'content-length', 'authorization'];
const NOT_RELAYED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'host',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Exact header names of a ListStringMatcher; other matcher kinds are rejected. */
function headerSet(list: unknown, at: string): Set<string> | undefined {
  if (list === undefined) return undefined;
  const patterns = isRecord(list) ? list['patterns'] : undefined;
  if (!Array.isArray(patterns)) throw new Error(`${at}: patterns must be a list`);
  return new Set(
    patterns.map((p: unknown, i) => {
      const exact = isRecord(p) ? p['exact'] : undefined;
      if (typeof exact !== 'string' || exact === '')
        throw new Error(`${at}.patterns[${String(i)}]: only exact header names are supported`);
      return exact.toLowerCase();
    }),
  );
}

function durationMs(v: unknown): number {
  if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(v);
    if (m !== null) return Number(m[1]) * 1000;
  }
  if (isRecord(v)) return Number(v['seconds'] ?? 0) * 1000 + Number(v['nanos'] ?? 0) / 1e6;
  return 200; // Envoy's default ext_authz timeout
}

/** Reads an ext_authz typed_config (without `@type`); throws (NACK) on what it cannot enforce. */
export function parseExtAuthzHttp(config: Record<string, unknown>): ExtAuthzHttpConfig {
  const service = config['http_service'];
  if (!isRecord(service))
    throw new Error('ext_authz: only http_service is supported by this proxy');
  const serverUri = isRecord(service['server_uri']) ? service['server_uri'] : {};
  let uri: URL;
  try {
    uri = new URL(String(serverUri['uri']));
  } catch {
    throw new Error('ext_authz: http_service.server_uri.uri is not a URL');
  }
  if (uri.protocol !== 'http:') throw new Error('ext_authz: server_uri.uri must be http://');
  const pathPrefix = service['path_prefix'] ?? '';
  if (typeof pathPrefix !== 'string' || (pathPrefix !== '' && !pathPrefix.startsWith('/')))
    throw new Error('ext_authz: path_prefix must begin with /');
  const status = isRecord(config['status_on_error']) ? config['status_on_error']['code'] : 403;
  const statusOnError = typeof status === 'number' && status >= 100 && status <= 599 ? status : 403;
  const request = isRecord(service['authorization_request'])
    ? service['authorization_request']
    : {};
  const response = isRecord(service['authorization_response'])
    ? service['authorization_response']
    : {};
  const allowed = headerSet(request['allowed_headers'], 'ext_authz.allowed_headers');
  const client = headerSet(response['allowed_client_headers'], 'ext_authz.allowed_client_headers');
  const timeoutMs = durationMs(serverUri['timeout']);
  return {
    host: uri.hostname.replace(/^\[|\]$/g, ''),
    port: uri.port === '' ? 80 : Number(uri.port),
    pathPrefix,
    timeoutMs: timeoutMs > 0 ? timeoutMs : 200,
    statusOnError,
    failOpen: config['failure_mode_allow'] === true,
    ...(allowed === undefined ? {} : { allowedHeaders: allowed }),
    upstreamHeaders:
      headerSet(response['allowed_upstream_headers'], 'ext_authz.allowed_upstream_headers') ??
      new Set(),
    ...(client === undefined ? {} : { clientHeaders: client }),
  };
}

function pick(
  headers: http.IncomingHttpHeaders,
  allowed: ReadonlySet<string> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || NOT_RELAYED.has(k)) continue;
    if (allowed !== undefined && !allowed.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}

/** Sends the check request for one client request and classifies the answer. */
export function checkHttp(
  config: ExtAuthzHttpConfig,
  request: { method: string; path: string; headers: Readonly<Record<string, string>> },
): Promise<ExtAuthzResult> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) {
    const name = k.toLowerCase();
    if (name.startsWith(':') || NOT_RELAYED.has(name)) continue;
    if (
      config.allowedHeaders !== undefined &&
      !config.allowedHeaders.has(name) &&
      !ALWAYS_SENT.includes(name)
    )
      continue;
    headers[name] = v;
  }
  const host = request.headers['host'] ?? request.headers[':authority'];
  if (host !== undefined) headers['host'] = host;
  headers['content-length'] = '0';
  return new Promise<ExtAuthzResult>((resolve) => {
    let settled = false;
    const finish = (r: ExtAuthzResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = http.request({
      host: config.host,
      port: config.port,
      method: request.method,
      path: config.pathPrefix + request.path,
      headers,
      agent: false,
    });
    const timer = setTimeout(() => {
      finish({ kind: 'error', reason: `timed out after ${String(config.timeoutMs)} ms` });
      req.destroy();
    }, config.timeoutMs);
    req.on('error', (error) => {
      finish({ kind: 'error', reason: error.message });
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 500;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_EXT_AUTHZ_BODY) {
          finish({ kind: 'error', reason: 'authorization response body too large' });
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => {
        finish({ kind: 'error', reason: error.message });
      });
      res.on('end', () => {
        if (status >= 500)
          finish({ kind: 'error', reason: `authorization server answered ${String(status)}` });
        else if (status === 200)
          finish({ kind: 'allow', headers: pick(res.headers, config.upstreamHeaders) });
        else
          finish({
            kind: 'deny',
            status,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: pick(res.headers, config.clientHeaders),
          });
      });
    });
    req.end();
  });
}
