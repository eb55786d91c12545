/**
 * What the compiler knows about the proxy it builds config for: who it is
 * (authenticated namespace and service account), where it runs (instance IP,
 * app address), and which workload it fronts. Gateways are built-in proxies
 * labelled like Istio's (`istio: ingressgateway` / `istio: egressgateway`).
 */
import type { WorkloadView } from '../registry/service-registry.js';

/** `proxyless`: a gRPC client speaking xDS itself (no Palisade proxy in front of it). */
export type ProxyType = 'sidecar' | 'ingress' | 'egress' | 'proxyless';

/** A connected proxy, as the compiler sees it. */
export interface ProxyNode {
  /** Envoy node id (`sidecar~<ip>~<instance>.<ns>~<ns>.svc.cluster.local`). */
  readonly id: string;
  readonly type: ProxyType;
  /** The instance IP its listeners bind. */
  readonly ip: string;
  /** IP the local app listens on (its ports are the workload's ports). */
  readonly appAddress: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Pod labels (from the Workload resource, or the gateway's built-in labels). */
  readonly labels: Readonly<Record<string, string>>;
  /** The Workload fronted (sidecars only). */
  readonly workload: WorkloadView | undefined;
  /**
   * Istio's node metadata INTERCEPTION_MODE: `REDIRECT` when iptables sends the pod's traffic
   * to the sidecar (it then gets virtualOutbound/virtualInbound); absent: explicit-proxy mode.
   */
  readonly interception?: 'REDIRECT';
}

/** Built-in gateway labels (Istio's charts use these selectors). */
export const GATEWAY_LABELS: Readonly<
  Record<Exclude<ProxyType, 'sidecar' | 'proxyless'>, Record<string, string>>
> = {
  ingress: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
  egress: { istio: 'egressgateway', app: 'istio-egressgateway' },
};
