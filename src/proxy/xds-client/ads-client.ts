/**
 * The proxy's xDS client: one Aggregated Discovery Service stream, state of
 * the world (Envoy xDS protocol, "ACK/NACK and resource type instance
 * version"). It subscribes to clusters and listeners (wildcard), then to the
 * endpoints, routes and secrets they name; each response is validated whole
 * and applied atomically or NACKed with the reason: a consumer's `prepare`
 * builds everything an update needs (compiled filter chains, bound sockets)
 * before the ACK, and only a fully built update is swapped in; responses are
 * handled one at a time, in order. The last good config is
 * kept when the control plane goes away, and the stream reconnects with
 * exponential backoff, resending the accepted versions.
 */
import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  adsClientConstructor,
  objectToStruct,
  TYPE_URLS,
  type ResourceKind,
} from '../../xds/index.js';
import {
  compileTypedConfig,
  emptyTypedConfig,
  resourceName,
  validateResource,
  type XdsResource,
} from '../config/index.js';

/** The Envoy `Node` sent with every request (docs/xds-contract.md "Node identity"). */
export interface XdsNode {
  id: string;
  cluster: string;
  metadata: Record<string, unknown>;
}

/** Accepted resources of every kind, by name. Replaced whole on each accepted update. */
import type { XdsSnapshot } from './xds-resource.js';
export type { XdsSnapshot } from './xds-resource.js';

