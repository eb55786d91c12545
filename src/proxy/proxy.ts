/**
 * One Palisade proxy process, assembled by direction (linkerd2-proxy's
 * layout): the xDS client feeds the inbound listeners, the outbound listener
 * and the admin endpoint; the secret store holds the workload's SVID (from
 * its own CSR client: the key never leaves this process) and the trust bundle
 * (SDS `ROOTCA` from the control plane). Graceful drain: `close()` stops
 * accepting, lets in-flight requests finish within `drainMs`, then closes
 * what is left.
 */
import type { Writable } from 'node:stream';
import { createProxyTelemetry, inboundServiceLookup } from './telemetry-hooks.js';
import { createOtlpExporter, createPeerMetadataExchange } from '../telemetry/index.js';
import { createInboundTelemetry } from './inbound/inbound-telemetry.js';
import { createSvidSource, workloadSpiffeId, type SvidSource } from '../identity/workload.js';
import { nodeWorkloadName, parseNodeId, type XdsTransport } from '../xds/index.js';
import { silentLogger, type Logger } from '../logging/index.js';
import {
  createAdsClient,
  type AdsClient,
  type XdsNode,
  type XdsSnapshot,
} from './xds-client/ads-client.js';
import { createOutboundProxy, type OutboundProxy } from './outbound/outbound-proxy.js';
import { createAdminServer } from './admin/admin-server.js';
import { createProxyTap } from './admin/tap.js';
import {
  createInboundListeners,
  type InboundListeners,
  type InboundRecord,
  type PreparedUpdate,
} from './inbound/inbound-listeners.js';
import { createSecretStore, type MutableSecretStore } from './tls/secrets.js';
import { createGatewayListeners, type GatewayListeners } from './gateway/gateway-listeners.js';
import { createVirtualOutbound, type VirtualOutbound } from './capture/virtual-outbound.js';
import { createListenerManager } from './listeners/listener-manager.js';
import type { DnsProxy } from './dns/dns-server.js';

/** Where the proxy gets its SVID. */
export interface ProxyIdentityOptions {
  /** The CA's CSR service, e.g. https://127.0.0.1:15012 */
  readonly caUrl: string;
  /** Roots that verify the CA server (the mesh root at bootstrap). */
  readonly caRootPem: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** SVID lifetime to ask for (default 24h). */
  readonly ttl?: string;
}

export interface ProxyOptions {
  node: XdsNode;
  /** `host:port` of the control plane's ADS server. */
  xdsAddress: string;
  /** TLS to the control plane (verified: mesh roots + its SPIFFE ID), or plaintext when asked for. */
  xdsTransport: XdsTransport;
  token?: () => string;
  /** Address the outbound listener binds (the instance IP). */
  instanceIp: string;
  /** Outbound listener port (default 15001; 0 picks one). */
  outboundPort?: number;
  /**
   * `redirect`: iptables sends the pod's traffic here (Istio's INTERCEPTION_MODE=REDIRECT):
   * the outbound port serves the capture listener virtualOutbound on 0.0.0.0 instead of the
   * explicit proxy, and inbound arrives through virtualInbound (src/proxy/capture).
   */
  interception?: 'redirect';
  /** DNS proxy port on 127.0.0.1 in redirect mode (default 15053, Istio's; 0 picks one). */
  dnsPort?: number;
  /** Admin port on 127.0.0.1 (default 15000; 0 picks one). */
  adminPort?: number;
  /** Longest wait for in-flight requests on close (default 5000 ms). */
  drainMs?: number;
  /** The workload identity; without it the proxy has no certificate and refuses every TLS connection. */
  identity?: ProxyIdentityOptions;
  logger?: Logger;
  /** Called per inbound request/connection (tests). */
  onInbound?: (record: InboundRecord) => void;
  /** Where JSON access logs go (Istio's format, one line per request); none when undefined. */
  accessLog?: Writable;
  /** Span export over OTLP/HTTP (JSON); none when undefined. */
  tracing?: {
    /** Collector URL, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added to a bare origin). */
    readonly otlpEndpoint: string;
    /** Share of new traces sampled, 0–100 % (Istio's default is 1). */
    readonly samplingPercent: number;
    /** Batching interval (default 5000 ms, the OTLP exporter default). */
    readonly flushIntervalMs?: number;
  };
}

