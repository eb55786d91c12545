/**
 * The default RBAC policy kube-apiserver creates on start
 * (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), reduced to
 * the resources this server serves: `cluster-admin`, the aggregated
 * user-facing roles `admin` ⊇ `edit` ⊇ `view` (filled by aggregation from
 * the `system:aggregate-to-*` roles, and from Palisade's roles for the Istio
 * and palisade.dev kinds), `system:discovery`, `system:basic-user`,
 * `system:public-info-viewer`, and their bindings. Objects are created when
 * absent and carry `rbac.authorization.kubernetes.io/autoupdate: "true"`.
 */
import type { KubeObject } from './store/types.js';

const RBAC = 'rbac.authorization.k8s.io/v1';
const BOOTSTRAP_LABELS = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const AUTOUPDATE = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };
const RW = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const RO = ['get', 'list', 'watch'];

function clusterRole(
  name: string,
  rules: readonly Record<string, unknown>[],
  extra: { labels?: Record<string, string>; aggregateFrom?: string } = {},
): KubeObject {
  return {
    apiVersion: RBAC,
    kind: 'ClusterRole',
    metadata: { name, labels: { ...BOOTSTRAP_LABELS, ...extra.labels }, annotations: AUTOUPDATE },
    ...(extra.aggregateFrom === undefined
      ? {}
      : {
          aggregationRule: {
            clusterRoleSelectors: [
              { matchLabels: { [`rbac.authorization.k8s.io/${extra.aggregateFrom}`]: 'true' } },
            ],
          },
        }),
    rules,
  };
}

function clusterBinding(name: string, role: string, groups: readonly string[]): KubeObject {
  return {
    apiVersion: RBAC,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: BOOTSTRAP_LABELS, annotations: AUTOUPDATE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: groups.map((g) => ({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Group',
      name: g,
    })),
  };
}

const core = (resources: string[], verbs: string[]): Record<string, unknown> => ({
  apiGroups: [''],
  resources,
  verbs,
});

/** The bootstrap ClusterRoles and ClusterRoleBindings. */
export function bootstrapPolicy(): KubeObject[] {
  const aggregateToView = (n: string): Record<string, string> => ({
    [`rbac.authorization.k8s.io/aggregate-to-${n}`]: 'true',
  });
  return [
    clusterRole('cluster-admin', [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]),
    clusterRole('admin', [], { aggregateFrom: 'aggregate-to-admin' }),
    clusterRole('edit', [], {
      aggregateFrom: 'aggregate-to-edit',
      labels: aggregateToView('admin'),
    }),
    clusterRole('view', [], {
      aggregateFrom: 'aggregate-to-view',
      labels: aggregateToView('edit'),
    }),
    clusterRole(
      'system:aggregate-to-admin',
      [
        {
          apiGroups: ['rbac.authorization.k8s.io'],
          resources: ['roles', 'rolebindings'],
          verbs: [...RW, ...RO],
        },
        {
          apiGroups: ['authorization.k8s.io'],
          resources: ['localsubjectaccessreviews'],
          verbs: ['create'],
        },
        core(['resourcequotas'], RW),
      ],
      { labels: aggregateToView('admin') },
    ),
    clusterRole(
      'system:aggregate-to-edit',
      [
        core(['pods', 'services', 'configmaps', 'secrets', 'serviceaccounts', 'endpoints'], RW),
        core(['serviceaccounts'], ['impersonate']),
        core(['serviceaccounts/token'], ['create']),
        core(['secrets'], RO),
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: RW },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: RW },
      ],
      { labels: aggregateToView('edit') },
    ),
    clusterRole(
      'system:aggregate-to-view',
      [
        core(
          [
            'pods',
            'pods/status',
            'services',
            'services/status',
            'configmaps',
            'endpoints',
            'serviceaccounts',
            'resourcequotas',
            'resourcequotas/status',
          ],
          RO,
        ),
        core(['namespaces', 'namespaces/status'], RO),
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: RO },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: RO },
      ],
      { labels: aggregateToView('view') },
    ),
    clusterRole(
      'palisade:aggregate-to-edit',
      [
        {
          apiGroups: ['networking.istio.io', 'security.istio.io', 'palisade.dev'],
          resources: ['*'],
          verbs: RW,
        },
      ],
      { labels: aggregateToView('edit') },
    ),
    clusterRole(
      'palisade:aggregate-to-view',
      [
        {
          apiGroups: ['networking.istio.io', 'security.istio.io', 'palisade.dev'],
          resources: ['*'],
          verbs: RO,
        },
      ],
      { labels: aggregateToView('view') },
    ),
    clusterRole('system:discovery', [
      {
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
        verbs: ['get'],
      },
    ]),
    clusterRole('system:public-info-viewer', [
      {
        nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'],
        verbs: ['get'],
      },
    ]),
    clusterRole('system:basic-user', [
      {
        apiGroups: ['authorization.k8s.io'],
        resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
        verbs: ['create'],
      },
      {
        apiGroups: ['authentication.k8s.io'],
        resources: ['selfsubjectreviews'],
        verbs: ['create'],
      },
    ]),
    clusterBinding('cluster-admin', 'cluster-admin', ['system:masters']),
    clusterBinding('system:discovery', 'system:discovery', ['system:authenticated']),
    clusterBinding('system:basic-user', 'system:basic-user', ['system:authenticated']),
    clusterBinding('system:public-info-viewer', 'system:public-info-viewer', [
      'system:authenticated',
      'system:unauthenticated',
    ]),
  ];
}
