/**
 * The HTTP handler of gateway chains: request-head checks → authz
 * (RequestAuthentication / AuthorizationPolicy selecting the gateway, run
 * before routing as Istio does, for requests and upgrades alike) → the
 * outbound router with the chain's HttpConnectionManager (RDS `http.<port>`).
 * HTTP/1.1 and HTTP/2 (ALPN `h2` after TLS, the h2c preface in plaintext), so
 * gRPC works through the ingress.
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import { denialBody, httpAuthzRequest } from '../filters/authz/index.js';
import {
  createH2Downstream,
  type AnyRequest,
  type AnyResponse,
  type H2Downstream,
  type Http1AnyRequest,
} from '../h2-downstream.js';
import { rejectUpgrade } from '../http-upgrade.js';
import { containRequest, containSocket } from '../listeners/containment.js';
import { checkRequestHead, rejectionHeaders, rejectOnSocket } from '../request-head.js';
import type { OutboundProxy } from '../outbound/outbound-proxy.js';
import { createHttpServer } from '../listeners/http-server.js';
import type { HttpChainAction } from './gateway-chains.js';

/** The gateway chain's HttpConnectionManager and policy, compiled with its chain (before the ACK). */
type Hcm = HttpChainAction;

/** The HTTP/1.1 server and HTTP/2 side of one gateway listener. */
export interface GatewayHttpSide {
  /** Serves an HTTP/1.1 connection with `hcm`. */
  http1(socket: net.Socket, hcm: Hcm): void;
  /** Serves an HTTP/2 connection with `hcm` (`readThroughJs`: the h2c preface was sniffed). */
  h2(socket: net.Socket, hcm: Hcm, readThroughJs: boolean): void;
  /** Idle keep-alive connections close, HTTP/2 sessions get GOAWAY (drain). */
  release(): void;
  /** Closes every connection left. */
  destroy(): void;
}

/** The gateway's HTTP handling: one HTTP side per listener. */
export interface GatewayHttp {
  side(): GatewayHttpSide;
}

export function createGatewayHttp(logger: Logger, outbound: OutboundProxy): GatewayHttp {
  /**
   * The denial to send, or undefined when allowed (the policy's header changes are then
   * applied to `req`). Fails closed.
   */
  const authorize = async (
    req: AnyRequest,
    hcm: Hcm,
  ): Promise<
    { status: number; body: string; headers?: Readonly<Record<string, string>> } | undefined
  > => {
    try {
      // A gateway's clients are outside the mesh: no peer principal, only addresses.
      const decision = await hcm.policy.decide(
        httpAuthzRequest(req, {
          principal: null,
          sourceIp: req.socket.remoteAddress,
          destinationIp: undefined,
          destinationPort: req.socket.localPort ?? 0,
        }),
      );
      if (decision.status !== 200) {
        const status = typeof decision.status === 'number' ? decision.status : 403;
        logger.info(
          { path: req.url, status, policy: decision.policy, reason: decision.reason },
          'gateway request denied',
        );
        // An external authorizer's denial is relayed as it answered (status, body, headers).
        return decision.localReply ?? { status, body: denialBody(status, decision.reason) };
      }
      for (const h of decision.headersToRemove ?? [])
        Reflect.deleteProperty(req.headers, h.toLowerCase());
      for (const [k, v] of Object.entries(decision.headersToSet ?? {})) req.headers[k] = v;
      return undefined;
    } catch (error) {
      logger.error({ err: error }, 'gateway policy evaluation failed: denying');
      return { status: 403, body: 'RBAC: access denied' };
    }
  };

  const serve = (
    req: AnyRequest,
    res: AnyResponse,
    hcm: Hcm | undefined,
  ): Promise<void> | undefined => {
    if (hcm === undefined) {
      res.writeHead(404).end();
      return;
    }
    // The request head is checked and its path normalised before policy and routing see it.
    const rejected = checkRequestHead(req, hcm.hcm.requestHead);
    if (rejected !== undefined) {
      res.writeHead(rejected.status, rejectionHeaders(req, rejected));
      res.end(rejected.body);
      return;
    }
    if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
    return authorize(req, hcm).then((denied) => {
      if (denied === undefined) {
        outbound.handle(req, res, hcm.hcm);
        return;
      }
      if (res.headersSent) return;
      res.writeHead(denied.status, {
        ...denied.headers,
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(denied.body),
      });
      res.end(denied.body);
    });
  };

  // WebSocket/Upgrade through the gateway: the same policy first, then routed like a request.
  const upgrade = (
    req: Http1AnyRequest,
    socket: Duplex,
    head: Buffer,
    hcm: Hcm | undefined,
  ): Promise<void> | undefined => {
    if (hcm === undefined) {
      rejectUpgrade(socket, 404, '');
      return;
    }
    const rejected = checkRequestHead(req, hcm.hcm.requestHead);
    if (rejected !== undefined) {
      rejectOnSocket(socket, rejected);
      return;
    }
    if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
    return authorize(req, hcm).then((denied) => {
      if (denied === undefined) outbound.handleUpgrade(req, socket, head, hcm.hcm);
      else rejectUpgrade(socket, denied.status, denied.body);
    });
  };

  return {
    side() {
      const hcmOf = new WeakMap<object, Hcm>();
      // The server factory seam: the HTTP/1.1 transport under the gateway.
      const server = createHttpServer({
        request(req, res) {
          containRequest(req, res, logger, 'gateway request', () =>
            serve(req, res, hcmOf.get(req.socket)),
          );
        },
        upgrade(req, socket, head) {
          containSocket(socket, logger, 'gateway upgrade', () =>
            upgrade(req, socket, head, hcmOf.get(req.socket)),
          );
        },
      });
      const h2: H2Downstream<Hcm> = createH2Downstream<Hcm>((req, res) => {
        containRequest(req, res, logger, 'gateway request', () =>
          serve(req, res, h2.contextOf(req)),
        );
      });
      return {
        http1(socket, hcm) {
          hcmOf.set(socket, hcm);
          server.emit('connection', socket);
        },
        h2(socket, hcm, readThroughJs) {
          h2.accept(socket, hcm, readThroughJs);
        },
        release() {
          server.closeIdleConnections();
          h2.close();
        },
        destroy() {
          h2.close();
          server.closeAllConnections();
          server.close();
        },
      };
    },
  };
}
