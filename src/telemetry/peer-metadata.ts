/**
 * Peer metadata exchange between sidecars, as Istio's telemetry does it
 * (Envoy `metadata_exchange` filter, istio.io "Telemetry: peer metadata"):
 * the client's sidecar sends `x-envoy-peer-metadata-id` (its node id) and
 * `x-envoy-peer-metadata` (its node metadata) on the request; the server's
 * sidecar answers with its own on the response. Each side then fills the
 * other's `source_*` / `destination_*` labels instead of `unknown`.
 *
 * Encoding: Istio base64-encodes a serialized `google.protobuf.Struct`;
 * Palisade base64-encodes the same keys as JSON (`NAME`, `NAMESPACE`,
 * `WORKLOAD_NAME`, `SERVICE_ACCOUNT`, `CLUSTER_ID`, `LABELS`). Only Palisade
 * proxies read it; the header names and the keys are Istio's.
 *
 * Trust: metadata is a claim. It is only accepted over mutual TLS, and only
 * when the claimed namespace and service account are the ones of the SPIFFE
 * ID the TLS handshake proved (inbound: the client certificate; outbound:
 * the identities secure naming allows for the cluster). Anything else is
 * ignored, so a plaintext client that claims to be `productpage` is reported
 * as `unknown`. The headers are removed before a request reaches the app
 * and before a response reaches the caller, and are never sent to a
 * destination that is not a mesh peer (no mTLS), so nothing leaks outside.
 */
import type { PeerInfo } from './mesh-metrics.js';

/** Istio's header with the sender's node metadata. */
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
/** Istio's header with the sender's node id. */
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';
/** Longest header value accepted (a bigger claim is ignored, not parsed). */
export const MAX_PEER_METADATA_BYTES = 4096;
/** Distinct header values whose decoding one proxy keeps. */
const DECODE_CACHE_SIZE = 256;

/** The node metadata one proxy tells its peers. Keys as Istio's NodeMetadata. */
export interface NodeMetadata {
  /** Pod (instance) name. */
  readonly NAME?: string | undefined;
  readonly NAMESPACE?: string | undefined;
  readonly WORKLOAD_NAME?: string | undefined;
  readonly SERVICE_ACCOUNT?: string | undefined;
  /** Istio's default is `Kubernetes`. */
  readonly CLUSTER_ID?: string | undefined;
  readonly LABELS?: Readonly<Record<string, string>> | undefined;
}

/** A matcher of the identities an upstream may present (UpstreamTlsContext SANs). */
export type IdentityMatcher = { readonly exact: string } | { readonly prefix: string };

/** The two metadata exchange fields, as a set (what a hop drops of a peer's head). */
export const PEER_METADATA_FIELDS: ReadonlySet<string> = new Set([
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
]);

/**
 * Deletes the two metadata exchange headers from `headers` when present (a delete is a runtime
 * call even for an absent field, and turns a fast-mode record into a dictionary).
 */
export function stripPeerHeaders(headers: Record<string, unknown>): void {
  if (headers[PEER_METADATA_HEADER] !== undefined)
    Reflect.deleteProperty(headers, PEER_METADATA_HEADER);
  if (headers[PEER_METADATA_ID_HEADER] !== undefined)
    Reflect.deleteProperty(headers, PEER_METADATA_ID_HEADER);
}

/** The exchange of one proxy: its own headers, and reading its peers'. */
export interface PeerMetadataExchange {
  /** The two headers this proxy sends (on mTLS requests and on responses to mesh peers). */
  readonly headers: Readonly<Record<string, string>>;
  /** Deletes both headers from `headers` (mutated). */
  strip(headers: Record<string, unknown>): void;
  /**
   * Sets both headers in `headers` (mutated): two named stores, where `Object.assign` from the
   * frozen record went through V8's generic copy per request.
   */
  put(headers: Record<string, unknown>): void;
  /** The two headers as a field list (name, value, name, value), to append to a head. */
  readonly fields: readonly string[];
  /**
   * Inbound: the client's metadata when `principal` (the SPIFFE ID mTLS proved;
   * `null` = plaintext) owns the claim; otherwise undefined.
   */
  fromClient(
    headers: Readonly<Record<string, unknown>>,
    principal: string | null,
  ): PeerInfo | undefined;
  /**
   * Outbound: the server's metadata when the claimed identity is one `allowed`
   * (the cluster's secure-naming SANs) accepts; otherwise undefined.
   */
  fromServer(
    headers: Readonly<Record<string, unknown>>,
    allowed: readonly IdentityMatcher[],
  ): PeerInfo | undefined;
}

