/**
 * A minimal ADS server for proxy integration tests: holds one state of the
 * world per type URL, sends it to every stream (current and future), and
 * records every request (ACKs, NACKs, subscriptions) for assertions.
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';
import { adsPassthroughDefinition } from '../../src/xds/protos.js';
import { runProcess, spawnPalisade, waitFor } from '../helpers/index.js';

export interface AdsRequest {
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface TestAdsServer {
  readonly port: number;
  readonly requests: AdsRequest[];
  set(typeUrl: string, version: string, resources: object[]): void;
  /** Writes `bytes` as they are, as one message on every open stream (hostile-input tests). */
  sendRaw(bytes: Buffer): void;
  /** Streams opened so far. */
  readonly streams: number;
  stop(): void;
}

/** Starts the server on a free 127.0.0.1 port; it is stopped when test `t` ends (or by `stop()`). */
export async function startTestAdsServer(t: {
  after(fn: () => void): void;
}): Promise<TestAdsServer> {
  const server = new grpc.Server();
  const requests: AdsRequest[] = [];
  const state = new Map<string, { version: string; resources: object[] }>();
  const calls = new Set<grpc.ServerDuplexStream<AdsRequest, object>>();
  let nonce = 0;
  let streams = 0;
  const sendTo = (call: grpc.ServerDuplexStream<AdsRequest, object>, typeUrl: string): void => {
    const entry = state.get(typeUrl);
    if (entry === undefined) return;
    nonce += 1;
    call.write({
      version_info: entry.version,
      type_url: typeUrl,
      nonce: `n${String(nonce)}`,
      resources: entry.resources,
    });
  };
  // Buffers go out as they are (sendRaw); everything else through the protos.
  server.addService(adsPassthroughDefinition(), {
    StreamAggregatedResources(call: grpc.ServerDuplexStream<AdsRequest, object>) {
      calls.add(call);
      streams += 1;
      const sent = new Set<string>();
      call.on('data', (request: AdsRequest) => {
        requests.push(request);
        const typeUrl = request.type_url ?? '';
        if (!sent.has(typeUrl)) {
          sent.add(typeUrl);
          sendTo(call, typeUrl);
        }
      });
      call.on('end', () => {
        calls.delete(call);
        call.end();
      });
      call.on('error', () => calls.delete(call));
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => {
      if (error) reject(error);
      else resolve(p);
    });
  });
  t.after(() => {
    server.forceShutdown();
  });
  return {
    port: bound,
    requests,
    set(typeUrl, version, resources) {
      state.set(typeUrl, { version, resources });
      for (const call of calls) sendTo(call, typeUrl);
    },
    sendRaw(bytes) {
      for (const call of calls) call.write(bytes);
    },
    get streams() {
      return streams;
    },
    stop() {
      server.forceShutdown();
    },
  };
}

// ---------------------------------------------------------------------------
// Shared helpers for the outbound integration tests (outbound-*.test.ts): a
// `palisade proxy` process, hand-written outbound resources, upstream apps.

/** The service port every test route config serves (RDS name "80"). */
export const SERVICE_PORT = 80;

/** `outbound|80||<host>.ns.svc.cluster.local`, Istio's cluster name. */
export function clusterName(host: string): string {
  return `outbound|${String(SERVICE_PORT)}||${host}.ns.svc.cluster.local`;
}

export interface ClusterSpec {
  readonly name: string;
  readonly endpoints: readonly { readonly host?: string; readonly port: number }[];
  /** Extra Cluster fields (lb_policy, circuit_breakers, outlier_detection, transport_socket). */
  readonly extra?: Record<string, unknown>;
}

/** A virtual host answering `<host>`, `<host>.ns` and `<host>:80`. */
export function virtualHost(host: string, routes: object[]): object {
  return {
    name: `${host}.ns.svc.cluster.local:80`,
    domains: [host, `${host}.ns`, `${host}:80`],
    routes,
  };
}

/**
 * CDS, EDS, LDS (the `outbound` listener with one chain for port 80 running
 * the fault filter and the router) and RDS "80" for the given clusters and
 * virtual hosts.
 */
