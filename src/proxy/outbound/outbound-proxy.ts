/**
 * The sidecar's outbound listener (docs/xds-contract.md "Outbound"): an
 * explicit HTTP proxy on `<instance-ip>:15001` taking absolute-form requests
 * and CONNECT. The filter chain is chosen by the target's port
 * (`filter_chain_match.destination_port`), its HttpConnectionManager names the
 * RDS route configuration, the route names the cluster, and the cluster's EDS
 * endpoints are used round robin. Every lookup reads the current snapshot, so
 * an accepted xDS update takes effect on the next request and the proxy keeps
 * serving its last good config when the control plane is gone.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { randomInt, randomUUID } from 'node:crypto';
import type { XdsSnapshot } from '../xds-client/ads-client.js';
import type { XdsResource } from '../xds-client/resource-validation.js';
import { routeRequest, type RouteDecision } from './route-table.js';

export interface OutboundProxyOptions {
  /** Current accepted xDS snapshot. */
  snapshot: () => XdsSnapshot;
  /** Listener name to serve (default `outbound`). */
  listenerName?: string;
}

/** A running outbound proxy. */
export interface OutboundProxy {
  readonly server: http.Server;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded, plus proxy-only ones. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

/** The RDS route configuration name of the listener's chain for `port`. */
function routeNameForPort(listener: XdsResource, port: number): string | undefined {
  for (const chain of records(listener['filter_chains'])) {
    const match = isRecord(chain['filter_chain_match']) ? chain['filter_chain_match'] : {};
    const wanted = isRecord(match['destination_port'])
      ? match['destination_port']['value']
      : undefined;
    if (wanted !== undefined && Number(wanted) !== port) continue;
    for (const filter of records(chain['filters'])) {
      const config = isRecord(filter['typed_config']) ? filter['typed_config'] : {};
      const rds = config['rds'];
      if (isRecord(rds) && typeof rds['route_config_name'] === 'string')
        return rds['route_config_name'];
    }
  }
  return undefined;
}

interface Endpoint {
  host: string;
  port: number;
}

/** Healthy endpoints of a ClusterLoadAssignment (UNHEALTHY/DRAINING/TIMEOUT excluded). */
function endpointsOf(assignment: XdsResource | undefined): Endpoint[] {
  const out: Endpoint[] = [];
  if (assignment === undefined) return out;
  for (const locality of records(assignment['endpoints'])) {
    for (const lb of records(locality['lb_endpoints'])) {
      const status = lb['health_status'];
      if (status === 'UNHEALTHY' || status === 'DRAINING' || status === 'TIMEOUT') continue;
      const endpoint = isRecord(lb['endpoint']) ? lb['endpoint'] : {};
      const address = isRecord(endpoint['address']) ? endpoint['address'] : {};
      const socket = isRecord(address['socket_address']) ? address['socket_address'] : {};
      if (typeof socket['address'] === 'string') {
        out.push({ host: socket['address'], port: Number(socket['port_value']) });
      }
    }
  }
  return out;
}

interface Target {
  authority: string;
  host: string;
  port: number;
  path: string;
}

function targetOf(req: http.IncomingMessage): Target | undefined {
  const raw = req.url ?? '';
  if (raw.startsWith('http://')) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    return {
      authority: url.host,
      host: url.hostname,
      port: url.port === '' ? 80 : Number(url.port),
      path: `${url.pathname}${url.search}`,
    };
  }
  const authority = req.headers.host;
  if (authority === undefined || !raw.startsWith('/')) return undefined;
  const portMatch = /:(\d+)$/.exec(authority);
  return {
    authority,
    host: authority.replace(/:\d+$/, ''),
    port: portMatch?.[1] === undefined ? 80 : Number(portMatch[1]),
    path: raw,
  };
}

