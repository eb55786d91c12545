// Validation of the Kubernetes security kinds: schema problems (unknown
// fields, wrong types) and Kubernetes' own field errors, all reported at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatIssue } from '../validation.js';
import { validateK8sObject } from './index.js';

const issues = (o: unknown): string[] =>
  (validateK8sObject(o) ?? ['<not validated>']).map((i) =>
    typeof i === 'string' ? i : formatIssue(i),
  );

test('valid RBAC objects pass', () => {
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'r', creationTimestamp: null },
      rules: [
        { verbs: ['get'], apiGroups: [''], resources: ['pods'] },
        { verbs: ['get'], nonResourceURLs: ['/healthz'] },
      ],
    }),
    [],
  );
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'b', namespace: 'n' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'r' },
      subjects: [{ kind: 'ServiceAccount', name: 'sa' }],
    }),
    [],
  );
});

test('policy rules get Kubernetes field errors', () => {
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r', namespace: 'n' },
      rules: [
        { verbs: [], resources: ['pods'] },
        { verbs: ['get'], nonResourceURLs: ['/x'], resources: ['pods'] },
      ],
    }),
    [
      'rules[0].verbs: Required value: verbs must contain at least one value',
      'rules[0].apiGroups: Required value: resource rules must supply at least one api group',
      'rules[1].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to non-resource URLs',
      'rules[1].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs',
    ],
  );
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r' },
      rules: [],
    }),
    ['metadata.namespace: Required value'],
  );
});

test('bindings: roleRef and subjects', () => {
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'b' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'r' },
      subjects: [
        { kind: 'ServiceAccount', name: 'sa' },
        { kind: 'User', name: 'u' },
        { kind: 'Robot', name: 'x' },
        { kind: 'ServiceAccount', name: 'Bad_Name', namespace: 'n' },
      ],
    }),
    [
      'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
      'subjects[0].namespace: Required value',
      'subjects[1].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
      'subjects[2].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
      "subjects[3].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    ],
  );
});

test('unknown fields and wrong types are rejected with their paths', () => {
  assert.deepEqual(
    issues({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'r' },
      rules: [{ verbs: 'get', verb: ['x'] }],
    }),
    ['rules[0].verb: unknown field (not supported by this kind)', 'rules[0].verbs: must be array'],
  );
});

test('NetworkPolicy field errors', () => {
  const np = (spec: unknown) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'p', namespace: 'n' },
    spec,
  });
  assert.deepEqual(
    issues(
      np({
        podSelector: {},
        ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80, endPort: 90 }] }],
      }),
    ),
    [],
  );
  assert.deepEqual(
    issues(
      np({
        podSelector: {},
        ingress: [
          {
            from: [
              {},
              {
                ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24', 'nope'] },
                podSelector: {},
              },
            ],
            ports: [
              { port: 0 },
              { port: 'http', endPort: 90 },
              { port: 90, endPort: 80 },
              { port: 'Not_A_Name' },
            ],
          },
        ],
      }),
    ),
    [
      'spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
      'spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric',
      'spec.ingress[0].ports[2].endPort: Invalid value: 80: must be greater than or equal to `port`',
      'spec.ingress[0].ports[3].port: Invalid value: "Not_A_Name": must be a valid IANA_SVC_NAME (at most 15 characters, lowercase alphanumeric or -, at least one letter)',
      'spec.ingress[0].from[0]: Required value: must specify a peer',
      'spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer',
      'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`',
      'spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ],
  );
  assert.deepEqual(issues(np({ podSelector: {}, policyTypes: ['Sideways'] })).length > 0, true);
});

test('pods accept fields Palisade does not model', () => {
  assert.deepEqual(
    issues({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', uid: 'x' },
      spec: {
        containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: '1' } } }],
        dnsPolicy: 'ClusterFirst',
      },
      status: { phase: 'Running' },
    }),
    [],
  );
  assert.deepEqual(issues({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: {} }), [
    'spec.containers: required field is missing',
  ]);
  assert.equal(validateK8sObject({ apiVersion: 'v1', kind: 'Service' }), undefined);
});

test('property: validation never throws on arbitrary JSON shaped like the kinds', () => {
  const kinds = [
    ['rbac.authorization.k8s.io/v1', 'Role'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
    ['v1', 'Pod'],
    ['apps/v1', 'Deployment'],
  ] as const;
  fc.assert(
    fc.property(
      fc.constantFrom(...kinds),
      fc.jsonValue(),
      fc.jsonValue(),
      ([apiVersion, kind], spec, rules) => {
        const out = validateK8sObject({
          apiVersion,
          kind,
          metadata: { name: 'x', namespace: 'n' },
          spec,
          rules,
          roleRef: spec,
          subjects: rules,
        });
        return Array.isArray(out);
      },
    ),
    { numRuns: 500 },
  );
});
