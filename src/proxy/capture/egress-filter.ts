/**
 * The network RBAC filters ahead of a virtualOutbound chain's terminal filter
 * (the control plane puts the pod's egress NetworkPolicy there, see
 * src/control/compiler/egress-network-policy.ts), evaluated on the captured
 * connection's original destination as Envoy's RBAC network filter evaluates
 * `destination_ip` / `destination_port` behind the original_dst listener
 * filter — by the same evaluator the inbound chains use, compiled with the
 * listener (capture-config.ts). A denial resets the connection before any
 * upstream is dialled.
 */
import type { CaptureChain } from './capture-config.js';
import type { OriginalDestination } from './original-dst.js';

/**
 * Undefined when the RBAC filters of every candidate chain let the destination
 * through; else the reason.
 */
export async function egressDenied(
  chains: readonly CaptureChain[],
  destination: OriginalDestination,
): Promise<string | undefined> {
  for (const chain of chains) {
    if (chain.egress === null) continue;
    const decision = await chain.egress.decide({
      principal: null,
      destinationIp: destination.address,
      destinationPort: destination.port,
      protocol: 'tcp',
    });
    if (decision.decision === 'DENY') return decision.reason;
  }
  return undefined;
}
