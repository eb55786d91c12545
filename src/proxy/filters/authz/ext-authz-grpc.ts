/**
 * The gRPC service of Envoy's ext_authz filter: `envoy.service.auth.v3.Authorization/Check`
 * (external_auth.proto), as Istio configures it for an `envoyExtAuthzGrpc` provider.
 * Envoy's documented behaviour: a CheckResponse whose `status.code` is OK (0) allows and
 * `ok_response.headers` are set on the request (`headers_to_remove` removed); any other code
 * denies with `denied_response` (status, default 403; headers; body); a failed call
 * (unavailable, deadline exceeded) is an error: `status_on_error` unless `failure_mode_allow`.
 * grpc-js and the auth protos load on first use, so a proxy without a gRPC provider never
 * loads either (issue 22: idle RSS).
 */
import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type { ExtAuthzResult } from './ext-authz-http.js';

export interface ExtAuthzGrpcConfig {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly statusOnError: number;
  readonly failOpen: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads an ext_authz typed_config with a gRPC service; the address comes from the cluster name. */
export function parseExtAuthzGrpc(config: Record<string, unknown>): ExtAuthzGrpcConfig {
  const service = isRecord(config['grpc_service']) ? config['grpc_service'] : {};
  const envoyGrpc = isRecord(service['envoy_grpc']) ? service['envoy_grpc'] : {};
  const cluster = envoyGrpc['cluster_name'];
  // Istio's cluster for a provider: outbound|<port>||<host>.
  const m = typeof cluster === 'string' ? /^outbound\|(\d+)\|\|([^|]+)$/.exec(cluster) : null;
  const port = Number(m?.[1]);
  if (m === null || !(port >= 1 && port <= 65535))
    throw new Error(
      'ext_authz: grpc_service.envoy_grpc.cluster_name must be outbound|<port>||<host>',
    );
  const t = service['timeout'];
  const timeoutMs = isRecord(t)
    ? Number(t['seconds'] ?? 0) * 1000 + Number(t['nanos'] ?? 0) / 1e6
    : 200; // Envoy's default ext_authz gRPC timeout
  const status = isRecord(config['status_on_error']) ? config['status_on_error']['code'] : 403;
  const authority = envoyGrpc['authority'];
  return {
    host: m[2] ?? '',
    port,
    authority: typeof authority === 'string' && authority !== '' ? authority : (m[2] ?? ''),
    timeoutMs: timeoutMs > 0 ? timeoutMs : 200,
    statusOnError: typeof status === 'number' && status >= 100 && status <= 599 ? status : 403,
    failOpen: config['failure_mode_allow'] === true,
  };
}

interface Loaded {
  readonly grpc: typeof grpc;
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
}

let loading: Promise<Loaded> | undefined;

/** grpc-js and the CheckRequest and CheckResponse types (loaded on first use). */
function load(): Promise<Loaded> {
  loading ??= (async () => {
    const grpcJs = await import('@grpc/grpc-js');
    const { xdsRoot } = await import('../../../xds/protos.js');
    const root = xdsRoot();
    root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
    root.resolveAll();
    return {
      grpc: grpcJs,
      request: root.lookupType('envoy.service.auth.v3.CheckRequest'),
      response: root.lookupType('envoy.service.auth.v3.CheckResponse'),
    };
  })();
  return loading;
}

/** The CheckRequest and CheckResponse types (loaded on first use). */
export async function extAuthzGrpcTypes(): Promise<{
  request: protobuf.Type;
  response: protobuf.Type;
}> {
  const { request, response } = await load();
  return { request, response };
}

const clients = new Map<string, grpc.Client>();

function clientFor(grpcJs: typeof grpc, config: ExtAuthzGrpcConfig): grpc.Client {
  const target = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${String(config.port)}`;
  const key = `${target}|${config.authority}`;
  let client = clients.get(key);
  if (client === undefined) {
    client = new grpcJs.Client(target, grpcJs.credentials.createInsecure(), {
      'grpc.default_authority': config.authority,
    });
    clients.set(key, client);
  }
  return client;
}

/** What the check request says about the client's request. */
export interface CheckFacts {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort: number;
  readonly principal: string | null;
}

function headerOptions(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const option of list) {
    const header = isRecord(option) && isRecord(option['header']) ? option['header'] : {};
    const key = header['key'];
    const value = header['value'];
    if (typeof key !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) continue;
    const v = typeof value === 'string' ? value.replace(/[\r\n\0]/g, '') : '';
    // A value Node cannot send (other control characters, code points over U+00FF)
    // threw from writeHead: the authorizer's denial became a bare 403. Such a header
    // is dropped, as an invalid key is; the answer itself still counts.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(v)) continue;
    out[key.toLowerCase()] = v;
  }
  return out;
}

/** What the network ext_authz filter's check says about a connection (no request). */
export type ConnectionFacts = Pick<
  CheckFacts,
  'sourceIp' | 'destinationIp' | 'destinationPort' | 'principal'
> & { readonly sourcePort?: number };

function address(ip: string | undefined, port: number): object {
  return ip === undefined ? {} : { address: { socket_address: { address: ip, port_value: port } } };
}

function peers(facts: ConnectionFacts): { source: object; destination: object } {
  return {
    source: {
      ...address(facts.sourceIp, facts.sourcePort ?? 0),
      ...(facts.principal === null ? {} : { principal: facts.principal }),
    },
    destination: address(facts.destinationIp, facts.destinationPort),
  };
}

/**
 * Calls Authorization/Check for one TCP connection, as Envoy's network ext_authz filter does
 * (source/network/filters/ext_authz: the check carries the source and destination peers, no
 * request attributes). Any non-OK answer denies: the filter closes the connection.
 */
export function checkGrpcConnection(
  config: ExtAuthzGrpcConfig,
  facts: ConnectionFacts,
): Promise<ExtAuthzResult> {
  return callCheck(config, { attributes: peers(facts) });
}

/** Calls Authorization/Check for one request and classifies the answer. */
export function checkGrpc(config: ExtAuthzGrpcConfig, facts: CheckFacts): Promise<ExtAuthzResult> {
  const q = facts.path.indexOf('?');
  return callCheck(config, {
    attributes: {
      ...peers(facts),
      request: {
        http: {
          method: facts.method,
          path: facts.path,
          host: facts.host,
          headers: facts.headers,
          scheme: facts.principal === null ? 'http' : 'https',
          query: q < 0 ? '' : facts.path.slice(q + 1),
          protocol: 'HTTP/1.1',
        },
      },
    },
  });
}

async function callCheck(config: ExtAuthzGrpcConfig, message: object): Promise<ExtAuthzResult> {
  const { grpc: grpcJs, request, response } = await load();
  return new Promise<ExtAuthzResult>((resolve) => {
    clientFor(grpcJs, config).makeUnaryRequest(
      '/envoy.service.auth.v3.Authorization/Check',
      (value: object) => Buffer.from(request.encode(request.fromObject(value)).finish()),
      (bytes: Buffer) =>
        response.toObject(response.decode(bytes), { enums: Number, longs: Number }) as Record<
          string,
          unknown
        >,
      message,
      { deadline: Date.now() + config.timeoutMs },
      (error, answer) => {
        if (error !== null || answer === undefined) {
          resolve({ kind: 'error', reason: error?.message ?? 'no answer' });
          return;
        }
        const status = isRecord(answer['status']) ? answer['status'] : {};
        if (Number(status['code'] ?? 0) === 0) {
          const ok = isRecord(answer['ok_response']) ? answer['ok_response'] : {};
          resolve({ kind: 'allow', headers: headerOptions(ok['headers']) });
          return;
        }
        const denied = isRecord(answer['denied_response']) ? answer['denied_response'] : {};
        const code = isRecord(denied['status']) ? Number(denied['status']['code']) : 403;
        resolve({
          kind: 'deny',
          // Envoy: an unset or unknown HttpStatus in a denial is 403.
          status: code >= 200 && code <= 599 ? code : 403,
          body: typeof denied['body'] === 'string' ? denied['body'] : '',
          headers: headerOptions(denied['headers']),
        });
      },
    );
  });
}
