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
import {
  decodeMessage,
  encodeMessage,
  GRPC_STATUS,
  objectToStruct,
  openGrpcStream,
  TYPE_URLS,
  XDS_SERVER_NAME,
  xdsTlsOptions,
  type GrpcStatus,
  type GrpcStream,
  type ResourceKind,
  type XdsTransport,
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
  /** TLS to the control plane (verified by its SPIFFE ID), or plaintext (the default). */
  transport?: XdsTransport;
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
  /**
   * Called when a stream to the control plane ends (it reconnects unless closed);
   * `established` when the server had answered on it.
   */
  onStreamEnd?: (status: GrpcStatus, established: boolean) => void;
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
const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const REQUEST_TYPE = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE_TYPE = 'envoy.service.discovery.v3.DiscoveryResponse';

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
  const tls = xdsTlsOptions(options.transport ?? 'plaintext');
  const nodeMessage = {
    id: options.node.id,
    cluster: options.node.cluster,
    metadata: objectToStruct(options.node.metadata),
  };
  // A node that cannot be encoded is a configuration error: say so now, not per stream.
  try {
    encodeMessage('envoy.config.core.v3.Node', nodeMessage);
  } catch (error) {
    throw new Error(`xDS node cannot be sent: ${errorMessage(error)}`, { cause: error });
  }
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
  let call: GrpcStream | undefined;
  /** Responses are handled one at a time, in arrival order (a prepare may take a while). */
  let handling: Promise<void> = Promise.resolve();

  const send = (
    kind: ResourceKind,
    nonce: string,
    errorDetail?: string,
    on: GrpcStream | undefined = call,
  ): void => {
    // A response handled after its stream ended is answered on none: the next stream resends.
    if (on === undefined || on !== call) return;
    let bytes: Buffer;
    try {
      bytes = encodeMessage(REQUEST_TYPE, {
        version_info: versions[kind],
        node: nodeMessage,
        resource_names: subscribed[kind],
        type_url: TYPE_URLS[kind],
        response_nonce: nonce,
        ...(errorDetail === undefined
          ? {}
          : { error_detail: { code: GRPC_STATUS.INVALID_ARGUMENT, message: errorDetail } }),
      });
    } catch (error) {
      // Never thrown into the response queue: the stream ends, says why, and is reopened.
      on.cancel({
        code: GRPC_STATUS.INTERNAL,
        details: `cannot encode a DiscoveryRequest: ${errorMessage(error)}`,
      });
      return;
    }
    on.write(bytes);
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

  const handle = async (response: DiscoveryResponse, stream: GrpcStream): Promise<void> => {
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
    const token = options.token?.();
    const stream = openGrpcStream({
      address: options.address,
      path: ADS_PATH,
      authority: XDS_SERVER_NAME,
      ...(tls === undefined ? {} : { tls }),
      metadata: token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {},
    });
    call = stream;
    stream.on('message', (bytes: Buffer) => {
      let response: DiscoveryResponse;
      try {
        response = decodeMessage(RESPONSE_TYPE, bytes);
      } catch (error) {
        // Bytes that are not a DiscoveryResponse have no nonce or type to NACK: the
        // stream ends (INTERNAL, as grpc-js ends a call it cannot deserialize) and
        // reconnects, keeping the last good config.
        stream.cancel({
          code: GRPC_STATUS.INTERNAL,
          details: `undecodable DiscoveryResponse: ${errorMessage(error)}`,
        });
        return;
      }
      // Only a readable response resets the backoff: garbage does not buy a fast reconnect.
      connected = true;
      backoff = initialBackoff;
      handling = handling
        .then(() => handle(response, stream))
        .catch((error: unknown) => {
          // Never a stuck queue or an unhandled rejection: an unexpected failure is a NACK.
          const kind = KIND_BY_URL.get(response.type_url ?? '');
          if (kind === undefined) return;
          const reason = `internal error: ${errorMessage(error)}`;
          options.onNack?.(kind, reason);
          send(kind, response.nonce ?? '', reason, stream);
        });
    });
    let established = false;
    stream.on('headers', () => {
      established = true;
      connected = true;
    });
    stream.once('end', (status: GrpcStatus) => {
      connected = false;
      if (!closed) options.onStreamEnd?.(status, established);
      if (call === stream) call = undefined;
      if (closed) return;
      const delay = backoff / 2 + randomInt(Math.max(1, Math.floor(backoff / 2)));
      backoff = Math.min(backoff * 2, maxBackoff);
      timer = setTimeout(connect, delay);
    });
    // Make-before-break order (CDS, EDS, LDS, RDS, SDS), resending accepted versions.
    for (const kind of KINDS) {
      if (kind === 'cluster' || kind === 'listener' || subscribed[kind].length > 0) send(kind, '');
    }
  };

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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
