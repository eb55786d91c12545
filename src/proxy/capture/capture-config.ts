/**
 * The `virtualOutbound` capture listener as a captured connection reads it,
 * compiled when the listener is accepted (before the ACK): each filter chain's
 * match (destination port, prefix ranges as numbers, application protocols),
 * its egress NetworkPolicy (network RBAC filters, compiled to an evaluator) and
 * what serves the connection (an HTTP connection manager, a tcp_proxy, or
 * Passthrough/BlackHole), and how long protocol detection waits. An RBAC
 * filter that does not compile is a problem: the update is NACKed.
 */
import {
  asListener,
  hcmOf,
  HCM_FILTER,
  NETWORK_RBAC_FILTER,
  tcpProxyOf,
  type Filter,
  type Listener,
} from '../../xds/index.js';
import { tcpPolicyEvaluator, type PolicyEvaluator } from '../filters/authz/index.js';
import { compileHcm, type HcmConfig } from '../outbound/hcm-config.js';
import { compileTcpProxy, type TcpProxyConfig } from '../outbound/tcp-proxy-config.js';
import { REQUEST_HEADERS_TIMEOUT_MS } from '../request-head.js';
import { addressBits, type AddressBits } from './address-bits.js';

/** A `prefix_ranges` entry: the prefix's bits and its length. */
export interface PrefixRange extends AddressBits {
  readonly len: number;
}

/** What serves a connection the chain matched. */
export type CaptureAction =
  | { readonly kind: 'http'; readonly hcm: HcmConfig }
  | {
      readonly kind: 'tcp';
      readonly tcp: TcpProxyConfig;
      /** `…|endpoint|…` chains (a pod IP): relay to the original destination itself. */
      readonly toDestination: boolean;
    }
  | { readonly kind: 'passthrough' }
  | { readonly kind: 'blackhole'; readonly cluster: string };

export interface CaptureChain {
  readonly name: string;
  /** `destination_port`, or undefined (any port). */
  readonly port: number | undefined;
  /** `prefix_ranges` (empty: any address; an unparsable prefix matches nothing). */
  readonly prefixes: readonly PrefixRange[];
  readonly protocols: readonly string[];
  /** The chain's network RBAC filters (egress NetworkPolicy), or null when it has none. */
  readonly egress: PolicyEvaluator | null;
  readonly action: CaptureAction;
}

export interface CaptureListenerConfig {
  readonly chains: readonly CaptureChain[];
  /** Some chain carries RBAC filters (the egress check is then needed). */
  readonly egress: boolean;
  /** How long protocol detection waits, and whether a silent client is then closed. */
  readonly detection: { readonly ms: number; readonly close: boolean };
}

/**
 * Envoy's `listener_filters_timeout` (default 15 s, continuing with the protocol-less
 * chain) or — for 0 s, Envoy's "no timeout" — closing a client still silent after the
 * HTTP head timeout, so a connection that never speaks holds nothing forever.
 */
function detectionBound(listener: Listener): { ms: number; close: boolean } {
  const d = listener.listener_filters_timeout;
  if (d === undefined || (d.seconds === undefined && d.nanos === undefined))
    return { ms: 15_000, close: false };
  const ms = Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6);
  return ms > 0 ? { ms, close: false } : { ms: REQUEST_HEADERS_TIMEOUT_MS, close: true };
}

function compileAction(chainName: string, filter: Filter | undefined): CaptureAction {
  if (filter?.name === HCM_FILTER) return { kind: 'http', hcm: compileHcm(hcmOf(filter)) };
  const tcp = compileTcpProxy(tcpProxyOf(filter));
  if (filter === undefined || tcp.cluster === 'BlackHoleCluster' || tcp.cluster === '')
    return { kind: 'blackhole', cluster: tcp.cluster };
  if (tcp.cluster === 'PassthroughCluster') return { kind: 'passthrough' };
  return { kind: 'tcp', tcp, toDestination: chainName.includes('|endpoint|') };
}

/** Compiles an accepted virtualOutbound listener; a chain that does not compile adds a problem. */
export function compileCaptureListener(
  resource: Record<string, unknown>,
  problems: string[],
): CaptureListenerConfig {
  const listener = asListener(resource);
  const chains = (listener.filter_chains ?? []).map((chain, i): CaptureChain => {
    const name = chain.name ?? '';
    const match = chain.filter_chain_match ?? {};
    const port = match.destination_port?.value;
    const prefixes: PrefixRange[] = [];
    for (const range of match.prefix_ranges ?? []) {
      const base = addressBits(range.address_prefix);
      const len = Number(range.prefix_len?.value ?? 0);
      if (base === undefined || !(len >= 0 && len <= base.bits)) {
        problems.push(
          `filter_chains[${String(i)}].filter_chain_match.prefix_ranges: ${JSON.stringify(range.address_prefix)}/${String(len)} is not an IP prefix`,
        );
        continue;
      }
      prefixes.push({ ...base, len });
    }
    const filters = chain.filters ?? [];
    const rbac = filters.filter((f) => f.name === NETWORK_RBAC_FILTER);
    let egress: PolicyEvaluator | null = null;
    if (rbac.length > 0) {
      try {
        egress = tcpPolicyEvaluator(rbac);
      } catch (error) {
        problems.push(
          `filter_chains[${String(i)}]: network RBAC filter does not compile: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    return {
      name,
      port: port === undefined ? undefined : Number(port),
      prefixes,
      protocols: match.application_protocols ?? [],
      egress,
      action: compileAction(
        name,
        filters.find((f) => f.name !== NETWORK_RBAC_FILTER),
      ),
    };
  });
  return {
    chains,
    egress: chains.some((c) => c.egress !== null),
    detection: detectionBound(listener),
  };
}
