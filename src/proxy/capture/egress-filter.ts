/**
 * The network RBAC filters ahead of a virtualOutbound chain's terminal filter
 * (the control plane puts the pod's egress NetworkPolicy there, see
 * src/control/compiler/egress-network-policy.ts), evaluated on the captured
 * connection's original destination as Envoy's RBAC network filter evaluates
 * `destination_ip` / `destination_port` behind the original_dst listener
 * filter — by the same evaluator the inbound chains use. A denial resets the
 * connection before any upstream is dialled.
 */
import { tcpPolicyEvaluator, type PolicyEvaluator } from '../filters/authz/index.js';
import type { OriginalDestination } from './original-dst.js';

type R = Record<string, unknown>;

const RBAC = 'envoy.filters.network.rbac';

/** Evaluators per chain object (chains are rebuilt with each listener update); null: no RBAC. */
const compiled = new WeakMap<object, PolicyEvaluator | null>();

function filtersOf(chain: R | undefined): R[] {
  const filters = chain?.['filters'];
  return Array.isArray(filters) ? (filters as R[]) : [];
}

function evaluatorOf(chain: R): PolicyEvaluator | null {
  const hit = compiled.get(chain);
  if (hit !== undefined) return hit;
  const rbac = filtersOf(chain).filter((f) => f['name'] === RBAC);
  const evaluator = rbac.length === 0 ? null : tcpPolicyEvaluator(rbac);
  compiled.set(chain, evaluator);
  return evaluator;
}

/** The chain's terminal filter (the one that serves the connection), after any RBAC filters. */
export function terminalFilter(chain: R | undefined): R | undefined {
  return filtersOf(chain).find((f) => f['name'] !== RBAC);
}

/** True when some candidate chain carries RBAC filters (the check is then needed). */
export function hasEgressFilters(chains: readonly R[]): boolean {
  return chains.some((c) => filtersOf(c).some((f) => f['name'] === RBAC));
}

/**
 * Undefined when the RBAC filters of every candidate chain let the destination
 * through; else the reason. An unusable filter denies (fail closed).
 */
export async function egressDenied(
  chains: readonly R[],
  destination: OriginalDestination,
): Promise<string | undefined> {
  for (const chain of chains) {
    let evaluator: PolicyEvaluator | null;
    try {
      evaluator = evaluatorOf(chain);
    } catch (error) {
      return `unusable RBAC filter (${String(error)})`;
    }
    if (evaluator === null) continue;
    const decision = await evaluator.decide({
      principal: null,
      destinationIp: destination.address,
      destinationPort: destination.port,
      protocol: 'tcp',
    });
    if (decision.decision === 'DENY') return decision.reason;
  }
  return undefined;
}
