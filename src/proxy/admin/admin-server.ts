/**
 * The proxy's admin endpoint, bound to 127.0.0.1 only (docs/xds-contract.md
 * "Admin"): `/ready` (200 once a listener config was accepted, 503 before),
 * `/config_dump` (the accepted resources and versions, as Envoy's admin
 * shows them per type), `/certs` (the workload certificate: SPIFFE ID,
 * serial, validity; and the trust bundle — never key material),
 * `/stats/prometheus`, and `/logging` (Envoy's: POST `?level=L` sets every
 * logger, `?<logger>=L` one; no query lists them; GET only lists). `/` is
 * an index of these endpoints (Envoy's admin home page) and `/help` the same
 * list as text (Envoy's `admin commands are:`).
 *
 * DNS rebinding defence: a browser page can reach loopback ports under a
 * hostile name that resolves to 127.0.0.1, so a request whose Host is not
 * loopback (127.0.0.0/8, `localhost`, `[::1]`) or the listener's own address
 * is refused with 403 before any handler runs. An absent Host (HTTP/1.0) is
 * accepted: a browser always sends one.
 */
import * as http from 'node:http';
import { isIPv4 } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { SvidSource } from '../../identity/workload.js';
import type { Logger } from '../../logging/index.js';
import type { MeshMetrics } from '../../telemetry/index.js';
import type { SecretStore } from '../tls/secrets.js';
import type { AdsClient } from '../xds-client/ads-client.js';
import type { ProxyTap } from './tap.js';

export interface AdminServerOptions {
  ads: AdsClient;
  /** Istio standard metrics, served on /stats/prometheus. */
  metrics?: MeshMetrics;
  secrets?: SecretStore;
  svid?: SvidSource;
  /** Loggers whose level `/logging` shows and changes, by name. */
  loggers?: Readonly<Record<string, Logger>>;
  /** Live requests, served on /tap and /tap/denies (tap.ts). */
  tap?: ProxyTap;
  /**
   * The workload's own address (the pod IP in a network namespace, where the admin port is
   * reached through a DNAT from the node): also accepted as Host. An IP literal cannot be
   * re-bound by DNS, so this keeps the rebinding protection.
   */
  instanceIp?: string;
}

/** Envoy's level names → pino's. */
const LEVELS: Readonly<Record<string, string>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  off: 'silent',
};
/** pino's level names → Envoy's, for listing. */
const ENVOY_NAMES: Readonly<Record<string, string>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warning',
  error: 'error',
  fatal: 'critical',
  silent: 'off',
};

/**
 * `/logging`: applies every change in the query or none (an unknown logger or
 * level is a 400 naming it), then lists the loggers as Envoy does.
 */
function logging(
  method: string,
  query: URLSearchParams,
  loggers: Readonly<Record<string, Logger>>,
): { status: number; body: string } {
  const changes: [Logger, string][] = [];
  for (const [key, value] of query) {
    // Own names only: `constructor` or `toString` is not a level (nor, below, a logger).
    const level = Object.hasOwn(LEVELS, value) ? LEVELS[value] : undefined;
    if (level === undefined)
      return {
        status: 400,
        body: `error: unknown logger level ${JSON.stringify(value)} (use one of ${Object.keys(LEVELS).join(', ')})\n`,
      };
    if (key === 'level') for (const l of Object.values(loggers)) changes.push([l, level]);
    else {
      const logger = Object.hasOwn(loggers, key) ? loggers[key] : undefined;
      if (logger === undefined)
        return {
          status: 400,
          body: `error: unknown logger ${JSON.stringify(key)} (loggers: ${Object.keys(loggers).join(', ')})\n`,
        };
      changes.push([logger, level]);
    }
  }
  if (changes.length > 0 && method !== 'POST')
    return { status: 405, body: 'error: changing log levels requires POST\n' };
  for (const [logger, level] of changes) logger.level = level;
  const lines = Object.entries(loggers).map(
    ([name, l]) => `  ${name}: ${ENVOY_NAMES[l.level] ?? l.level}`,
  );
  return { status: 200, body: `active loggers:\n${lines.join('\n')}\n` };
}

