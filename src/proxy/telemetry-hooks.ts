/**
 * What the proxy reports per request, as Istio's sidecars do: Istio standard
 * metrics (inbound as reporter=destination, outbound as reporter=source) and
 * one JSON access-log line per request with Istio's fields. Peers are
 * described from the node metadata (own workload, namespace, app/version
 * labels), the verified peer SPIFFE ID, and the outbound cluster name
 * (`outbound|port|subset|host` → destination service). With an OTLP
 * exporter, each sampled outbound hop is also exported as a client span
 * (the span whose context the proxy propagated upstream), named and
 * tagged as Envoy's tracer does for Istio.
 */
import type { Writable } from 'node:stream';
import {
  createAccessLogger,
  createMeshMetrics,
  requestLabels,
  tcpLabels,
  unixNanoNow,
  type OtlpExporter,
  type AccessLogger,
  type MeshMetrics,
  type IstioRequestLabels,
  type IstioTcpLabels,
  type PeerInfo,
  type TcpEvent,
} from '../telemetry/index.js';
import type { ProxyTap } from './admin/tap.js';
import { TupleMap } from './tuple-map.js';
import type { InboundRecord } from './inbound/inbound-listeners.js';
import type { XdsSnapshot } from './xds-client/ads-client.js';
import type { OutboundRecord, OutboundTcpRecord } from './outbound/outbound-proxy.js';
import { StringMemo } from './string-memo.js';

/** The proxy's own workload, from its node metadata. */
export interface SelfDescription {
  readonly workload: string | undefined;
  readonly namespace: string | undefined;
  readonly principal: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  /** Istio's CLUSTER_ID (default `Kubernetes`). */
  readonly cluster?: string | undefined;
}

/** Metrics and access logs for one proxy. */
export interface ProxyTelemetry {
  readonly metrics: MeshMetrics;
  readonly accessLog: AccessLogger | undefined;
  inbound(record: InboundRecord): void;
  outbound(record: OutboundRecord): void;
  /** A relayed TCP connection through a tcp_proxy (the source reporter). */
  outboundTcp(record: OutboundTcpRecord): void;
}

/** Records one TCP connection event on a label set (opened; or closed with its bytes). */
function recordTcp(metrics: MeshMetrics, labels: IstioTcpLabels, tcp: TcpEvent): void {
  if (tcp.event === 'open') {
    metrics.recordTcpOpen(labels);
    return;
  }
  metrics.recordTcpBytes(labels, { sent: tcp.sentBytes, received: tcp.receivedBytes });
  metrics.recordTcpClose(labels);
}

/** `spiffe://td/ns/<ns>/sa/<sa>` → the namespace, for source_workload_namespace. */
function namespaceOf(principal: string | null): string | undefined {
  return principal === null ? undefined : (/\/ns\/([^/]+)\/sa\//.exec(principal)?.[1] ?? undefined);
}

/**
 * The caller as the destination reporter sees it: its metadata when mTLS proved its claim
 * (peer-metadata.ts, HTTP or TCP exchange), else only the verified principal — a plaintext
 * client is `unknown` whatever it claims.
 */
function inboundSource(r: InboundRecord): PeerInfo {
  return r.peer ?? { principal: r.principal ?? undefined, namespace: namespaceOf(r.principal) };
}

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(rec) : []);

/**
 * The service an inbound listener serves, for the destination reporter's
 * `destination_service`: Envoy reads it from the inbound cluster's Istio
 * metadata; here it is the service whose endpoints (EDS, `outbound|port||host`)
 * include this instance's address and port. Memoised per snapshot.
 */
export function inboundServiceLookup(
  snapshot: () => XdsSnapshot,
  instanceIp: string,
): (listener: string) => string | undefined {
  let seen: XdsSnapshot | undefined;
  let byPort = new Map<number, string>();
  // The answer per listener name (a split of the name per request was ~0.7 % of the inbound
  // proxy); a listener's name is one of the snapshot's, so the memo stays as small as the config.
  const serviceOf = (listener: string): string | undefined =>
    byPort.get(Number(listener.split('|')[1]));
  let byListener = new StringMemo(serviceOf, 1024);
  return (listener) => {
    const current = snapshot();
    if (current !== seen) {
      seen = current;
      byPort = new Map();
      byListener = new StringMemo(serviceOf, 1024);
      for (const [name, cla] of current.endpoint) {
        const [direction, port, subset, host] = name.split('|');
        if (direction !== 'outbound' || subset !== '' || host === undefined) continue;
        for (const group of list(cla['endpoints']))
          for (const lb of list(group['lb_endpoints'])) {
            const address = rec(rec(rec(lb['endpoint'])['address'])['socket_address']);
            if (address['address'] === instanceIp && String(address['port_value']) === port)
              if (!byPort.has(Number(port))) byPort.set(Number(port), host);
          }
      }
    }
    return byListener.get(listener);
  };
}

