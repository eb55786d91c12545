/**
 * The resources the API server serves, as discovery lists them
 * (metav1.APIResource): group, version, kind, plural, namespaced, verbs,
 * short names. Core `v1`, the Kubernetes groups Palisade reads, the Istio
 * kinds and `palisade.dev`.
 */

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  /** The preferred (and storage) version. */
  readonly version: string;
  /** Further versions served with the same schema (Istio's v1beta1, v1alpha3). */
  readonly alsoVersions?: readonly string[];
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  /** Virtual resources accept only `create` and keep nothing (reviews). */
  readonly virtual?: boolean;
  readonly categories?: readonly string[];
  /** Subresources served: `status`, `token`. */
  readonly subresources?: readonly string[];
}

const STORED_VERBS = [
  'create',
  'delete',
  'deletecollection',
  'get',
  'list',
  'patch',
  'update',
  'watch',
];

function r(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<ResourceType> = {},
): ResourceType {
  return { group, version, kind, plural, singular: kind.toLowerCase(), namespaced, ...extra };
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  r('', 'v1', 'Namespace', 'namespaces', false, {
    shortNames: ['ns'],
    subresources: ['status', 'finalize'],
  }),
  r('', 'v1', 'Service', 'services', true, {
    shortNames: ['svc'],
    categories: ['all'],
    subresources: ['status'],
  }),
  r('', 'v1', 'ServiceAccount', 'serviceaccounts', true, {
    shortNames: ['sa'],
    subresources: ['token'],
  }),
  r('', 'v1', 'Secret', 'secrets', true),
  r('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  r('', 'v1', 'Pod', 'pods', true, {
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status'],
  }),
  r('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'], singular: 'endpoints' }),
  r('', 'v1', 'ResourceQuota', 'resourcequotas', true, {
    shortNames: ['quota'],
    subresources: ['status'],
  }),
  r('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  r('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  r('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  r('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  r('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  r('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, {
    shortNames: ['netpol'],
  }),
  r('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, {
    virtual: true,
  }),
  r('authorization.k8s.io', 'v1', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', false, {
    virtual: true,
  }),
  r('authorization.k8s.io', 'v1', 'SubjectAccessReview', 'subjectaccessreviews', false, {
    virtual: true,
  }),
  r('authorization.k8s.io', 'v1', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true, {
    virtual: true,
  }),
  r('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false, { virtual: true }),
  r('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', false, {
    virtual: true,
  }),
  r(
    'admissionregistration.k8s.io',
    'v1',
    'MutatingWebhookConfiguration',
    'mutatingwebhookconfigurations',
    false,
  ),
  r(
    'admissionregistration.k8s.io',
    'v1',
    'ValidatingWebhookConfiguration',
    'validatingwebhookconfigurations',
    false,
  ),
  r('networking.istio.io', 'v1', 'VirtualService', 'virtualservices', true, {
    shortNames: ['vs'],
    categories: ['istio-io', 'networking-istio-io'],
    alsoVersions: ['v1beta1', 'v1alpha3'],
  }),
  r('networking.istio.io', 'v1', 'DestinationRule', 'destinationrules', true, {
    shortNames: ['dr'],
    categories: ['istio-io', 'networking-istio-io'],
    alsoVersions: ['v1beta1', 'v1alpha3'],
  }),
  r('networking.istio.io', 'v1', 'Gateway', 'gateways', true, {
    shortNames: ['gw'],
    categories: ['istio-io', 'networking-istio-io'],
    alsoVersions: ['v1beta1', 'v1alpha3'],
  }),
  r('networking.istio.io', 'v1', 'ServiceEntry', 'serviceentries', true, {
    shortNames: ['se'],
    categories: ['istio-io', 'networking-istio-io'],
    alsoVersions: ['v1beta1', 'v1alpha3'],
  }),
  r('networking.istio.io', 'v1', 'Sidecar', 'sidecars', true, {
    categories: ['istio-io', 'networking-istio-io'],
    alsoVersions: ['v1beta1', 'v1alpha3'],
  }),
  r('security.istio.io', 'v1', 'AuthorizationPolicy', 'authorizationpolicies', true, {
    shortNames: ['ap'],
    categories: ['istio-io', 'security-istio-io'],
    alsoVersions: ['v1beta1'],
  }),
  r('security.istio.io', 'v1', 'PeerAuthentication', 'peerauthentications', true, {
    shortNames: ['pa'],
    categories: ['istio-io', 'security-istio-io'],
    alsoVersions: ['v1beta1'],
  }),
  r('security.istio.io', 'v1', 'RequestAuthentication', 'requestauthentications', true, {
    shortNames: ['ra'],
    categories: ['istio-io', 'security-istio-io'],
    alsoVersions: ['v1beta1'],
  }),
  r('palisade.dev', 'v1alpha1', 'Workload', 'workloads', true),
  r('palisade.dev', 'v1alpha1', 'MeshConfig', 'meshconfigs', false),
];

/** The verbs discovery lists for a resource. */
export function verbsOf(t: ResourceType): string[] {
  return t.virtual === true ? ['create'] : STORED_VERBS;
}

/** `pods`, or `deployments.apps` for other groups (the `qualifiedResource` in messages). */
export function qualifiedResource(t: { group: string; plural: string }): string {
  return t.group === '' ? t.plural : `${t.plural}.${t.group}`;
}

/** The group/version string: `v1` or `rbac.authorization.k8s.io/v1`. */
export function groupVersion(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

/** Every version a resource is served at, preferred first. */
export function versionsOf(t: ResourceType): readonly string[] {
  return [t.version, ...(t.alsoVersions ?? [])];
}

/** Finds a resource type by group, version and plural. */
export function findResource(
  group: string,
  version: string,
  plural: string,
): ResourceType | undefined {
  return RESOURCE_TYPES.find(
    (t) => t.group === group && t.plural === plural && versionsOf(t).includes(version),
  );
}

/** Finds a resource type by apiVersion and kind (for objects in request bodies). */
export function findKind(apiVersion: string, kind: string): ResourceType | undefined {
  const slash = apiVersion.lastIndexOf('/');
  const group = slash === -1 ? '' : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  return RESOURCE_TYPES.find(
    (t) => t.group === group && t.kind === kind && versionsOf(t).includes(version),
  );
}

/** The groups served other than core, each with its versions, in discovery order. */
export function apiGroups(): { name: string; versions: string[] }[] {
  const groups = new Map<string, Set<string>>();
  for (const t of RESOURCE_TYPES) {
    if (t.group === '') continue;
    let v = groups.get(t.group);
    if (v === undefined) groups.set(t.group, (v = new Set()));
    for (const ver of versionsOf(t)) v.add(ver);
  }
  return [...groups].map(([name, versions]) => ({ name, versions: [...versions] }));
}

/** The storage key of an object: `/registry/<group|core>/<plural>/[<namespace>/]<name>`. */
export function storageKey(t: ResourceType, namespace: string | undefined, name: string): string {
  return `${storagePrefix(t, namespace)}${name}`;
}

/** The key prefix of a list: every namespace when `namespace` is undefined. */
export function storagePrefix(t: ResourceType, namespace: string | undefined): string {
  const base = `/registry/${t.group === '' ? 'core' : t.group}/${t.plural}/`;
  return t.namespaced && namespace !== undefined ? `${base}${namespace}/` : base;
}