/** Starts nothing; `listen()` binds the outbound listener. */
export function createOutboundProxy(options: OutboundProxyOptions): OutboundProxy {
  const listenerName = options.listenerName ?? 'outbound';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const roundRobin = new Map<string, number>();

  const reply = (res: http.ServerResponse, status: number, body: string, flag: string): void => {
    res.writeHead(status, {
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(body),
      'x-palisade-response-flags': flag,
    });
    res.end(body);
  };

  const resolve = (
    target: Target,
    headers: http.IncomingHttpHeaders,
  ): { decision?: RouteDecision; endpoint?: Endpoint; flag?: string; status?: number } => {
    const snapshot = options.snapshot();
    const listener = snapshot.listener.get(listenerName);
    const routeName = listener === undefined ? undefined : routeNameForPort(listener, target.port);
    const routeConfig = routeName === undefined ? undefined : snapshot.route.get(routeName);
    if (routeConfig === undefined) return { status: 404, flag: 'NR' };
    const decision = routeRequest(
      routeConfig,
      { authority: target.authority, path: target.path, headers },
      (total) => randomInt(total),
    );
    if (decision === undefined) return { status: 404, flag: 'NR' };
    if (decision.kind !== 'cluster') return { decision };
    if (decision.cluster === 'BlackHoleCluster') return { status: 502, flag: 'NR' };
    if (decision.cluster === 'PassthroughCluster') {
      return { decision, endpoint: { host: target.host, port: target.port } };
    }
    if (!snapshot.cluster.has(decision.cluster)) return { status: 503, flag: 'NC' };
    const endpoints = endpointsOf(snapshot.endpoint.get(decision.cluster));
    if (endpoints.length === 0) return { status: 503, flag: 'UH' };
    const next = roundRobin.get(decision.cluster) ?? 0;
    roundRobin.set(decision.cluster, next + 1);
    return { decision, endpoint: endpoints[next % endpoints.length] };
  };

  const server = http.createServer(
    { headersTimeout: 10_000, requestTimeout: 60_000, maxHeaderSize: 16_384 },
    (req, res) => {
      const target = targetOf(req);
      if (target === undefined || target.path.includes('\0') || target.path.includes('%00')) {
        reply(res, 400, 'Bad Request', 'DPE');
        return;
      }
      const resolved = resolve(target, req.headers);
      const { decision, endpoint } = resolved;
      if (decision?.kind === 'direct') {
        reply(res, decision.status, decision.body, '-');
        return;
      }
      if (decision?.kind === 'redirect') {
        res.writeHead(decision.status, { location: decision.location, 'content-length': 0 });
        res.end();
        return;
      }
      if (decision === undefined || endpoint === undefined) {
        reply(
          res,
          resolved.status ?? 503,
          resolved.flag === 'NR' ? '' : 'no healthy upstream',
          resolved.flag ?? 'UH',
        );
        return;
      }
      let path = target.path;
      if (decision.prefixRewrite !== undefined && decision.matchedPrefix !== undefined) {
        path = decision.prefixRewrite + path.slice(decision.matchedPrefix.length);
      }
      const headers: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
      }
      headers['host'] = target.authority;
      headers['x-request-id'] ??= randomUUID();
      const upstream = http.request(
        { host: endpoint.host, port: endpoint.port, method: req.method, path, headers, agent },
        (upstreamRes) => {
          const out: http.OutgoingHttpHeaders = {};
          for (const [name, value] of Object.entries(upstreamRes.headers)) {
            if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
          }
          res.writeHead(upstreamRes.statusCode ?? 502, out);
          upstreamRes.pipe(res);
        },
      );
      upstream.on('error', () => {
        if (!res.headersSent)
          reply(res, 503, 'upstream connect error or disconnect/reset before headers', 'UF');
        else res.destroy();
      });
      req.pipe(upstream);
    },
  );

  // CONNECT authority-form: an opaque tunnel to the routed endpoint.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const authority = req.url ?? '';
    const portMatch = /:(\d+)$/.exec(authority);
    if (portMatch?.[1] === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const target: Target = {
      authority,
      host: authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''),
      port: Number(portMatch[1]),
      path: '/',
    };
    const { endpoint, decision } = resolve(target, req.headers);
    if (decision?.kind !== 'cluster' || endpoint === undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
      return;
    }
    const upstream = net.connect(endpoint.port, endpoint.host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });

  return {
    server,
    listen(host, port) {
      return new Promise((resolveListen, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolveListen(typeof address === 'object' && address !== null ? address.port : port);
        });
      });
    },
    close() {
      agent.destroy();
      server.closeAllConnections();
      return new Promise((resolveClose) =>
        server.close(() => {
          resolveClose();
        }),
      );
    },
  };
}
