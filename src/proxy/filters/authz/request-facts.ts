/**
 * What the HTTP authz filter decides on, for a request or an upgrade: the
 * connection's verified peer and addresses (peer authentication) and the
 * request head. One function for inbound chains and gateways, so both ask the
 * policy exactly the same question.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { InboundRequest } from '../../../policy/index.js';
import { flatHeaders } from './evaluator.js';

/** The connection a request came on. */
export interface ConnectionFacts {
  /** The peer's SPIFFE ID proven by mTLS; null without a verified client certificate. */
  readonly principal: string | null;
  readonly sourceIp: string | undefined;
  readonly destinationIp: string | undefined;
  readonly destinationPort: number;
}

/** The authz request for an HTTP request head on a connection. */
export function httpAuthzRequest(
  req: {
    readonly method?: string | undefined;
    readonly url?: string | undefined;
    readonly headers: IncomingHttpHeaders;
  },
  peer: ConnectionFacts,
): InboundRequest {
  // One shape for every request (absent addresses are undefined, as the policy reads them).
  return {
    principal: peer.principal,
    sourceIp: peer.sourceIp,
    destinationIp: peer.destinationIp,
    destinationPort: peer.destinationPort,
    protocol: 'http',
    method: req.method ?? 'GET',
    host: req.headers.host,
    path: req.url ?? '/',
    headers: flatHeaders(req.headers),
  };
}
