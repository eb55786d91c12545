/**
 * Aggregated Discovery Service, state of the world (Envoy xDS v3,
 * envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol): one gRPC stream per
 * proxy carrying every type, with per-type versions and nonces.
 *
 * - The port speaks TLS with a certificate from the mesh CA (SPIFFE ID
 *   spiffe://<td>/ns/palisade-system/sa/palisade-control), TLS 1.2+ with AEAD
 *   suites only; plaintext only when the caller asks for it.
 * - Every stream must carry `authorization: Bearer <service-account token>`;
 *   the node's NAMESPACE/SERVICE_ACCOUNT must be the token's. Anything else
 *   ends the stream with UNAUTHENTICATED and nothing is sent.
 * - A request whose `response_nonce` is not the last one sent for its type is
 *   stale and ignored. With the right nonce, `error_detail` is a NACK
 *   (recorded, the proxy keeps its old config) and otherwise an ACK of
 *   `version_info`.
 * - CDS and LDS are wildcard; EDS, RDS and SDS answer the names subscribed,
 *   and a name that does not exist yet is remembered and pushed when it
 *   appears.
 * - Pushes are debounced and go only to streams whose resources changed, in
 *   make-before-break order: SDS, CDS, EDS, LDS, RDS.
 * - Streams of one node id are kept in generation order. The newest live
 *   stream is the node's current one (`onConnect` with its view); closing an
 *   older stream changes nothing, closing the current one hands back to the
 *   newest older stream still open, and only when the node's last stream
 *   closes is it `onDisconnect`ed. A second stream opened with a node's token
 *   (or a reconnect racing the old stream's close) cannot evict the node's
 *   endpoints.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SERVER_TLS_DEFAULTS } from '../../identity/index.js';
import type { Logger } from '../../logging/index.js';
import { createDebouncer } from '../debounce.js';
import { TYPE_URLS, type ResourceKind } from '../../xds/index.js';
import { adsPassthroughDefinition, adsServiceDefinition } from '../../xds/protos.js';

/** A DiscoveryRequest as decoded. */
export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: { id?: string; cluster?: string; metadata?: unknown };
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: { code?: number; message?: string };
}

/** Sync state of one type on one stream (for proxy-status). */
export interface TypeSyncState {
  readonly sentVersion: string | undefined;
  readonly sentNonce: string | undefined;
  readonly ackedVersion: string | undefined;
  readonly nack: { readonly version: string; readonly message: string } | undefined;
  readonly subscribed: readonly string[] | 'wildcard';
}

/** One connected proxy as the server sees it. */
export interface ConnectedProxy<P> {
  readonly id: string;
  readonly proxy: P;
  readonly connectedAt: Date;
  readonly sync: Readonly<Record<ResourceKind, TypeSyncState>>;
  /** Last resources sent, by kind (for proxy-config). */
  readonly sent: Readonly<Record<ResourceKind, readonly Record<string, unknown>[]>>;
}

/** The discovery server's hooks into the rest of the control plane. */
export interface AdsServerOptions<P> {
  readonly logger: Logger;
  /**
   * Authenticates a stream: the bearer token and the first request's node.
   * Returns the proxy, or throws a message to send with UNAUTHENTICATED.
   */
  authenticate(token: string | undefined, node: NonNullable<DiscoveryRequest['node']>): Promise<P>;
  /** Resources for a proxy now. */
  resources(proxy: P): Readonly<Record<ResourceKind, ReadonlyMap<string, Record<string, unknown>>>>;
  onConnect?(proxy: P): void;
  onDisconnect?(proxy: P): void;
  /** Quiet period before a push (default 100 ms, PILOT_DEBOUNCE_AFTER). */
  readonly debounceMs?: number;
  /** Longest delay after the first change of a steady stream (default 10 s, PILOT_DEBOUNCE_MAX). */
  readonly debounceMaxMs?: number;
  /** Adds more services (the debug API) to the same gRPC server before it binds. */
  configure?(server: grpc.Server): void;
  /**
   * The server certificate (leaf + chain) and key the port presents, or
   * `'plaintext'` — only when asked for explicitly (loopback tests, proxyless
   * gRPC clients that cannot speak TLS to xDS).
   */
  readonly transport: { readonly certChainPem: string; readonly keyPem: string } | 'plaintext';
  /** Counts pushes, NACKs and push time for the monitoring port (src/control/metrics). */
  onMetric?(
    event:
      | { readonly type: 'push' | 'nack'; readonly kind: ResourceKind }
      | { readonly type: 'pushAll'; readonly seconds: number },
  ): void;
}

