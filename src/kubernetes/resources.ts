/**
 * What kubectl learns from API discovery, for the common built-in resources:
 * the API group of a plural resource name and whether it is cluster-scoped.
 * `palisade auth can-i` works without a cluster, so it uses this table;
 * `resource.group` (e.g. `deployments.apps`) names the group explicitly.
 */

const GROUPS: Readonly<Record<string, string>> = {
  pods: '',
  services: '',
  endpoints: '',
  configmaps: '',
  secrets: '',
  serviceaccounts: '',
  namespaces: '',
  nodes: '',
  persistentvolumes: '',
  persistentvolumeclaims: '',
  events: '',
  limitranges: '',
  resourcequotas: '',
  replicationcontrollers: '',
  podtemplates: '',
  componentstatuses: '',
  bindings: '',
  deployments: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  replicasets: 'apps',
  controllerrevisions: 'apps',
  jobs: 'batch',
  cronjobs: 'batch',
  roles: 'rbac.authorization.k8s.io',
  clusterroles: 'rbac.authorization.k8s.io',
  rolebindings: 'rbac.authorization.k8s.io',
  clusterrolebindings: 'rbac.authorization.k8s.io',
  networkpolicies: 'networking.k8s.io',
  ingresses: 'networking.k8s.io',
  ingressclasses: 'networking.k8s.io',
  poddisruptionbudgets: 'policy',
  horizontalpodautoscalers: 'autoscaling',
  customresourcedefinitions: 'apiextensions.k8s.io',
  storageclasses: 'storage.k8s.io',
  csidrivers: 'storage.k8s.io',
  volumeattachments: 'storage.k8s.io',
  certificatesigningrequests: 'certificates.k8s.io',
  leases: 'coordination.k8s.io',
  priorityclasses: 'scheduling.k8s.io',
  runtimeclasses: 'node.k8s.io',
  mutatingwebhookconfigurations: 'admissionregistration.k8s.io',
  validatingwebhookconfigurations: 'admissionregistration.k8s.io',
  tokenreviews: 'authentication.k8s.io',
  subjectaccessreviews: 'authorization.k8s.io',
  selfsubjectaccessreviews: 'authorization.k8s.io',
  endpointslices: 'discovery.k8s.io',
  virtualservices: 'networking.istio.io',
  destinationrules: 'networking.istio.io',
  gateways: 'networking.istio.io',
  serviceentries: 'networking.istio.io',
  sidecars: 'networking.istio.io',
  workloadentries: 'networking.istio.io',
  authorizationpolicies: 'security.istio.io',
  peerauthentications: 'security.istio.io',
  requestauthentications: 'security.istio.io',
};

const CLUSTER_SCOPED = new Set([
  'namespaces',
  'nodes',
  'persistentvolumes',
  'componentstatuses',
  'clusterroles',
  'clusterrolebindings',
  'customresourcedefinitions',
  'storageclasses',
  'csidrivers',
  'volumeattachments',
  'certificatesigningrequests',
  'priorityclasses',
  'runtimeclasses',
  'ingressclasses',
  'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations',
  'tokenreviews',
  'subjectaccessreviews',
  'selfsubjectaccessreviews',
]);

/** Splits `deployments.apps` into resource and group; a bare known name takes its group. */
export function resolveResource(text: string): {
  resource: string;
  apiGroup: string;
  clusterScoped: boolean;
} {
  const lower = text.toLowerCase();
  const dot = lower.indexOf('.');
  const resource = dot < 0 ? lower : lower.slice(0, dot);
  const known = Object.hasOwn(GROUPS, resource) ? GROUPS[resource] : undefined;
  const apiGroup = dot < 0 ? (known ?? '') : lower.slice(dot + 1);
  return { resource, apiGroup, clusterScoped: CLUSTER_SCOPED.has(resource) };
}
