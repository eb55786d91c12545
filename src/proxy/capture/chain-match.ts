/**
 * Envoy's first two filter-chain match steps for a captured connection
 * (destination port, then the longest `prefix_ranges` match on the original
 * destination address), used by the virtual outbound listener.
 */
import * as net from 'node:net';
import { list, rec, str } from '../../xds/index.js';
import type { OriginalDestination } from './original-dst.js';

type R = Record<string, unknown>;

/** IPv4/IPv6 address → bigint, with its bit width. */
function addressBits(address: string): { value: bigint; bits: number } | undefined {
  if (net.isIPv4(address)) {
    const value = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { value, bits: 32 };
  }
  if (!net.isIPv6(address)) return undefined;
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  return {
    value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n),
    bits: 128,
  };
}

/** Length of the longest `prefix_ranges` entry containing `address`; -1 when none; 0 when the chain has none. */
function prefixMatch(match: R, address: string): number {
  const ranges = list(match['prefix_ranges']);
  if (ranges.length === 0) return 0;
  const target = addressBits(address);
  if (target === undefined) return -1;
  let best = -1;
  for (const range of ranges) {
    const base = addressBits(str(range['address_prefix']));
    const len = Number(rec(range['prefix_len'])['value'] ?? 0);
    if (base === undefined || base.bits !== target.bits) continue;
    const shift = BigInt(base.bits - len);
    if (base.value >> shift === target.value >> shift && len > best) best = len;
  }
  return best;
}

/** The chains that fit a destination best on port and address (Envoy's first two match steps). */
export function candidateChains(listener: R, destination: OriginalDestination): R[] {
  const chains = list(listener['filter_chains']);
  const portOf = (c: R): number | undefined => {
    const v = rec(rec(c['filter_chain_match'])['destination_port'])['value'];
    return v === undefined ? undefined : Number(v);
  };
  const exact = chains.filter((c) => portOf(c) === destination.port);
  const byPort = exact.length > 0 ? exact : chains.filter((c) => portOf(c) === undefined);
  // Within the port group, the longest prefix; if no prefix fits, the chains without prefixes.
  let best = -1;
  for (const c of byPort)
    best = Math.max(best, prefixMatch(rec(c['filter_chain_match']), destination.address));
  // Envoy matches the port first and does not fall back to port-less chains when the port's
  // group has no chain for the address: then there is no chain (the connection is closed).
  if (best < 0) return [];
  return byPort.filter(
    (c) => prefixMatch(rec(c['filter_chain_match']), destination.address) === best,
  );
}