export interface Proxy {
  readonly ads: AdsClient;
  readonly outboundPort: number;
  readonly adminPort: number;
  readonly secrets: MutableSecretStore;
  readonly inbound: InboundListeners;
  readonly svid: SvidSource | undefined;
  close(): Promise<void>;
}

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};

/** The PEM of a decoded SDS DataSource (`inline_string` or base64 `inline_bytes`). */
function dataSource(value: unknown): string | undefined {
  const v = rec(value);
  if (typeof v['inline_string'] === 'string') return v['inline_string'];
  if (typeof v['inline_bytes'] === 'string')
    return Buffer.from(v['inline_bytes'], 'base64').toString('utf8');
  return undefined;
}

/** Copies SDS secrets from the snapshot into the store (never `default`: that one is local). */
function syncSecrets(snapshot: XdsSnapshot, secrets: MutableSecretStore, known: Set<string>): void {
  const seen = new Set<string>();
  for (const [name, secret] of snapshot.secret) {
    if (name === 'default') continue;
    seen.add(name);
    const ca = dataSource(rec(rec(secret['validation_context'])['trusted_ca']));
    const cert = dataSource(rec(rec(secret['tls_certificate'])['certificate_chain']));
    const key = dataSource(rec(rec(secret['tls_certificate'])['private_key']));
    const next = {
      ...(ca === undefined ? {} : { validationContext: { trustedCaPem: ca } }),
      ...(cert === undefined || key === undefined
        ? {}
        : { tlsCertificate: { certChainPem: cert, privateKeyPem: key } }),
    };
    const prev = secrets.get(name);
    if (JSON.stringify(prev) !== JSON.stringify(next)) secrets.set(name, next);
  }
  for (const name of known) if (!seen.has(name)) secrets.set(name, undefined);
  known.clear();
  for (const name of seen) known.add(name);
}

