/**
 * What the inbound side adds for telemetry, kept out of the listener code:
 * the client's peer metadata (accepted only over mTLS from the identity it
 * claims, see telemetry/peer-metadata.ts), the server's metadata on the
 * response to such a client, and the server span of each request (a child of
 * the caller's context, propagated to the app as Envoy's inbound sidecar
 * does, so the app's outgoing calls become its children).
 */
import type * as http from 'node:http';
import {
  childSpan,
  injectTraceContext,
  parseTraceContext,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  PEER_METADATA_FIELDS,
  stripPeerHeaders,
  type PeerInfo,
  type PeerMetadataExchange,
  type SpanContext,
} from '../../telemetry/index.js';

export { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER };

/** Inbound telemetry options of a proxy. */
export interface InboundTelemetry {
  readonly exchange: PeerMetadataExchange | undefined;
  /** Start a server span per request (on when the proxy exports spans). */
  readonly serverSpans: boolean;
  /** Writes the server span into the headers sent to the app. */
  toApp(headers: http.OutgoingHttpHeaders, span: SpanContext): void;
  /** Strips the app's peer headers from the response; adds this proxy's for a verified mesh client. */
  toClient(headers: http.OutgoingHttpHeaders, client: PeerInfo | undefined): void;
  /** {@link toClient} as edits of a response head forwarded as received (made once, shared). */
  clientEdits(client: PeerInfo | undefined): ResponseEdits;
}

/** Fields to drop from a response head and fields to append to it. */
export interface ResponseEdits {
  readonly remove: ReadonlySet<string>;
  readonly add: readonly string[];
}

/** Creates the inbound telemetry of a proxy. */
export function createInboundTelemetry(
  exchange: PeerMetadataExchange | undefined,
  serverSpans: boolean,
): InboundTelemetry {
  const stripOnly: ResponseEdits = { remove: PEER_METADATA_FIELDS, add: [] };
  const withOwn: ResponseEdits =
    exchange === undefined ? stripOnly : { remove: PEER_METADATA_FIELDS, add: exchange.fields };
  return {
    exchange,
    serverSpans,
    clientEdits(client) {
      return client === undefined ? stripOnly : withOwn;
    },
    toApp(headers, span) {
      injectTraceContext(headers, span);
    },
    toClient(headers, client) {
      stripPeerHeaders(headers);
      if (client !== undefined) exchange?.put(headers);
    },
  };
}

/** The verified client metadata and the server span of one inbound request. */
export function inboundPeer(
  telemetry: InboundTelemetry | undefined,
  headers: http.IncomingHttpHeaders,
  principal: string | null,
): { peer?: PeerInfo; span?: SpanContext } {
  if (telemetry === undefined) return {};
  const peer = telemetry.exchange?.fromClient(headers, principal);
  const span = telemetry.serverSpans ? childSpan(parseTraceContext(headers)) : undefined;
  return { peer, span };
}