const text = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' && v.length <= 253 ? v : undefined;

/** Encodes node metadata as the `x-envoy-peer-metadata` value. */
export function encodePeerMetadata(meta: NodeMetadata): string {
  return Buffer.from(JSON.stringify(meta), 'utf8').toString('base64');
}

/**
 * Decodes an `x-envoy-peer-metadata` value; undefined for anything that is
 * not one bounded base64 JSON object (it comes from the network: never throws).
 */
export function decodePeerMetadata(value: unknown): NodeMetadata | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PEER_METADATA_BYTES)
    return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const o = parsed as Record<string, unknown>;
  const labels: Record<string, string> = {};
  if (typeof o['LABELS'] === 'object' && o['LABELS'] !== null && !Array.isArray(o['LABELS']))
    for (const [k, v] of Object.entries(o['LABELS'] as Record<string, unknown>)) {
      const s = text(v);
      if (s !== undefined && k.length <= 253) labels[k] = s;
    }
  return {
    NAME: text(o['NAME']),
    NAMESPACE: text(o['NAMESPACE']),
    WORKLOAD_NAME: text(o['WORKLOAD_NAME']),
    SERVICE_ACCOUNT: text(o['SERVICE_ACCOUNT']),
    CLUSTER_ID: text(o['CLUSTER_ID']),
    LABELS: labels,
  };
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>` → its parts; undefined for anything else. */
function spiffeParts(
  id: string,
): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (m === null) return undefined;
  return { trustDomain: m[1] ?? '', namespace: m[2] ?? '', serviceAccount: m[3] ?? '' };
}

/** The labels of a peer from its (verified) metadata. */
export function peerInfoOf(meta: NodeMetadata, principal: string): PeerInfo {
  const labels = meta.LABELS ?? {};
  return {
    workload: meta.WORKLOAD_NAME,
    namespace: meta.NAMESPACE,
    principal,
    app: labels['app'],
    version: labels['version'],
    cluster: meta.CLUSTER_ID,
    canonicalService: labels['service.istio.io/canonical-name'],
    canonicalRevision: labels['service.istio.io/canonical-revision'],
  };
}

/**
 * Whether `principal` (proved by mTLS) is the identity `meta` claims: the
 * same namespace and service account (any trust domain the handshake
 * accepted, so trust-domain aliases keep working).
 */
export function claimMatches(meta: NodeMetadata, principal: string): boolean {
  const parts = spiffeParts(principal);
  return (
    parts !== undefined &&
    meta.NAMESPACE !== undefined &&
    meta.SERVICE_ACCOUNT !== undefined &&
    parts.namespace === meta.NAMESPACE &&
    parts.serviceAccount === meta.SERVICE_ACCOUNT
  );
}

/** The first allowed identity that is the claim's namespace and service account. */
function allowedIdentity(
  meta: NodeMetadata,
  allowed: readonly IdentityMatcher[],
): string | undefined {
  if (meta.NAMESPACE === undefined || meta.SERVICE_ACCOUNT === undefined) return undefined;
  const suffix = `/ns/${meta.NAMESPACE}/sa/${meta.SERVICE_ACCOUNT}`;
  for (const m of allowed) {
    if ('exact' in m) {
      if (claimMatches(meta, m.exact)) return m.exact;
      continue;
    }
    const td = /^spiffe:\/\/([^/]+)\//.exec(m.prefix)?.[1];
    if (td === undefined) continue;
    const candidate = `spiffe://${td}${suffix}`;
    if (candidate.startsWith(m.prefix)) return candidate;
  }
  return undefined;
}