/** Starts the proxy: SVID client, ADS stream, inbound and outbound listeners, admin endpoint. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const logger = options.logger ?? silentLogger();
  const secrets = createSecretStore();
  const meta = options.node.metadata;
  const text = (v: unknown): string | undefined =>
    typeof v === 'string' && v !== '' ? v : undefined;
  const labels =
    typeof meta['LABELS'] === 'object' && meta['LABELS'] !== null
      ? (meta['LABELS'] as Record<string, string>)
      : {};
  const workloadName =
    text(meta['WORKLOAD_NAME']) ?? nodeWorkloadName(parseNodeId(options.node.id));
  const exporter =
    options.tracing === undefined
      ? undefined
      : createOtlpExporter({
          endpoint: options.tracing.otlpEndpoint,
          // Istio names a proxy's spans' service `<workload>.<namespace>`.
          serviceName: `${workloadName === '' ? 'unknown' : workloadName}.${text(meta['NAMESPACE']) ?? 'default'}`,
          ...(options.tracing.flushIntervalMs === undefined
            ? {}
            : { flushIntervalMs: options.tracing.flushIntervalMs }),
        });
  const tap = createProxyTap();
  const telemetry = createProxyTelemetry(
    {
      workload: text(meta['WORKLOAD_NAME']),
      namespace: text(meta['NAMESPACE']),
      principal: options.identity === undefined ? undefined : workloadSpiffeId(options.identity),
      labels,
      cluster: text(meta['CLUSTER_ID']) ?? 'Kubernetes',
    },
    options.accessLog,
    exporter === undefined ? undefined : { exporter, nodeId: options.node.id },
    inboundServiceLookup(() => ads.snapshot, options.instanceIp),
    tap,
  );
  const sdsNames = new Set<string>();
  const onInbound = options.onInbound;
  // Istio's peer metadata exchange: this proxy's node metadata, told to mTLS peers only.
  const peerMetadata =
    options.identity === undefined
      ? undefined
      : createPeerMetadataExchange(options.node.id, {
          NAME: options.node.id.split('~')[2]?.split('.')[0],
          NAMESPACE: options.identity.namespace,
          WORKLOAD_NAME: workloadName,
          SERVICE_ACCOUNT: options.identity.serviceAccount,
          CLUSTER_ID: text(meta['CLUSTER_ID']) ?? 'Kubernetes',
          LABELS: labels,
        });
  const drainMs = options.drainMs ?? 5_000;
  // Every socket the proxy accepts on is bound, replaced and drained here.
  const manager = createListenerManager({ logger, drainMs });
  const inbound = createInboundListeners({
    secrets,
    logger,
    listeners: manager,
    telemetry: createInboundTelemetry(peerMetadata, exporter !== undefined),
    onRecord: (record) => {
      telemetry.inbound(record);
      onInbound?.(record);
    },
  });
  let gateways: GatewayListeners | undefined;
  let svid: SvidSource | undefined;
  if (options.identity !== undefined) {
    const id = options.identity;
    const token = options.token;
    svid = createSvidSource({
      caUrl: id.caUrl,
      caTrustBundlePem: id.caRootPem,
      trustDomain: id.trustDomain,
      namespace: id.namespace,
      serviceAccount: id.serviceAccount,
      // The function, not its value: every renewal re-reads the (rotating) token file.
      ...(token === undefined ? {} : { token }),
      ttl: id.ttl ?? '24h',
    });
    svid.on(
      'rotated',
      (snap: { certChainPem: string; keyPem: string; spiffeId: string; serial: string }) => {
        secrets.set('default', {
          tlsCertificate: { certChainPem: snap.certChainPem, privateKeyPem: snap.keyPem },
        });
        logger.info(
          { spiffeId: snap.spiffeId, serial: snap.serial },
          'workload certificate installed',
        );
      },
    );
    svid.on('retry', (error: Error, delayMs: number) => {
      logger.warn({ err: error.message, delayMs }, 'CA request failed; retrying');
    });
    void svid.start().catch((error: unknown) => {
      logger.error({ err: error }, 'no workload certificate');
    });
  }
  const ads = createAdsClient({
    address: options.xdsAddress,
    transport: options.xdsTransport,
    node: options.node,
    ...(options.token === undefined ? {} : { token: options.token }),
    // Every listener (inbound, gateway) is built and bound before the update is ACKed; any
    // failure NACKs it and the old config keeps serving. The outbound listener reads the
    // accepted snapshot per request, so it changes with the ACK.
    async prepare(snapshot) {
      const inboundUpdate = await inbound.prepare(snapshot);
      let gatewayUpdate: PreparedUpdate | undefined;
      try {
        gatewayUpdate = await gateways?.prepare(snapshot);
      } catch (error) {
        inboundUpdate.abort();
        throw error;
      }
      return {
        commit() {
          syncSecrets(snapshot, secrets, sdsNames);
          outbound?.sync(snapshot);
          inboundUpdate.commit();
          gatewayUpdate?.commit();
        },
        abort() {
          inboundUpdate.abort();
          gatewayUpdate?.abort();
        },
      };
    },
    onNack(kind, reason) {
      logger.warn({ kind, reason }, 'xDS update rejected (NACK)');
    },
    onStreamEnd(status, established) {
      // A stream that had been answered is worth a warning; failed reconnect attempts are not.
      logger[established ? 'warn' : 'debug'](
        { code: status.code, details: status.details },
        'xDS stream ended; reconnecting',
      );
    },
  });
  let outbound: OutboundProxy | undefined;
  let capture: VirtualOutbound | undefined;
  let dns: DnsProxy | undefined;
  const admin = createAdminServer({
    ads,
    instanceIp: options.instanceIp,
    secrets,
    metrics: telemetry.metrics,
    loggers: { proxy: logger },
    tap,
    ...(svid === undefined ? {} : { svid }),
  });
  try {
    outbound = createOutboundProxy({
      snapshot: () => ads.snapshot,
      secrets,
      localAddress: options.instanceIp,
      logger,
      ...(options.tracing === undefined
        ? {}
        : { traceSampling: options.tracing.samplingPercent / 100 }),
      ...(peerMetadata === undefined ? {} : { peerMetadata }),
      onRecord: (record) => {
        telemetry.outbound(record);
      },
      onTcpRecord: (record) => {
        telemetry.outboundTcp(record);
      },
      onSecureNamingFailure: (cluster, presented) => {
        logger.warn({ cluster, presented }, 'secure naming check failed: upstream refused');
      },
    });
    outbound.sync(ads.snapshot);
    if (options.interception === 'redirect')
      capture = createVirtualOutbound({ snapshot: () => ads.snapshot, outbound, logger });
    if (options.interception === 'redirect') {
      // The pod's DNS proxy (src/proxy/dns), where proxy-init --redirect-dns sends port 53.
      // Imported here: only captured pods run it, and dns-packet is idle RSS for every other proxy.
      const { createDnsProxy } = await import('./dns/dns-server.js');
      dns = createDnsProxy({
        table: () => ads.snapshot.typed.dns,
        logger,
      });
      await dns.listen('127.0.0.1', options.dnsPort ?? 15053);
    }
    const out = outbound;
    const port = options.outboundPort ?? 15001;
    const outboundSocket =
      capture === undefined
        ? await manager.listen(
            { name: 'outbound', kind: 'outbound', host: options.instanceIp, port },
            out.server,
          )
        : await manager.listen(
            { name: 'virtualOutbound', kind: 'capture', host: '0.0.0.0', port },
            capture.server,
          );
    const captured = capture;
    outboundSocket.onDrain(() => {
      // The capture listener's HTTP connections live in its own HTTP sides.
      if (captured === undefined) out.server.closeIdleConnections();
      else captured.drainIdle();
    });
    manager.activate(outboundSocket);
    const outboundPort = outboundSocket.port;
    const gatewaySide = createGatewayListeners({ secrets, logger, outbound, listeners: manager });
    gateways = gatewaySide;
    // Updates accepted before the gateway side existed: build them now (a failure is logged;
    // later updates are NACKed).
    await gatewaySide.sync(ads.snapshot).catch((error: unknown) => {
      logger.error({ err: error }, 'gateway listeners could not be built');
    });
    const adminSocket = await manager.listen(
      { name: 'admin', kind: 'admin', host: '127.0.0.1', port: options.adminPort ?? 15000 },
      admin,
    );
    adminSocket.onDrain(() => {
      admin.closeIdleConnections();
    });
    manager.activate(adminSocket);
    const adminPort = adminSocket.port;
    return {
      ads,
      outboundPort,
      adminPort,
      secrets,
      inbound,
      svid,
      async close() {
        ads.close();
        svid?.close();
        tap.close();
        // Every listener stops accepting now and drains within drainMs (listener manager).
        await Promise.all([
          manager.close(drainMs),
          inbound.close(drainMs),
          gatewaySide.close(drainMs),
          dns?.close(),
        ]);
        await capture?.close();
        await out.close();
        telemetry.accessLog?.flush();
        await exporter?.close();
      },
    };
  } catch (error) {
    ads.close();
    svid?.close();
    await manager.close(0);
    await outbound?.close();
    await capture?.close();
    await dns?.close();
    await inbound.close(0);
    await exporter?.close();
    throw error;
  }
}
