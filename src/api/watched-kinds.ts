/**
 * The kinds the control plane reads from a Kubernetes API (`--kubeconfig`)
 * and `palisade apply` writes there: every kind `--config-dir` reads that a
 * Kubernetes API serves. In the API area (not beside the control plane's
 * api-source.ts) so the CLI and the runtime use the list without loading
 * @kubernetes/client-node.
 */
/** A kind the mesh reads, with the versions to try in order (first one served wins). */
export interface WatchedKind {
  readonly group: string;
  readonly versions: readonly string[];
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const k = (
  group: string,
  versions: readonly string[],
  kind: string,
  plural: string,
  namespaced = true,
): WatchedKind => ({ group, versions, kind, plural, namespaced });
const ISTIO = ['v1', 'v1beta1', 'v1alpha3'];

/**
 * Every kind `--config-dir` reads that a Kubernetes API serves: the Istio
 * networking and security kinds, the core kinds of the registry, RBAC and
 * NetworkPolicy (the analyzers and `auth`/`check netpol` read them) and
 * Palisade's Workloads.
 */
export const WATCHED_KINDS: readonly WatchedKind[] = [
  k('', ['v1'], 'Namespace', 'namespaces', false),
  k('', ['v1'], 'Service', 'services'),
  k('', ['v1'], 'ServiceAccount', 'serviceaccounts'),
  k('', ['v1'], 'Secret', 'secrets'),
  k('', ['v1'], 'Pod', 'pods'),
  k('networking.istio.io', ISTIO, 'VirtualService', 'virtualservices'),
  k('networking.istio.io', ISTIO, 'DestinationRule', 'destinationrules'),
  k('networking.istio.io', ISTIO, 'Gateway', 'gateways'),
  k('networking.istio.io', ISTIO, 'ServiceEntry', 'serviceentries'),
  k('networking.istio.io', ISTIO, 'Sidecar', 'sidecars'),
  k('networking.istio.io', ISTIO, 'WorkloadEntry', 'workloadentries'),
  k('security.istio.io', ['v1', 'v1beta1'], 'AuthorizationPolicy', 'authorizationpolicies'),
  k('security.istio.io', ['v1', 'v1beta1'], 'PeerAuthentication', 'peerauthentications'),
  k('security.istio.io', ['v1', 'v1beta1'], 'RequestAuthentication', 'requestauthentications'),
  k('rbac.authorization.k8s.io', ['v1'], 'Role', 'roles'),
  k('rbac.authorization.k8s.io', ['v1'], 'ClusterRole', 'clusterroles', false),
  k('rbac.authorization.k8s.io', ['v1'], 'RoleBinding', 'rolebindings'),
  k('rbac.authorization.k8s.io', ['v1'], 'ClusterRoleBinding', 'clusterrolebindings', false),
  k('networking.k8s.io', ['v1'], 'NetworkPolicy', 'networkpolicies'),
  k('palisade.dev', ['v1alpha1'], 'Workload', 'workloads'),
];

/** `/api/v1` or `/apis/GROUP/VERSION`. */
export function basePath(kind: { readonly group: string }, version: string): string {
  return kind.group === '' ? `/api/${version}` : `/apis/${kind.group}/${version}`;
}

/** The metadata fields the mesh keeps from an API object. */
export interface ApiMetadata {
  readonly name?: string;
  readonly namespace?: string;
  readonly labels?: unknown;
  readonly annotations?: unknown;
}

/**
 * The object as the validator reads it: list items carry no apiVersion/kind
 * (Kubernetes omits them), and server-set metadata (uid, resourceVersion,
 * managedFields, …) and `status` are not part of the desired state.
 */
export function asManifestObject(
  kind: WatchedKind,
  version: string,
  o: { metadata?: ApiMetadata },
): unknown {
  const { metadata, ...rest } = o as { metadata?: ApiMetadata } & Record<string, unknown>;
  delete rest['status'];
  const m: ApiMetadata = metadata ?? {};
  return {
    ...rest,
    apiVersion: kind.group === '' ? version : `${kind.group}/${version}`,
    kind: kind.kind,
    metadata: {
      name: m.name,
      ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
      ...(m.labels === undefined ? {} : { labels: m.labels }),
      ...(m.annotations === undefined ? {} : { annotations: m.annotations }),
    },
  };
}
