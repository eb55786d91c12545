/**
 * The control plane's debug API (what istiod serves as its syncz/config_dump
 * debug endpoints): who is connected, what each proxy was sent and whether it
 * ACKed, and the config problems of the last rejected change. It is served on
 * the xDS port as a second gRPC service with JSON messages, so
 * `palisade proxy-status --control ADDR` needs only the address the proxies
 * use. It never carries private keys: the only secrets proxies get from the
 * control plane are trust bundles and gateway credentials, and the latter are
 * redacted here.
 */
import * as grpc from '@grpc/grpc-js';

const SERVICE = 'palisade.debug.v1.Debug';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')) as unknown,
};

function method(name: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${SERVICE}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

/** The debug service definition (shared by server and CLI client). */
export const DEBUG_SERVICE: grpc.ServiceDefinition = {
  SyncStatus: method('SyncStatus'),
  ProxyConfig: method('ProxyConfig'),
};

/** Sync state of one type for one proxy. */
export interface SyncRow {
  readonly sent: string | null;
  readonly acked: string | null;
  readonly nack: string | null;
  /** The version the NACK answered (a NACK of an older push is not about `sent`). */
  readonly nackVersion?: string | null;
}

/** One proxy in the SyncStatus answer. */
export interface ProxySyncStatus {
  readonly id: string;
  readonly type: string;
  readonly namespace: string;
  readonly workload: string;
  readonly connectedAt: string;
  /** The version the control plane would send now, per kind. */
  readonly current: Readonly<Record<string, string>>;
  readonly types: Readonly<Record<string, SyncRow>>;
}

/** SyncStatus answer. */
export interface SyncStatusReply {
  readonly configVersion: number;
  readonly configProblems: readonly string[];
  readonly proxies: readonly ProxySyncStatus[];
}

/** ProxyConfig answer: what the proxy was last sent, by kind. */
export interface ProxyConfigReply {
  readonly id: string;
  readonly resources: Readonly<Record<string, readonly Record<string, unknown>[]>>;
}

/** Handlers the control plane supplies. */
export interface DebugHandlers {
  syncStatus(): SyncStatusReply;
  proxyConfig(id: string): ProxyConfigReply | undefined;
}

/** Registers the debug service on `server`. */
export function addDebugService(server: grpc.Server, handlers: DebugHandlers): void {
  server.addService(DEBUG_SERVICE, {
    SyncStatus(
      _call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      callback(null, handlers.syncStatus());
    },
    ProxyConfig(
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const request = call.request as { id?: unknown };
      const id = typeof request.id === 'string' ? request.id : '';
      const reply = handlers.proxyConfig(id);
      if (reply === undefined)
        callback({
          code: grpc.status.NOT_FOUND,
          details: `no connected proxy ${JSON.stringify(id)}`,
        });
      else callback(null, reply);
    },
  });
}

/** Calls one debug method at `address` (host:port) with a deadline. */
export function callDebug<T>(
  address: string,
  name: 'SyncStatus' | 'ProxyConfig',
  request: unknown,
  timeoutMs = 5000,
): Promise<T> {
  const Client = grpc.makeGenericClientConstructor(DEBUG_SERVICE, SERVICE);
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise<T>((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    const fn = (
      client as unknown as Record<
        string,
        (r: unknown, o: object, cb: (e: grpc.ServiceError | null, v: unknown) => void) => void
      >
    )[name];
    if (fn === undefined) {
      reject(new Error(`debug method ${name} missing`));
      return;
    }
    fn.call(client, request, { deadline }, (error, value) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(value as T);
    });
  });
}
