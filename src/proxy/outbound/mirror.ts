/**
 * Request mirroring (route.v3.RouteAction.RequestMirrorPolicy): a copy of a
 * routed request goes to the mirror cluster through the same cluster and
 * endpoint layers as the request itself (LB, health, ejection, upstream
 * mTLS, pools); its response is discarded. Envoy appends `-shadow` to the
 * host. Requests with a body are not mirrored here (the body streams once).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { str } from '../../xds/index.js';
import { chance } from '../envoy-values.js';
import type { UpstreamHandler } from '../h2-upstream.js';
import type { RequestTarget } from '../http/types.js';
import type { XdsSnapshot } from '../xds-client/xds-resource.js';
import { isClusterFailure } from './cluster.js';
import type { ForwardLayers } from './retry-handler.js';

/** One mirror of a request. */
export interface MirrorRequest {
  readonly cluster: string;
  readonly share: number;
  readonly method: string;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly target: RequestTarget;
  /** The route's timeout (15 s when it is 0), after which the mirror is abandoned. */
  readonly timeoutMs: number;
}

/** Sends the mirror (fire and forget); false when it was not sent (share, no host, TLS error). */
export function sendMirror(
  layers: ForwardLayers,
  snapshot: XdsSnapshot,
  m: MirrorRequest,
): boolean {
  if (!chance(m.share)) return false;
  const cluster = layers.clusters.resolve(snapshot, m.cluster, m.target);
  if (isClusterFailure(cluster)) return false;
  const endpoint = layers.clusters.pick(cluster);
  const agent = layers.clusters.agent(cluster);
  if (endpoint === undefined || agent instanceof Error) return false;
  const headers = { ...m.headers, host: `${str(m.headers['host'])}-shadow` };
  const timer = setTimeout(() => {
    abort?.(new Error('mirror timeout'));
  }, m.timeoutMs || 15_000);
  let abort: ((reason: Error) => void) | undefined;
  const handler: UpstreamHandler = {
    onRequestStart(c) {
      abort = (reason) => {
        c.abort(reason);
      };
    },
    onResponseEnd() {
      clearTimeout(timer);
    },
    onResponseError() {
      clearTimeout(timer);
    },
  };
  try {
    layers.connector.dispatcher(cluster.name, endpoint, agent, str(headers.host), false).dispatch(
      {
        method: m.method,
        path: m.path,
        headers: headers as Record<string, string | string[]>,
        body: null,
        ...(cluster.tls?.sni === undefined ? {} : { servername: cluster.tls.sni }),
      },
      handler,
    );
  } catch {
    clearTimeout(timer);
    return false;
  }
  return true;
}
