/**
 * The Envoy node id, a contract between processes: built by the runtime (and
 * operators, `palisade proxy --node-id`), parsed by the control plane (proxy
 * type and IP), the proxy (its instance IP and workload name) and the CLI
 * (`palisade proxy-status`). Istio's form (pilot/pkg/model/context.go
 * `ParseServiceNodeWithMetadata`): `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`,
 * type `sidecar` or `router`.
 */

/** The parts of a node id. */
export interface NodeId {
  /** `sidecar` or `router` (a gateway), as Istio's NodeType. */
  readonly type: string;
  readonly ip: string;
  /** `<pod>.<namespace>`: Istio's "ID" part. */
  readonly id: string;
  /** `<namespace>.svc.<domain>`. */
  readonly domain: string;
}

/** Builds `sidecar~<ip>~<name>.<ns>~<ns>.svc.cluster.local` (or another type/domain). */
export function formatNodeId(parts: {
  readonly type?: string;
  readonly ip: string;
  readonly name: string;
  readonly namespace: string;
  readonly clusterDomain?: string;
}): string {
  const domain = `${parts.namespace}.svc.${parts.clusterDomain ?? 'cluster.local'}`;
  return `${parts.type ?? 'sidecar'}~${parts.ip}~${parts.name}.${parts.namespace}~${domain}`;
}

/** The parts of `id`; missing parts are empty strings (a bare name is its own `id`). */
export function parseNodeId(id: string): NodeId {
  const parts = id.split('~');
  if (parts.length < 3) return { type: '', ip: '', id, domain: '' };
  return {
    type: parts[0] ?? '',
    ip: parts[1] ?? '',
    id: parts[2] ?? '',
    domain: parts.slice(3).join('~'),
  };
}

/** The workload (pod) name of a node id: the `id` part up to its first dot. */
export function nodeWorkloadName(node: NodeId): string {
  return node.id.split('.')[0] ?? node.id;
}
