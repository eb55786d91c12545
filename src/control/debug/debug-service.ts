/**
 * The control plane's debug API (what istiod serves as its syncz/config_dump
 * debug endpoints): who is connected, what each proxy was sent and whether it
 * ACKed, and the config problems of the last rejected change. It is served on
 * the xDS port as a second gRPC service with JSON messages, so
 * `palisade proxy-status --control ADDR` needs only the address the proxies
 * use. It never carries private keys: the only secrets proxies get from the
 * control plane are trust bundles and gateway credentials, and the latter are
 * redacted here.
 *
 * It answers only the operator: every call must carry `authorization: Bearer
 * <debug token>`, the random token the control plane writes (mode 0600) to
 * `debug-token` in its state directory at start; the CLI reads it from there.
 * Anything else gets PERMISSION_DENIED and no data (Istio's debug endpoints
 * likewise require an authenticated caller on the xDS port).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { XDS_CHANNEL_OPTIONS, xdsChannelCredentials } from '../../xds/grpc-channel.js';
import { type XdsTransport } from '../../xds/index.js';

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

/** The file name of the operator's debug token in the control plane's state directory. */
export const DEBUG_TOKEN_FILE = 'debug-token';

/** A fresh random debug token (256 bits, base64url). */
export function createDebugToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Writes `token` to `file`, readable by its owner only (0600; the directory is created 0700). */
export function writeDebugToken(file: string, token: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // A new file, so the mode applies and no one holding the old one keeps a handle on the new token.
  rmSync(file, { force: true });
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Why a call is refused, or undefined when it carries the operator's token. */
function refusal(metadata: grpc.Metadata, expected: Buffer): string | undefined {
  const value = metadata.get('authorization')[0];
  const m = typeof value === 'string' ? /^Bearer\s+(\S+)$/.exec(value) : null;
  if (m?.[1] === undefined)
    return `permission denied: the debug API needs the operator's credential ("authorization: Bearer <token>" from the control plane's ${DEBUG_TOKEN_FILE} file)`;
  // Equal-length digests: the comparison time says nothing about the token.
  if (!timingSafeEqual(digest(m[1]), expected))
    return "permission denied: the debug token is not this control plane's (it writes a new one at every start)";
  return undefined;
}

/** Registers the debug service on `server`; every call must carry `token`. */
export function addDebugService(
  server: grpc.Server,
  handlers: DebugHandlers,
  access: { readonly token: string },
): void {
  const expected = digest(access.token);
  const denied = (
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ): boolean => {
    const reason = refusal(call.metadata, expected);
    if (reason === undefined) return false;
    callback({ code: grpc.status.PERMISSION_DENIED, details: reason });
    return true;
  };
  server.addService(DEBUG_SERVICE, {
    SyncStatus(
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      if (denied(call, callback)) return;
      callback(null, handlers.syncStatus());
    },
    ProxyConfig(
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      if (denied(call, callback)) return;
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

/** How the CLI reaches the debug API: the transport and the operator's token. */
export interface DebugAccess {
  readonly transport: XdsTransport;
  readonly token: string | undefined;
}

/** Calls one debug method at `address` (host:port) with a deadline. */
export function callDebug<T>(
  address: string,
  name: 'SyncStatus' | 'ProxyConfig',
  request: unknown,
  access: DebugAccess,
  timeoutMs = 5000,
): Promise<T> {
  const Client = grpc.makeGenericClientConstructor(DEBUG_SERVICE, SERVICE);
  const client = new Client(address, xdsChannelCredentials(access.transport), XDS_CHANNEL_OPTIONS);
  const metadata = new grpc.Metadata();
  if (access.token !== undefined) metadata.set('authorization', `Bearer ${access.token}`);
  return new Promise<T>((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    const fn = (
      client as unknown as Record<
        string,
        (
          r: unknown,
          m: grpc.Metadata,
          o: object,
          cb: (e: grpc.ServiceError | null, v: unknown) => void,
        ) => void
      >
    )[name];
    if (fn === undefined) {
      reject(new Error(`debug method ${name} missing`));
      return;
    }
    fn.call(client, request, metadata, { deadline }, (error, value) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(value as T);
    });
  });
}
