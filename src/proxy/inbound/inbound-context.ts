/**
 * What the parts of the inbound side share (docs/proxy.md "Layers"): the
 * listener lookup, the accepted snapshot, the verified peer of each
 * connection, and where finished requests are recorded.
 */
import type * as net from 'node:net';
import type { Logger } from '../../logging/index.js';
import type { PeerInfo, SpanContext, TcpEvent } from '../../telemetry/index.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsResource, XdsSnapshot } from '../xds-client/xds-resource.js';
import type { ManagedListener } from '../listeners/listener-manager.js';
import type { InboundTelemetry } from './inbound-telemetry.js';
import type { ChainState } from './inbound-chains.js';

/** One inbound request or connection, for access logs and metrics. */
export interface InboundRecord {
  readonly listener: string;
  readonly principal: string | null;
  readonly method?: string;
  readonly path?: string;
  readonly status: number;
  readonly reason: string;
  readonly policy: string | null;
  readonly durationMs: number;
  readonly mtls: boolean;
  /** HTTP requests: `HTTP/1.1` or `HTTP/2`. */
  readonly protocol?: string;
  /** Set for gRPC requests: the status the client got, when one was sent. */
  readonly grpc?: { readonly status: number | undefined };
  /** The client's peer metadata, when mTLS proved its claim (inbound-telemetry.ts). */
  readonly peer?: PeerInfo;
  /** The server span of this request, when server spans are on. */
  readonly span?: SpanContext;
  /** TCP (non-HTTP) connections: opened, or closed with the bytes each way. */
  readonly tcp?: TcpEvent;
}

/** One inbound listener: its resource, its socket (none for `bind_to_port: false`), its chains. */
export interface ListenerState {
  readonly name: string;
  resource: XdsResource;
  /** The bound socket; undefined when only virtualInbound hands connections to it. */
  readonly socket: ManagedListener | undefined;
  readonly port: number;
  chains: ChainState[];
}

/** Shared by the inbound connection, HTTP and TCP handlers. */
export interface InboundContext {
  readonly logger: Logger;
  readonly secrets: SecretStore;
  readonly telemetry: InboundTelemetry | undefined;
  /** The serving (or staged) listener of a name. */
  lookup(name: string): ListenerState | undefined;
  /** The accepted snapshot (undefined before the first commit). */
  snapshot(): XdsSnapshot | undefined;
  /** The verified SPIFFE ID of each (decrypted) connection; null for plaintext. */
  readonly principals: WeakMap<net.Socket, string | null>;
  record(record: InboundRecord): void;
}

/** The chain named `chain` of listener `listener`, as it is now. */
export function chainOf(
  context: InboundContext,
  listener: string,
  chain: string,
): ChainState | undefined {
  return context.lookup(listener)?.chains.find((c) => c.name === chain);
}