/**
 * Envoy's RBAC response code detail for a denial: `rbac_access_denied_matched_policy[<policy>]`
 * with Istio's policy naming `ns[<ns>]-policy[<name>]` (the proxy records the deciding policy,
 * not the rule index, so the `-rule[N]` suffix Envoy adds is left out).
 */
export function rbacDeniedDetails(policy: string): string {
  const slash = policy.indexOf('/');
  const named =
    slash < 0 ? policy : `ns[${policy.slice(0, slash)}]-policy[${policy.slice(slash + 1)}]`;
  return `rbac_access_denied_matched_policy[${named}]`;
}

/** Label sets one proxy keeps built; more distinct ones than this clear the cache (the metrics cap is lower). */
const LABEL_CACHE_SIZE = 4096;

/**
 * Label sets reused across requests: building Istio's 25 labels (and the metrics' key over them)
 * was most of a request's telemetry cost (bench/feature-cost.bench.ts). A request's labels depend
 * only on the peer, the service/cluster, status, flags, mTLS and gRPC status, so they are looked up
 * by those parts, one Map level each: no key string is built (and hashed) per request, and a peer
 * object (from the exchange's per-claim cache) is a key by identity.
 */
function labelCache(depth: number): {
  get(parts: readonly unknown[], build: () => IstioRequestLabels): IstioRequestLabels;
} {
  const built = new TupleMap<IstioRequestLabels>(depth);
  return {
    get(parts, build) {
      let labels = built.get(parts);
      if (labels === undefined) {
        if (built.size >= LABEL_CACHE_SIZE) built.clear();
        labels = build();
        built.set(parts, labels);
      }
      return labels;
    },
  };
}