export interface AdsClientOptions {
  /** `host:port` of the control plane's ADS server. */
  address: string;
  node: XdsNode;
  /** Returns the service-account token sent as `authorization: Bearer …` (read per stream). */
  token?: () => string;
  credentials?: grpc.ChannelCredentials;
  /** gRPC channel options (e.g. the TLS server name). */
  channelOptions?: grpc.ChannelOptions;
  /** Called after each accepted update with the whole new snapshot. */
  onUpdate?: (snapshot: XdsSnapshot, kind: ResourceKind) => void;
  /** Extra check a consumer applies before an update is accepted (e.g. listeners can bind); returns problems. */
  check?: (snapshot: XdsSnapshot, kind: ResourceKind) => string[];
  /**
   * Builds what a validated update needs without changing what serves; a rejection (its
   * message is the reason) NACKs the update. `commit` runs before the ACK is sent, `abort`
   * when the client closed meanwhile.
   */
  prepare?: (
    snapshot: XdsSnapshot,
    kind: ResourceKind,
  ) => Promise<{ commit(): void; abort(): void } | undefined>;
  /** Called on every NACK, with the reason sent to the control plane. */
  onNack?: (kind: ResourceKind, reason: string) => void;
  /** First reconnect delay (ms), doubled per failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A running ADS client. */
export interface AdsClient {
  /** The last accepted snapshot (empty maps before the first update). */
  readonly snapshot: XdsSnapshot;
  /** Accepted version per kind (empty string when none yet). */
  readonly versions: Readonly<Record<ResourceKind, string>>;
  /** True while a stream to the control plane is open. */
  readonly connected: boolean;
  close(): void;
}

interface DiscoveryResponse {
  version_info?: string;
  resources?: XdsResource[];
  type_url?: string;
  nonce?: string;
}

const KINDS: readonly ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route', 'secret'];
const KIND_BY_URL = new Map<string, ResourceKind>(KINDS.map((kind) => [TYPE_URLS[kind], kind]));
/** gRPC status INVALID_ARGUMENT, used in `error_detail` of a NACK. */
const INVALID_ARGUMENT = 3;

function emptySnapshot(): XdsSnapshot {
  return {
    cluster: new Map(),
    endpoint: new Map(),
    listener: new Map(),
    route: new Map(),
    secret: new Map(),
    typed: emptyTypedConfig(),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Names of EDS clusters, RDS route configs and SDS secrets the snapshot refers to. */
function dependentNames(snapshot: XdsSnapshot): Record<'endpoint' | 'route' | 'secret', string[]> {
  const endpoints = new Set<string>();
  const routes = new Set<string>();
  const secrets = new Set<string>(['ROOTCA']);
  for (const [name, cluster] of snapshot.cluster) {
    if (cluster['type'] === 'EDS') {
      const eds = cluster['eds_cluster_config'];
      const serviceName = isRecord(eds) ? eds['service_name'] : undefined;
      endpoints.add(typeof serviceName === 'string' && serviceName !== '' ? serviceName : name);
    }
  }
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
      return;
    }
    if (!isRecord(value)) return;
    const rds = value['rds'];
    if (isRecord(rds) && typeof rds['route_config_name'] === 'string') {
      routes.add(rds['route_config_name']);
    }
    for (const key of [
      'tls_certificate_sds_secret_configs',
      'validation_context_sds_secret_config',
    ]) {
      const sds = value[key];
      for (const config of Array.isArray(sds) ? sds : [sds]) {
        if (
          isRecord(config) &&
          typeof config['name'] === 'string' &&
          config['name'] !== 'default'
        ) {
          secrets.add(config['name']);
        }
      }
    }
    for (const child of Object.values(value)) walk(child);
  };
  walk([...snapshot.listener.values(), ...snapshot.cluster.values()]);
  return {
    endpoint: [...endpoints].sort(),
    route: [...routes].sort(),
    secret: [...secrets].sort(),
  };
}

/** Starts an ADS client; it connects at once and keeps reconnecting until closed. */
export function createAdsClient(options: AdsClientOptions): AdsClient {
  const Client = adsClientConstructor();
  const client = new Client(
    options.address,
    options.credentials ?? grpc.credentials.createInsecure(),
    options.channelOptions ?? {},
  );
  const initialBackoff = options.initialBackoffMs ?? 100;
  const maxBackoff = options.maxBackoffMs ?? 5_000;
  let snapshot = emptySnapshot();
  const versions: Record<ResourceKind, string> = {
    cluster: '',
    endpoint: '',
    listener: '',
    route: '',
    secret: '',
  };
  const subscribed: Record<ResourceKind, string[]> = {
    cluster: [],
    endpoint: [],
    listener: [],
    route: [],
    secret: ['ROOTCA'],
  };
  let closed = false;
  let connected = false;
  let backoff = initialBackoff;
  let timer: NodeJS.Timeout | undefined;
  let call: grpc.ClientDuplexStream<object, DiscoveryResponse> | undefined;
  /** Responses are handled one at a time, in arrival order (a prepare may take a while). */
  let handling: Promise<void> = Promise.resolve();

  const send = (
    kind: ResourceKind,
    nonce: string,
    errorDetail?: string,
    on: grpc.ClientDuplexStream<object, DiscoveryResponse> | undefined = call,
  ): void => {
    // A response handled after its stream ended is answered on none: the next stream resends.
    if (on === undefined || on !== call) return;
    on.write({
      version_info: versions[kind],
      node: {
        id: options.node.id,
        cluster: options.node.cluster,
        metadata: objectToStruct(options.node.metadata),
      },
      resource_names: subscribed[kind],
      type_url: TYPE_URLS[kind],
      response_nonce: nonce,
      ...(errorDetail === undefined
        ? {}
        : { error_detail: { code: INVALID_ARGUMENT, message: errorDetail } }),
    });
  };

  /** Subscribes to the names the snapshot depends on, when they changed. */
  const resubscribe = (): void => {
    const wanted = dependentNames(snapshot);
    for (const kind of ['endpoint', 'route', 'secret'] as const) {
      if (wanted[kind].join('\n') !== subscribed[kind].join('\n')) {
        subscribed[kind] = wanted[kind];
        send(kind, '');
      }
    }
  };

  const handle = async (
    response: DiscoveryResponse,
    stream: grpc.ClientDuplexStream<object, DiscoveryResponse>,
  ): Promise<void> => {
    const kind = KIND_BY_URL.get(response.type_url ?? '');
    const nonce = response.nonce ?? '';
    if (kind === undefined) return;
    const resources = response.resources ?? [];
    const problems: string[] = [];
    const next = new Map<string, XdsResource>();
    for (const resource of resources) {
      problems.push(...validateResource(kind, resource));
      const name = resourceName(kind, resource);
      if (next.has(name)) problems.push(`${kind} ${JSON.stringify(name)}: duplicate resource`);
      next.set(name, resource);
    }
    let candidate: XdsSnapshot | undefined;
    if (problems.length === 0) {
      // State of the world: CDS and LDS responses carry every resource; for the
      // named kinds, resources not resent are kept only while still subscribed.
      const merged =
        kind === 'cluster' || kind === 'listener'
          ? next
          : mergeNamed(snapshot[kind], next, subscribed[kind]);
      const raw = { ...snapshot, [kind]: merged };
      // Typed before anything else sees it: a resource that does not compile NACKs the update.
      const uncompiled: string[] = [];
      candidate = { ...raw, typed: compileTypedConfig(snapshot.typed, raw, kind, uncompiled) };
      problems.push(...uncompiled);
      if (uncompiled.length === 0) problems.push(...(options.check?.(candidate, kind) ?? []));
    }
    let prepared: { commit(): void; abort(): void } | undefined;
    if (candidate !== undefined && problems.length === 0 && options.prepare !== undefined) {
      try {
        prepared = await options.prepare(candidate, kind);
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error));
      }
    }
    if (candidate === undefined || problems.length > 0) {
      const reason = problems.join('; ');
      options.onNack?.(kind, reason);
      send(kind, nonce, reason, stream);
      return;
    }
    if (closed) {
      prepared?.abort();
      return;
    }
    snapshot = candidate;
    versions[kind] = response.version_info ?? '';
    prepared?.commit();
    send(kind, nonce, undefined, stream);
    options.onUpdate?.(snapshot, kind);
    resubscribe();
  };

  const connect = (): void => {
    if (closed) return;
    const metadata = new grpc.Metadata();
    const token = options.token?.();
    if (token !== undefined && token !== '') metadata.set('authorization', `Bearer ${token}`);
    const stream = client.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      (value: object) => adsSerialize(value),
      (bytes: Buffer) => adsDeserialize(bytes),
      metadata,
    );
    call = stream;
    let ended = false;
    stream.on('data', (response: DiscoveryResponse) => {
      connected = true;
      backoff = initialBackoff;
      handling = handling
        .then(() => handle(response, stream))
        .catch((error: unknown) => {
          // Never a stuck queue or an unhandled rejection: an unexpected failure is a NACK.
          const kind = KIND_BY_URL.get(response.type_url ?? '');
          if (kind === undefined) return;
          const reason = `internal error: ${error instanceof Error ? error.message : String(error)}`;
          options.onNack?.(kind, reason);
          send(kind, response.nonce ?? '', reason, stream);
        });
    });
    stream.on('metadata', () => {
      connected = true;
    });
    const retry = (): void => {
      if (ended) return;
      ended = true;
      connected = false;
      if (call === stream) call = undefined;
      if (closed) return;
      const delay = backoff / 2 + randomInt(Math.max(1, Math.floor(backoff / 2)));
      backoff = Math.min(backoff * 2, maxBackoff);
      timer = setTimeout(connect, delay);
    };
    stream.on('error', retry);
    stream.on('end', retry);
    stream.on('close', retry);
    // Make-before-break order (CDS, EDS, LDS, RDS, SDS), resending accepted versions.
    for (const kind of KINDS) {
      if (kind === 'cluster' || kind === 'listener' || subscribed[kind].length > 0) send(kind, '');
    }
  };

  const { serialize: adsSerialize, deserialize: adsDeserialize } = codec();
  connect();

  return {
    get snapshot() {
      return snapshot;
    },
    get versions() {
      return { ...versions };
    },
    get connected() {
      return connected;
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      call?.cancel();
      client.close();
    },
  };
}

function mergeNamed(
  previous: ReadonlyMap<string, XdsResource>,
  next: Map<string, XdsResource>,
  names: readonly string[],
): Map<string, XdsResource> {
  const merged = new Map<string, XdsResource>();
  for (const name of names) {
    const resource = next.get(name) ?? previous.get(name);
    if (resource !== undefined) merged.set(name, resource);
  }
  for (const [name, resource] of next) if (!merged.has(name)) merged.set(name, resource);
  return merged;
}

function codec(): {
  serialize: (value: object) => Buffer;
  deserialize: (bytes: Buffer) => DiscoveryResponse;
} {
  const Client = adsClientConstructor();
  const method = Client.service['StreamAggregatedResources'];
  if (method === undefined) throw new Error('ADS StreamAggregatedResources missing');
  return {
    serialize: (value) => method.requestSerialize(value),
    deserialize: (bytes) => method.responseDeserialize(bytes) as DiscoveryResponse,
  };
}