/** One decoded header value and the PeerInfo of each principal that proved it. */
interface DecodedClaim {
  readonly meta: NodeMetadata | undefined;
  readonly infos: Map<string, PeerInfo>;
  /** fromServer's answer per allowed-identity list (a cluster's SANs, one array per config). */
  readonly servers: WeakMap<readonly IdentityMatcher[], PeerInfo | null>;
}

/** Creates the exchange of a proxy whose own node id and metadata are given. */
export function createPeerMetadataExchange(
  nodeId: string,
  self: NodeMetadata,
): PeerMetadataExchange {
  // A peer sends the same value on every request: decode each distinct value once, in a bounded
  // LRU (forged values evict each other, never grow it). Verification stays per request: the claim
  // is checked against the principal mTLS proved every time; only the PeerInfo built for a verified
  // (value, principal) pair is kept, so the same peer yields the same object (telemetry-hooks.ts
  // keys its label-set cache on it).
  const decoded = new Map<string, DecodedClaim>();
  // The value used last, already last in the LRU order: a peer's value repeats request after
  // request, and comparing it is cheaper than hashing a new ~300-byte string for the Map.
  let lastValue: string | undefined;
  let lastEntry: DecodedClaim | undefined;
  const decode = (value: unknown): DecodedClaim | undefined => {
    if (typeof value !== 'string') return undefined;
    if (value === lastValue && lastEntry !== undefined) return lastEntry;
    const entry = lookup(value);
    lastValue = value;
    lastEntry = entry;
    return entry;
  };
  const lookup = (value: string): DecodedClaim => {
    let entry = decoded.get(value);
    if (entry !== undefined) {
      // Most recently used last: Map keeps insertion order, so re-insert on a hit.
      if (decoded.size > 1) {
        decoded.delete(value);
        decoded.set(value, entry);
      }
      return entry;
    }
    entry = { meta: decodePeerMetadata(value), infos: new Map(), servers: new WeakMap() };
    if (decoded.size >= DECODE_CACHE_SIZE) {
      const oldest = decoded.keys().next();
      if (oldest.done !== true) decoded.delete(oldest.value);
    }
    decoded.set(value, entry);
    return entry;
  };
  /** The PeerInfo of a verified claim, built once per (value, principal). */
  const infoOf = (entry: DecodedClaim, meta: NodeMetadata, principal: string): PeerInfo => {
    let info = entry.infos.get(principal);
    if (info === undefined) {
      // A claim is proved by few identities (its own, trust-domain aliases): bound it anyway.
      if (entry.infos.size >= 8) entry.infos.clear();
      info = Object.freeze(peerInfoOf(meta, principal));
      entry.infos.set(principal, info);
    }
    return info;
  };
  const id = nodeId;
  const encoded = encodePeerMetadata(self);
  const headers = Object.freeze({ [PEER_METADATA_ID_HEADER]: id, [PEER_METADATA_HEADER]: encoded });
  return {
    headers,
    strip(h) {
      stripPeerHeaders(h);
    },
    fields: Object.freeze([PEER_METADATA_ID_HEADER, id, PEER_METADATA_HEADER, encoded]),
    put(h) {
      h[PEER_METADATA_ID_HEADER] = id;
      h[PEER_METADATA_HEADER] = encoded;
    },
    fromClient(h, principal) {
      if (principal === null) return undefined;
      const entry = decode(h[PEER_METADATA_HEADER]);
      // Verified before for this very (value, principal) pair: the check's answer is the same.
      const known = entry?.infos.get(principal);
      if (known !== undefined) return known;
      const meta = entry?.meta;
      if (entry === undefined || meta === undefined || !claimMatches(meta, principal))
        return undefined;
      return infoOf(entry, meta, principal);
    },
    fromServer(h, allowed) {
      const entry = decode(h[PEER_METADATA_HEADER]);
      const meta = entry?.meta;
      if (entry === undefined || meta === undefined) return undefined;
      // The answer depends on the claim and the list only: once per (value, list).
      const known = entry.servers.get(allowed);
      if (known !== undefined) return known ?? undefined;
      const principal = allowedIdentity(meta, allowed);
      const info = principal === undefined ? undefined : infoOf(entry, meta, principal);
      entry.servers.set(allowed, info ?? null);
      return info;
    },
  };
}
