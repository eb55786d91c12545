/**
 * Envoy's first two filter-chain match steps for a captured connection
 * (destination port, then the longest `prefix_ranges` match on the original
 * destination address), used by the virtual outbound listener on its compiled
 * chains (capture-config.ts).
 */
import { addressBits, type AddressBits } from './address-bits.js';
import type { CaptureChain } from './capture-config.js';
import type { OriginalDestination } from './original-dst.js';

/** Length of the longest prefix containing `target`; -1 when none; 0 when the chain has none. */
function prefixMatch(chain: CaptureChain, target: AddressBits | undefined): number {
  if (chain.prefixes.length === 0) return 0;
  if (target === undefined) return -1;
  let best = -1;
  for (const range of chain.prefixes) {
    if (range.bits !== target.bits) continue;
    const shift = BigInt(range.bits - range.len);
    if (range.value >> shift === target.value >> shift && range.len > best) best = range.len;
  }
  return best;
}

/** The chains that fit a destination best on port and address (Envoy's first two match steps). */
export function candidateChains(
  chains: readonly CaptureChain[],
  destination: OriginalDestination,
): CaptureChain[] {
  const exact = chains.filter((c) => c.port === destination.port);
  const byPort = exact.length > 0 ? exact : chains.filter((c) => c.port === undefined);
  const target = addressBits(destination.address);
  // Within the port group, the longest prefix; if no prefix fits, the chains without prefixes.
  let best = -1;
  for (const c of byPort) best = Math.max(best, prefixMatch(c, target));
  // Envoy matches the port first and does not fall back to port-less chains when the port's
  // group has no chain for the address: then there is no chain (the connection is closed).
  if (best < 0) return [];
  return byPort.filter((c) => prefixMatch(c, target) === best);
}