/**
 * gRPC server credentials with Palisade's TLS policy (TLS 1.2+, AEAD suites):
 * grpc-js's createSsl takes its cipher list only from GRPC_SSL_CIPHER_SUITES.
 */
class PolicyServerCredentials extends grpc.ServerCredentials {
  constructor(certChainPem: string, keyPem: string) {
    super(
      { requestCert: false, ...SERVER_TLS_DEFAULTS },
      { cert: certChainPem, key: keyPem, ...SERVER_TLS_DEFAULTS },
    );
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** A running discovery server. */
export interface AdsServer<P> {
  readonly port: number;
  /** Connected proxies and their sync state. */
  connected(): ConnectedProxy<P>[];
  /** Schedules a debounced push of current resources to every stream. */
  push(): void;
  close(): Promise<void>;
}

const KIND_BY_URL = new Map<string, ResourceKind>(
  (Object.entries(TYPE_URLS) as [ResourceKind, string][]).map(([k, v]) => [v, k]),
);
const PUSH_ORDER: readonly ResourceKind[] = ['secret', 'cluster', 'endpoint', 'listener', 'route'];
const WILDCARD_KINDS = new Set<ResourceKind>(['cluster', 'listener']);

interface MutableTypeState {
  sentVersion: string | undefined;
  sentNonce: string | undefined;
  sentNames: string;
  ackedVersion: string | undefined;
  nack: { version: string; message: string } | undefined;
  subscribed: Set<string> | 'wildcard' | undefined;
  sent: Record<string, unknown>[];
}

function emptyState(): MutableTypeState {
  return {
    sentVersion: undefined,
    sentNonce: undefined,
    sentNames: '',
    ackedVersion: undefined,
    nack: undefined,
    subscribed: undefined,
    sent: [],
  };
}

/** The ADS response serializer (protobufjs, through the service definition). */
type Serialize = (value: object) => Buffer;

/**
 * Encodes a DiscoveryResponse from cached pieces. Protobuf messages
 * concatenate: a repeated field's elements may be encoded separately, so each
 * resource's `resources` field (an Any) is encoded once per compiled object —
 * shared by every proxy it is sent to — and joined with the per-response
 * version, type and nonce.
 */
const encodedResources = new WeakMap<object, Buffer>();
function encodeResponse(
  version: string,
  typeUrl: string,
  nonce: string,
  resources: readonly Record<string, unknown>[],
): Buffer {
  const serialize = adsServiceDefinition()['StreamAggregatedResources']
    ?.responseSerialize as Serialize;
  const parts = [serialize({ version_info: version, type_url: typeUrl, nonce })];
  for (const r of resources) {
    let bytes = encodedResources.get(r);
    if (bytes === undefined) {
      bytes = serialize({ resources: [r] });
      encodedResources.set(r, bytes);
    }
    parts.push(bytes);
  }
  return Buffer.concat(parts);
}

/** Per-resource digests: compiled resources are shared between proxies and never mutated. */
const digests = new WeakMap<object, string>();

function digestOf(resource: Record<string, unknown>): string {
  let d = digests.get(resource);
  if (d === undefined) {
    d = createHash('sha256').update(JSON.stringify(resource)).digest('hex');
    digests.set(resource, d);
  }
  return d;
}

/** A stable version: a hash of the resources' digests. */
function versionOf(resources: readonly Record<string, unknown>[]): string {
  const hash = createHash('sha256');
  for (const r of resources) hash.update(digestOf(r));
  return hash.digest('hex').slice(0, 16);
}

function bearer(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(value);
  return m?.[1];
}

/** Starts the ADS server on `host:port` (port 0 picks one). */
export async function startAdsServer<P>(
  options: AdsServerOptions<P> & { readonly host: string; readonly port: number },
): Promise<AdsServer<P>> {
  const { logger } = options;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  interface Stream {
    readonly id: string;
    readonly proxy: P;
    readonly call: grpc.ServerDuplexStream<DiscoveryRequest, object>;
    readonly connectedAt: Date;
    readonly types: Record<ResourceKind, MutableTypeState>;
  }
  const streams = new Set<Stream>();
  /** Live streams per node id, oldest first: the last is the node's current one. */
  const generations = new Map<string, Stream[]>();
  let nonceCounter = 0;

  const debounced = createDebouncer(
    () => {
      pushAll();
    },
    {
      ...(options.debounceMs === undefined ? {} : { afterMs: options.debounceMs }),
      ...(options.debounceMaxMs === undefined ? {} : { maxMs: options.debounceMaxMs }),
    },
  );

  /** Sends `kind` to `stream` if its content or subscription changed (or `force`). */
  const send = (stream: Stream, kind: ResourceKind, force: boolean): void => {
    const state = stream.types[kind];
    if (state.subscribed === undefined) return;
    const all = options.resources(stream.proxy)[kind];
    const selected: Record<string, unknown>[] = [];
    if (state.subscribed === 'wildcard') selected.push(...all.values());
    else
      for (const name of [...state.subscribed].sort()) {
        const r = all.get(name);
        if (r !== undefined) selected.push(r);
      }
    const version = versionOf(selected);
    const names = selected.map((r) => String(r['name'] ?? r['cluster_name'])).join(',');
    if (!force && version === state.sentVersion && names === state.sentNames) return;
    nonceCounter += 1;
    const nonce = String(nonceCounter);
    state.sentVersion = version;
    state.sentNonce = nonce;
    state.sentNames = names;
    state.sent = selected;
    stream.call.write(encodeResponse(version, TYPE_URLS[kind], nonce, selected));
    options.onMetric?.({ type: 'push', kind });
  };

  const pushAll = (): void => {
    const started = process.hrtime.bigint();
    for (const stream of streams) {
      try {
        for (const kind of PUSH_ORDER) send(stream, kind, false);
      } catch (error) {
        logger.error({ err: error, proxy: stream.id }, 'push failed');
      }
    }
    options.onMetric?.({
      type: 'pushAll',
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
  };

  const handle = (stream: Stream, request: DiscoveryRequest): void => {
    const kind = KIND_BY_URL.get(request.type_url ?? '');
    if (kind === undefined) {
      logger.warn(
        { proxy: stream.id, typeUrl: request.type_url },
        'request for an unknown type ignored',
      );
      return;
    }
    const state = stream.types[kind];
    const names = request.resource_names ?? [];
    const subscription: Set<string> | 'wildcard' =
      WILDCARD_KINDS.has(kind) && (names.length === 0 || names.includes('*'))
        ? 'wildcard'
        : new Set(names);
    if (request.response_nonce !== undefined && request.response_nonce !== '') {
      if (request.response_nonce !== state.sentNonce) {
        logger.debug(
          { proxy: stream.id, kind, nonce: request.response_nonce },
          'stale nonce ignored',
        );
        return;
      }
      if (request.error_detail !== undefined) {
        state.nack = {
          version: state.sentVersion ?? '',
          message: request.error_detail.message ?? '',
        };
        logger.warn(
          { proxy: stream.id, kind, version: state.sentVersion, error: state.nack.message },
          'NACK',
        );
        options.onMetric?.({ type: 'nack', kind });
      } else {
        state.ackedVersion = request.version_info;
        state.nack = undefined;
      }
    }
    const before = state.subscribed;
    const changed =
      before === undefined ||
      (before === 'wildcard') !== (subscription === 'wildcard') ||
      (before !== 'wildcard' &&
        subscription !== 'wildcard' &&
        [...before].sort().join(',') !== [...subscription].sort().join(','));
    state.subscribed = subscription;
    if (changed) send(stream, kind, before === undefined);
  };

  server.addService(adsPassthroughDefinition(), {
    StreamAggregatedResources(call: grpc.ServerDuplexStream<DiscoveryRequest, object>) {
      const token = bearer(call.metadata);
      let stream: Stream | undefined;
      let pending: DiscoveryRequest[] | undefined = [];
      const fail = (message: string): void => {
        logger.warn({ peer: call.getPeer(), reason: message }, 'xDS stream refused');
        call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: message });
      };
      call.on('data', (request: DiscoveryRequest) => {
        if (stream !== undefined) {
          handle(stream, request);
          return;
        }
        if (pending === undefined) return;
        pending.push(request);
        if (pending.length > 1) return;
        const node = request.node;
        if (node?.id === undefined || node.id === '') {
          pending = undefined;
          fail('the first request must carry a node id');
          return;
        }
        const nodeId = node.id;
        options.authenticate(token, node).then(
          (proxy) => {
            if (call.cancelled || pending === undefined) return;
            stream = {
              id: nodeId,
              proxy,
              call,
              connectedAt: new Date(),
              types: {
                listener: emptyState(),
                route: emptyState(),
                cluster: emptyState(),
                endpoint: emptyState(),
                secret: emptyState(),
              },
            };
            streams.add(stream);
            const live = generations.get(nodeId) ?? [];
            live.push(stream);
            generations.set(nodeId, live);
            logger.info({ proxy: nodeId, generation: live.length }, 'proxy connected');
            options.onConnect?.(proxy);
            const queued = pending;
            pending = undefined;
            for (const r of queued) handle(stream, r);
          },
          (error: unknown) => {
            pending = undefined;
            fail(error instanceof Error ? error.message : String(error));
          },
        );
      });
      const gone = (): void => {
        if (stream === undefined || !streams.delete(stream)) return;
        const closed = stream;
        const before = generations.get(closed.id) ?? [];
        const wasCurrent = before[before.length - 1] === closed;
        const live = before.filter((s) => s !== closed);
        if (live.length > 0) {
          generations.set(closed.id, live);
          const current = live[live.length - 1];
          logger.info(
            { proxy: closed.id, remaining: live.length },
            'an older or replaced stream of a proxy closed; its newest open stream stays current',
          );
          // The closed one was current: the newest remaining stream's view is the node's again.
          if (wasCurrent && current !== undefined) options.onConnect?.(current.proxy);
          return;
        }
        generations.delete(closed.id);
        logger.info({ proxy: closed.id }, 'proxy disconnected');
        options.onDisconnect?.(closed.proxy);
      };
      call.on('end', () => {
        gone();
        call.end();
      });
      call.on('cancelled', gone);
      call.on('error', (error: Error) => {
        logger.debug({ proxy: stream?.id, err: error.message }, 'xDS stream error');
        gone();
      });
      call.on('close', gone);
    },
  });

  options.configure?.(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${options.host}:${String(options.port)}`,
      options.transport === 'plaintext'
        ? grpc.ServerCredentials.createInsecure()
        : new PolicyServerCredentials(options.transport.certChainPem, options.transport.keyPem),
      (error, p) => {
        if (error === null) resolve(p);
        else reject(error);
      },
    );
  });

  return {
    port,
    connected() {
      return [...streams].map((s) => ({
        id: s.id,
        proxy: s.proxy,
        connectedAt: s.connectedAt,
        sync: Object.fromEntries(
          (Object.keys(s.types) as ResourceKind[]).map((k) => {
            const t = s.types[k];
            return [
              k,
              {
                sentVersion: t.sentVersion,
                sentNonce: t.sentNonce,
                ackedVersion: t.ackedVersion,
                nack: t.nack,
                subscribed: t.subscribed === 'wildcard' ? 'wildcard' : [...(t.subscribed ?? [])],
              },
            ];
          }),
        ) as Record<ResourceKind, TypeSyncState>,
        sent: Object.fromEntries(
          (Object.keys(s.types) as ResourceKind[]).map((k) => [k, s.types[k].sent]),
        ) as Record<ResourceKind, Record<string, unknown>[]>,
      }));
    },
    push() {
      debounced.trigger();
    },
    async close() {
      debounced.cancel();
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      });
    },
  };
}
