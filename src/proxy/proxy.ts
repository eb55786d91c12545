/**
 * One Palisade proxy process, assembled by direction (linkerd2-proxy's
 * layout): the xDS client feeds the outbound listener and the admin endpoint.
 * Graceful drain: `close()` stops accepting, lets in-flight requests finish
 * within `drainMs`, then closes what is left.
 */
import type * as http from 'node:http';
import { createAdsClient, type AdsClient, type XdsNode } from './xds-client/ads-client.js';
import { createOutboundProxy, type OutboundProxy } from './outbound/outbound-proxy.js';
import { createAdminServer } from './admin/admin-server.js';

export interface ProxyOptions {
  node: XdsNode;
  /** `host:port` of the control plane's ADS server. */
  xdsAddress: string;
  token?: () => string;
  /** Address the outbound listener binds (the instance IP). */
  instanceIp: string;
  /** Outbound listener port (default 15001; 0 picks one). */
  outboundPort?: number;
  /** Admin port on 127.0.0.1 (default 15000; 0 picks one). */
  adminPort?: number;
  /** Longest wait for in-flight requests on close (default 5000 ms). */
  drainMs?: number;
}

export interface Proxy {
  readonly ads: AdsClient;
  readonly outboundPort: number;
  readonly adminPort: number;
  close(): Promise<void>;
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** Starts the proxy: ADS stream, outbound listener and admin endpoint. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const ads = createAdsClient({
    address: options.xdsAddress,
    node: options.node,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  let outbound: OutboundProxy | undefined;
  const admin = createAdminServer({ ads });
  try {
    outbound = createOutboundProxy({ snapshot: () => ads.snapshot });
    const outboundPort = await outbound.listen(options.instanceIp, options.outboundPort ?? 15001);
    const adminPort = await listen(admin, '127.0.0.1', options.adminPort ?? 15000);
    const out = outbound;
    return {
      ads,
      outboundPort,
      adminPort,
      async close() {
        ads.close();
        admin.close();
        out.server.close();
        out.server.closeIdleConnections();
        const drain = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.drainMs ?? 5_000);
          out.server.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        await drain;
        await out.close();
        admin.closeAllConnections();
      },
    };
  } catch (error) {
    ads.close();
    admin.close();
    await outbound?.close();
    throw error;
  }
}
