/** The outbound proxy's public types: its options, its handle, and the record of one exchange. */
import type { HandedOffHttpServer } from '../listeners/http-server.js';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import type {
  PeerInfo,
  PeerMetadataExchange,
  SpanContext,
  TcpEvent,
} from '../../telemetry/index.js';
import type { AnyRequest, AnyResponse, Http1AnyRequest } from '../h2-downstream.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import type { HcmConfig } from './hcm-config.js';
import type { TcpProxyConfig } from './tcp-proxy-config.js';

/** One finished outbound request, for access logs and metrics. */
export interface OutboundRecord {
  readonly authority: string;
  readonly method: string;
  readonly path: string;
  readonly cluster: string;
  readonly upstream: string;
  readonly status: number;
  readonly flags: string;
  readonly attempts: number;
  readonly durationMs: number;
  readonly mtls: boolean;
  /** `HTTP/1.1` or `HTTP/2` (downstream). */
  readonly protocol: string;
  /** Set for gRPC requests: the status the client got, when one was sent. */
  readonly grpc?: { readonly status: number | undefined } | undefined;
  /** The span this hop started (propagated upstream), for span export. */
  readonly span?: SpanContext | undefined;
  /** The server's peer metadata, when secure naming vouches for its claim. */
  readonly peer?: PeerInfo | undefined;
}

/** A TCP connection relayed by a tcp_proxy (opened, or closed with its bytes). */
export interface OutboundTcpRecord {
  readonly cluster: string;
  readonly upstream: string;
  readonly mtls: boolean;
  /** The server's peer metadata (TCP exchange), when secure naming vouches for its claim. */
  readonly peer?: PeerInfo;
  readonly tcp: TcpEvent;
}

export interface OutboundProxyOptions {
  /** Current accepted xDS snapshot. */
  snapshot: () => XdsSnapshot;
  /** Listener name to serve (default `outbound`). */
  listenerName?: string;
  /** SDS secrets (workload certificate, trust bundle) for TLS clusters. */
  secrets?: SecretStore;
  /** Called once per finished request. */
  onRecord?: (record: OutboundRecord) => void;
  /** Called when a tcp_proxy connection opens and when it closes. */
  onTcpRecord?: (record: OutboundTcpRecord) => void;
  /** Source address for connections to loopback endpoints (the instance IP), so peers can tell pods apart. */
  localAddress?: string;
  /** Share of new traces (no sampled parent context) that are sampled, 0–1 (default 1). */
  traceSampling?: number;
  /** Where connection-level events (tcp_proxy refusals) are logged. */
  logger?: Logger;
  /** Called when a server fails secure naming (presents an identity not allowed for the service). */
  onSecureNamingFailure?: (cluster: string, presented: readonly string[]) => void;
  /** Peer metadata exchange with mesh (ISTIO_MUTUAL) upstreams; absent = none sent. */
  peerMetadata?: PeerMetadataExchange;
}

/** A running outbound proxy. */
export interface OutboundProxy {
  readonly server: HandedOffHttpServer;
  /** Routes a request with the given HttpConnectionManager (gateway listeners). */
  handle(req: AnyRequest, res: AnyResponse, hcm: HcmConfig): void;
  /** Routes an HTTP/1.1 Upgrade with the given HttpConnectionManager (gateway listeners). */
  handleUpgrade(req: Http1AnyRequest, socket: Duplex, head: Buffer, hcm: HcmConfig): void;
  /** Applies an accepted snapshot's side effects (active health checks start/stop). */
  sync(snapshot: XdsSnapshot): void;
  /**
   * Relays a connection through a tcp_proxy config (gateway TLS passthrough, TCP servers);
   * `to`: that endpoint of the cluster instead of a load-balanced one (a captured connection
   * to a pod IP, src/proxy/capture), closed when it is not a healthy endpoint of the cluster.
   */
  handleTcp(
    socket: Duplex,
    tcpProxy: TcpProxyConfig,
    first: Buffer,
    to?: { host: string; port: number },
  ): void;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}