/** The endpoints, for `/` and `/help`; descriptions as Envoy's admin `/help` words them. */
const ENDPOINTS: readonly (readonly [string, string])[] = [
  ['/', 'Admin home page'],
  ['/certs', 'print certs on machine'],
  ['/config_dump', 'dump current Envoy configs'],
  ['/help', 'print out list of admin commands'],
  ['/logging', 'query/change logging levels'],
  ['/ready', 'print server state, return 200 if LIVE, otherwise return 503'],
  ['/stats/prometheus', 'print server stats in prometheus format'],
  [
    '/tap',
    'stream finished requests as JSON lines (?recent=1: the last ones; /tap/denies: denials)',
  ],
];

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Envoy's admin home page: one link per endpoint with what it does. */
function indexPage(): string {
  const rows = ENDPOINTS.map(
    ([path, what]) =>
      `<tr><td><a href="${path === '/' ? '.' : `.${path}`}">${escapeHtml(path)}</a></td><td>${escapeHtml(what)}</td></tr>`,
  ).join('\n');
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Palisade proxy admin</title></head>\n<body><h1>Palisade proxy admin</h1>\n<table>\n<tr><th>Endpoint</th><th>Description</th></tr>\n${rows}\n</table>\n</body></html>\n`;
}

/** Certificate facts for `/certs` (Envoy's admin shows the same per certificate). */
function describeCerts(pem: string): object[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => {
    const cert = new X509Certificate(block);
    return {
      serial_number: cert.serialNumber.toLowerCase(),
      subject_alt_names: (cert.subjectAltName ?? '').split(/,\s*/).filter((s) => s !== ''),
      subject: cert.subject,
      valid_from: new Date(cert.validFrom).toISOString(),
      expiration_time: new Date(cert.validTo).toISOString(),
      days_until_expiration: Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000),
    };
  });
}

/** The host part of a Host header value (`[v6]:port`, `name:port`, `name`), lower case. */
function hostOnly(value: string): string {
  const v = value.trim().toLowerCase();
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end < 0 ? v : v.slice(0, end + 1);
  }
  const colon = v.indexOf(':');
  return colon < 0 ? v : v.slice(0, colon);
}

/** True when `host` (a Host header) names loopback or the listener's own address. */
export function isLoopbackHost(
  host: string | undefined,
  localAddress: string | undefined,
  instanceIp?: string,
): boolean {
  if (host === undefined || host === '') return true;
  const h = hostOnly(host);
  if (instanceIp !== undefined && (h === instanceIp || h === `[${instanceIp}]`)) return true;
  if (h === 'localhost' || h === '[::1]') return true;
  if (isIPv4(h) && h.startsWith('127.')) return true;
  const local = localAddress?.replace(/^::ffff:/, '');
  return local !== undefined && (h === local || h === `[${local}]`);
}

/** Starts nothing; returns the admin HTTP server (listen on 127.0.0.1 only). */
export function createAdminServer(options: AdminServerOptions): http.Server {
  return http.createServer((req, res) => {
    // Every Host header counts (node keeps only the first in req.headers).
    const hosts = req.rawHeaders.filter(
      (_, i, a) => i % 2 === 1 && a[i - 1]?.toLowerCase() === 'host',
    );
    if (!hosts.every((h) => isLoopbackHost(h, req.socket.localAddress, options.instanceIp))) {
      res.writeHead(403, { 'content-type': 'text/plain', connection: 'close' });
      res.end('forbidden: the admin endpoint answers only Host: localhost / 127.0.0.1 / [::1]\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(indexPage());
      return;
    }
    if (path === '/help') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(
        `admin commands are:\n${ENDPOINTS.map(([p, what]) => `  ${p}: ${what}`).join('\n')}\n`,
      );
      return;
    }
    if (path === '/ready') {
      // Ready once a listener update (possibly empty, e.g. an idle gateway) was accepted.
      const ready = options.ads.versions.listener !== '';
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
      return;
    }
    if (path === '/stats/prometheus' && options.metrics !== undefined) {
      const registry = options.metrics.registry;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500).end();
        },
      );
      return;
    }
    if ((path === '/tap' || path === '/tap/denies') && options.tap !== undefined) {
      options.tap.handle(req, res, url);
      return;
    }
    if (path === '/certs') {
      const own = options.secrets?.get('default')?.tlsCertificate;
      const roots = options.secrets?.get('ROOTCA')?.validationContext;
      json(200, {
        spiffe_id: options.svid?.spiffeId ?? null,
        certificates: [
          {
            cert_chain: own === undefined ? [] : describeCerts(own.certChainPem),
            ca_cert: roots === undefined ? [] : describeCerts(roots.trustedCaPem),
          },
        ],
      });
      return;
    }
    if (path === '/logging') {
      const { status, body } = logging(
        req.method ?? 'GET',
        url.searchParams,
        options.loggers ?? {},
      );
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
      return;
    }
    if (path === '/config_dump') {
      const { snapshot, versions } = options.ads;
      json(200, {
        connected: options.ads.connected,
        configs: Object.fromEntries(
          // The accepted resources of each kind (the typed config is compiled from them).
          (Object.keys(versions) as (keyof typeof versions)[]).map((kind) => [
            kind,
            {
              version_info: versions[kind],
              // Secrets carry key material: names only.
              resources:
                kind === 'secret'
                  ? [...snapshot[kind].keys()].map((name) => ({ name }))
                  : [...snapshot[kind].values()],
            },
          ]),
        ),
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`not found: ${path} (the admin endpoints are listed at / and /help)\n`);
  });
}
