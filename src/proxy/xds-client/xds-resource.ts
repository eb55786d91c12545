/**
 * The proxy's config as it holds it: decoded xDS resources (google.protobuf.Any
 * decoded to JSON-shaped objects) and the typed config compiled from them
 * before the update was ACKed. Its own module, so the direction folders that
 * read config need not import the validator that imports them (no cycle).
 */
import type { ResourceKind } from '../../xds/index.js';
import type { CaptureListenerConfig } from '../capture/capture-config.js';
import type { DnsTable } from '../dns/dns-table.js';
import type { UpstreamHttp2 } from '../h2-upstream.js';
import type { HealthCheckConfig } from '../outbound/health-check-config.js';
import type { ClusterPolicy, Endpoint } from '../outbound/load-balancer.js';
import type { ListenerHcms, RouteConfig } from '../outbound/route-table.js';
import type { UpstreamTlsConfig } from '../outbound/upstream-tls.js';

export type XdsResource = Record<string, unknown>;

/** A cluster as the cluster layer serves it (src/proxy/config/cluster-config.ts compiles it). */
export interface ClusterConfig {
  readonly name: string;
  /** Load balancing, outlier detection and circuit breakers. */
  readonly policy: ClusterPolicy;
  /** Upstream TLS (its secrets are resolved per connection: they rotate). */
  readonly tls: UpstreamTlsConfig | undefined;
  /** True when the cluster presents a workload certificate (mTLS). */
  readonly mtls: boolean;
  readonly upstreamHttp2: UpstreamHttp2;
  /** The cluster's own `load_assignment` hosts (STATIC clusters), healthy ones only. */
  readonly loadAssignment: readonly Endpoint[];
  /** Its active health check, when it has one (src/proxy/outbound/health-checker.ts runs it). */
  readonly healthCheck: HealthCheckConfig | undefined;
}

/** The typed config of an accepted snapshot: what per-request code reads. */
export interface TypedConfig {
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  /** Each EDS ClusterLoadAssignment's healthy hosts, by cluster name. */
  readonly endpoints: ReadonlyMap<string, readonly Endpoint[]>;
  /** Each RDS RouteConfiguration with its matchers, regexes and actions compiled. */
  readonly routes: ReadonlyMap<string, RouteConfig>;
  /** Each listener's HTTP connection managers by destination port. */
  readonly listeners: ReadonlyMap<string, ListenerHcms>;
  /** The `virtualOutbound` capture listener's chains compiled, when there is one. */
  readonly virtualOutbound: CaptureListenerConfig | undefined;
  /** The DNS proxy's name table, from the `dns` listener (captured pods; empty without one). */
  readonly dns: DnsTable;
}

/** The accepted resources by kind and name, and the typed config compiled from them. */
export type XdsSnapshot = Readonly<Record<ResourceKind, ReadonlyMap<string, XdsResource>>> & {
  readonly typed: TypedConfig;
};