export function outboundResources(
  clusters: readonly ClusterSpec[],
  virtualHosts: readonly object[],
): Record<string, object[]> {
  return {
    [TYPE_URLS.cluster]: clusters.map((c) => ({
      '@type': TYPE_URLS.cluster,
      name: c.name,
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} } },
      ...c.extra,
    })),
    [TYPE_URLS.endpoint]: clusters.map((c) => ({
      '@type': TYPE_URLS.endpoint,
      cluster_name: c.name,
      endpoints: [
        {
          lb_endpoints: c.endpoints.map((e) => ({
            endpoint: {
              address: { socket_address: { address: e.host ?? '127.0.0.1', port_value: e.port } },
            },
          })),
        },
      ],
    })),
    [TYPE_URLS.listener]: [
      {
        '@type': TYPE_URLS.listener,
        name: 'outbound',
        filter_chains: [
          {
            filter_chain_match: { destination_port: { value: SERVICE_PORT } },
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
                  stat_prefix: 'outbound_0.0.0.0_80',
                  rds: { route_config_name: String(SERVICE_PORT), config_source: { ads: {} } },
                  http_filters: [
                    {
                      name: 'envoy.filters.http.fault',
                      typed_config: { '@type': EXTENSION_TYPE_URLS.fault },
                    },
                    {
                      name: 'envoy.filters.http.router',
                      typed_config: { '@type': EXTENSION_TYPE_URLS.router },
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
    [TYPE_URLS.route]: [
      { '@type': TYPE_URLS.route, name: String(SERVICE_PORT), virtual_hosts: virtualHosts },
    ],
  };
}

/** Inserts an HTTP filter into every HCM of the outbound listener, just before the router. */
export function insertHttpFilter(resources: Record<string, object[]>, filter: object): void {
  const listener = resources[TYPE_URLS.listener]?.[0] as {
    filter_chains: { filters: { typed_config: { http_filters: object[] } }[] }[];
  };
  for (const chain of listener.filter_chains)
    for (const f of chain.filters) {
      const filters = f.typed_config.http_filters;
      filters.splice(filters.length - 1, 0, filter);
    }
}

/** Sets every type of `resources` at `version` (the proxy is sent each as a state of the world). */
export function feed(
  ads: TestAdsServer,
  resources: Record<string, object[]>,
  version: string,
): void {
  for (const [typeUrl, list] of Object.entries(resources)) ads.set(typeUrl, version, list);
}

/** Waits until the proxy ACKed `version` of `typeUrl` (a request with that version and no error). */
export async function waitAck(ads: TestAdsServer, typeUrl: string, version: string): Promise<void> {
  await waitFor(() =>
    ads.requests.some(
      (r) => r.type_url === typeUrl && r.version_info === version && r.error_detail === undefined,
    ),
  );
}

/** A `palisade proxy` process (real binary) fed by a test ADS server. */
export interface ProxyProcess {
  readonly pid: number;
  readonly outbound: number;
  readonly admin: number;
  /** `-x http://127.0.0.1:<outbound>` for curl. */
  readonly via: readonly string[];
  /** The JSON access-log lines the proxy printed so far. */
  accessLog(): Record<string, unknown>[];
  output(): string;
  stop(): Promise<number | null>;
}

/** Starts `palisade proxy` as sidecar `a-1.ns` on 127.0.0.1 against the ADS server on `xdsPort`. */
export async function startProxyProcess(
  xdsPort: number,
  extraArgs: readonly string[] = [],
  metadata: Record<string, string> = { NAMESPACE: 'ns', SERVICE_ACCOUNT: 'a' },
): Promise<ProxyProcess> {
  const proc = await spawnPalisade(
    [
      'proxy',
      '--xds',
      `127.0.0.1:${String(xdsPort)}`,
      '--xds-insecure',
      '--node-id',
      'sidecar~127.0.0.1~a-1.ns~ns.svc.cluster.local',
      '--metadata',
      JSON.stringify(metadata),
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      '--drain-ms',
      '500',
      ...extraArgs,
    ],
    { ready: /ready outbound=(\d+) admin=(\d+)/ },
  );
  const outbound = Number(proc.match[1]);
  return {
    pid: proc.child.pid ?? -1,
    outbound,
    admin: Number(proc.match[2]),
    via: ['-x', `http://127.0.0.1:${String(outbound)}`],
    output: () => proc.output(),
    accessLog: () =>
      proc
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes('"response_flags"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: () => proc.stop(2000),
  };
}

export interface CurlResult {
  readonly status: number;
  readonly body: string;
  /** Response headers, lower-cased names (last value wins). */
  readonly headers: Record<string, string>;
}

/** curl ARGS with `-i`: status, headers and body of the (last) response. */
export async function curl(args: readonly string[]): Promise<CurlResult> {
  const result = await runProcess('curl', ['-s', '-i', '--max-time', '10', ...args], {
    timeoutMs: 15_000,
  });
  const text = result.stdout;
  // With -i and redirects/100-continue there may be several header blocks: take the last.
  let at = 0;
  let head = '';
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1 || !text.startsWith('HTTP/', at)) break;
    head = text.slice(at, end);
    at = end + 4;
    if (!text.startsWith('HTTP/', at)) break;
  }
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, body: text.slice(at), headers };
}

/** A keep-alive node:http client sending absolute-form requests through the outbound proxy at `host`. */
export function proxyClient(
  outboundPort: number,
  host = '127.0.0.1',
): {
  get(url: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  close(): void;
} {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return {
    get: (url, headers = {}) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host, port: outboundPort, path: url, headers, agent, timeout: 10_000 },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body });
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', reject);
        req.end();
      }),
    close: () => {
      agent.destroy();
    },
  };
}

/** One request an upstream app saw. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A node:http upstream the test controls: `handler` answers, every request is recorded. */
export async function startUpstream(
  name: string,
  handler?: (req: SeenRequest, res: http.ServerResponse, index: number) => void,
): Promise<{
  readonly name: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Most requests in flight at once. */
  readonly maxConcurrent: () => number;
  close(): Promise<void>;
}> {
  const seen: SeenRequest[] = [];
  let active = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    active += 1;
    peak = Math.max(peak, active);
    res.on('close', () => (active -= 1));
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(r);
      res.setHeader('x-upstream', name);
      if (handler !== undefined) handler(r, res, seen.length - 1);
      else res.end(`${name} ${r.url}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    maxConcurrent: () => peak,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A FractionalPercent of `n` per hundred. */
export function percent(n: number): { numerator: number; denominator: string } {
  return { numerator: n, denominator: 'HUNDRED' };
}

/** A proto Duration of `ms` milliseconds. */
export function duration(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}
