/**
 * The {@link Exchange} of a node:http or node:http2 compatibility-API
 * request: the only place the layers' types meet node's. A faster HTTP/1.1
 * transport supplies its own Exchange and nothing above it changes.
 */
import { downstreamConnection } from '../local-rate-limit.js';
import {
  isGrpc,
  isH2,
  localReply,
  noteGrpcStatus,
  protocolOf,
  replayableBody,
  requestHasBody,
  sentGrpcStatus,
  type AnyRequest,
  type AnyResponse,
} from '../h2-downstream.js';
import type { Exchange, RequestTarget } from './types.js';

/** The exchange of `req`/`res` addressed to `target` (its path after request-head normalisation). */
export function nodeExchange(req: AnyRequest, res: AnyResponse, target: RequestTarget): Exchange {
  return {
    head: {
      method: req.method ?? 'GET',
      authority: target.authority,
      path: target.path,
      headers: req.headers,
      protocol: protocolOf(req),
      remoteAddress: isH2(req) ? req.socket.remoteAddress : req.socket.remoteAddress,
    },
    sink: res,
    hasBody: requestHasBody(req),
    grpc: isGrpc(req.headers),
    connection: downstreamConnection(req),
    body: () => req,
    replayable: (limit) => replayableBody(req, limit),
    reply: (status, body, headers, grpcStatus) => {
      localReply(req, res, status, body, headers, grpcStatus);
    },
    noteGrpcStatus: (fields) => {
      noteGrpcStatus(req, fields);
    },
    sentGrpcStatus: () => sentGrpcStatus(req),
  };
}