/** Creates the telemetry of one proxy; `accessLogStream` undefined disables access logs. */
export function createProxyTelemetry(
  self: SelfDescription,
  accessLogStream: Writable | undefined,
  spans?: { readonly exporter: OtlpExporter; readonly nodeId: string },
  inboundService?: (listener: string) => string | undefined,
  tap?: ProxyTap,
): ProxyTelemetry {
  const metrics = createMeshMetrics();
  const accessLog =
    accessLogStream === undefined ? undefined : createAccessLogger({ stream: accessLogStream });
  const me: PeerInfo = {
    workload: self.workload,
    namespace: self.namespace,
    principal: self.principal,
    app: self.labels['app'],
    version: self.labels['version'],
    cluster: self.cluster,
    canonicalService: self.labels['service.istio.io/canonical-name'],
    canonicalRevision: self.labels['service.istio.io/canonical-revision'],
  };
  const inboundLabels = labelCache(5);
  const outboundLabels = labelCache(6);
  // The inbound cluster a listener logs (`inbound|9080||`): built once, a flat string (a
  // concatenation per request was flattened again by the log's escape check).
  const inboundCluster = new StringMemo((listener) => `${listener}||`, 256);
  return {
    metrics,
    accessLog,
    inbound(r) {
      if (r.tcp !== undefined) {
        const service = inboundService?.(r.listener);
        recordTcp(
          metrics,
          tcpLabels({
            reporter: 'destination',
            source: inboundSource(r),
            destination: service === undefined ? me : { ...me, service },
            mutualTls: r.mtls,
          }),
          r.tcp,
        );
        return;
      }
      if (r.method === undefined) return;
      const service = inboundService?.(r.listener);
      // The source: the vouched-for peer object, else the principal alone (a string).
      const parts = [
        r.peer ?? r.principal ?? '',
        service,
        r.status,
        r.mtls,
        r.grpc === undefined ? 'http' : r.grpc.status,
      ];
      metrics.recordRequest(
        inboundLabels.get(parts, () =>
          requestLabels({
            reporter: 'destination',
            source: inboundSource(r),
            destination: service === undefined ? me : { ...me, service },
            responseCode: r.status,
            responseFlags: r.status === 0 ? 'NR' : '-',
            mutualTls: r.mtls,
            protocol: r.grpc === undefined ? 'http' : 'grpc',
            grpcStatus: r.grpc?.status,
          }),
        ),
        { durationMs: r.durationMs, requestBytes: 0, responseBytes: 0 },
      );
      // Envoy's RBAC filter names the deciding policy in the response code details.
      const details =
        r.status === 403 && r.policy !== null ? rbacDeniedDetails(r.policy) : r.reason;
      // One clock read for the tap and the access log.
      const now = Date.now();
      tap?.record({
        timeMs: now,
        direction: 'inbound',
        method: r.method,
        path: r.path ?? '',
        status: r.status,
        durationMs: r.durationMs,
        sourcePrincipal: r.principal,
        destination: r.listener,
        mtls: r.mtls,
        ...(r.policy === null || r.status < 400 ? {} : { policy: r.policy, details }),
      });
      accessLog?.log({
        startTime: now - r.durationMs,
        method: r.method,
        path: r.path,
        protocol: r.protocol ?? 'HTTP/1.1',
        responseCode: r.status,
        responseFlags: '-',
        responseCodeDetails: details,
        durationMs: Math.round(r.durationMs),
        upstreamCluster: inboundCluster.get(r.listener),
      });
      if (spans !== undefined && r.span?.sampled === true) {
        // Envoy's inbound sidecar span: kind server, named after the inbound cluster's route.
        const end = unixNanoNow();
        spans.exporter.export({
          context: r.span,
          name: `${service ?? r.listener}:${r.listener.split('|')[1] ?? ''}/*`,
          kind: 'server',
          startTimeUnixNano: end - BigInt(Math.round(r.durationMs * 1e6)),
          endTimeUnixNano: end,
          attributes: {
            'http.method': r.method,
            'http.url': r.path ?? '/',
            'http.protocol': r.protocol ?? 'HTTP/1.1',
            'http.status_code': r.status,
            'peer.principal': r.principal ?? '',
            ...(r.peer?.workload === undefined ? {} : { 'peer.workload': r.peer.workload }),
            'istio.mutual_tls': r.mtls,
            node_id: spans.nodeId,
            component: 'proxy',
          },
          status: r.status === 0 || r.status >= 500 ? { code: 'error' } : { code: 'unset' },
        });
      }
    },
    outboundTcp(r) {
      const [, , subset, host] = r.cluster.split('|');
      recordTcp(
        metrics,
        tcpLabels({
          reporter: 'source',
          source: me,
          destination: {
            ...r.peer,
            ...(host === undefined || host === '' ? { service: r.cluster } : { service: host }),
            ...(r.peer?.version === undefined && subset !== undefined && subset !== ''
              ? { version: subset }
              : {}),
          },
          mutualTls: r.mtls,
        }),
        r.tcp,
      );
    },
    outbound(r) {
      const now = Date.now();
      tap?.record({
        timeMs: now,
        direction: 'outbound',
        method: r.method,
        path: r.path,
        authority: r.authority,
        status: r.status,
        durationMs: r.durationMs,
        sourcePrincipal: self.principal ?? null,
        destination: r.cluster,
        mtls: r.mtls,
      });
      // The server's metadata when secure naming vouches for it, else what the cluster name says.
      const parts = [
        r.peer,
        r.cluster,
        r.status,
        r.flags,
        r.mtls,
        r.grpc === undefined ? 'http' : r.grpc.status,
      ];
      metrics.recordRequest(
        outboundLabels.get(parts, () => {
          const [, , subset, host] = r.cluster.split('|');
          const destination: PeerInfo = {
            ...r.peer,
            ...(host === undefined || host === '' ? {} : { service: host }),
            ...(r.peer?.version === undefined && subset !== undefined && subset !== ''
              ? { version: subset }
              : {}),
          };
          return requestLabels({
            reporter: 'source',
            source: me,
            destination,
            responseCode: r.status,
            responseFlags: r.flags,
            mutualTls: r.mtls,
            protocol: r.grpc === undefined ? 'http' : 'grpc',
            grpcStatus: r.grpc?.status,
          });
        }),
        { durationMs: r.durationMs, requestBytes: 0, responseBytes: 0 },
      );
      accessLog?.log({
        startTime: now - r.durationMs,
        method: r.method,
        path: r.path,
        protocol: r.protocol,
        responseCode: r.status,
        responseFlags: r.flags,
        durationMs: Math.round(r.durationMs),
        authority: r.authority,
        upstreamHost: r.upstream === '' ? undefined : r.upstream,
        upstreamCluster: r.cluster,
      });
      if (spans !== undefined && r.span?.sampled === true) {
        const end = unixNanoNow();
        const failed = r.status === 0 || r.status >= 500;
        spans.exporter.export({
          context: r.span,
          name: `${r.authority}${r.authority.includes(':') ? '' : ':80'}/*`,
          kind: 'client',
          startTimeUnixNano: end - BigInt(Math.round(r.durationMs * 1e6)),
          endTimeUnixNano: end,
          attributes: {
            'http.method': r.method,
            'http.url': `http://${r.authority}${r.path}`,
            'http.protocol': r.protocol,
            'http.status_code': r.status,
            response_flags: r.flags,
            upstream_cluster: r.cluster,
            ...(r.upstream === '' ? {} : { upstream_address: r.upstream }),
            node_id: spans.nodeId,
            component: 'proxy',
            ...(r.grpc?.status === undefined ? {} : { 'grpc.status_code': r.grpc.status }),
          },
          status: failed ? { code: 'error' } : { code: 'unset' },
        });
      }
    },
  };
}
