/**
 * TypeBox schemas for the Kubernetes security kinds Palisade reads:
 * Role, ClusterRole, RoleBinding, ClusterRoleBinding (rbac.authorization.k8s.io/v1),
 * NetworkPolicy (networking.k8s.io/v1), and Pod plus the pod-template
 * workload kinds. RBAC and NetworkPolicy are strict (unknown fields are
 * rejected: they are security fields). Pod schemas type what Palisade uses
 * and accept the rest of a real manifest, because Pod Security must see
 * fields Palisade does not model.
 *
 * Field names and types follow the Kubernetes API reference
 * (https://kubernetes.io/docs/reference/kubernetes-api/).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const open = { additionalProperties: true } as const;

const StringMap = Type.Record(Type.String(), Type.String());

/** ObjectMeta with the fields authorization and policy read; others (uid, managedFields…) pass. */
export const ObjectMetaSchema = Type.Object(
  {
    name: Type.Optional(Type.String()),
    generateName: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String()),
    labels: Type.Optional(StringMap),
    annotations: Type.Optional(StringMap),
  },
  open,
);

export const LabelSelectorSchema = Type.Object(
  {
    matchLabels: Type.Optional(StringMap),
    matchExpressions: Type.Optional(
      Type.Array(
        Type.Object(
          {
            key: Type.String({ minLength: 1 }),
            operator: Type.Union([
              Type.Literal('In'),
              Type.Literal('NotIn'),
              Type.Literal('Exists'),
              Type.Literal('DoesNotExist'),
            ]),
            values: Type.Optional(Type.Array(Type.String())),
          },
          strict,
        ),
      ),
    ),
  },
  strict,
);

// --- RBAC -------------------------------------------------------------------

export const PolicyRuleSchema = Type.Object(
  {
    verbs: Type.Array(Type.String()),
    apiGroups: Type.Optional(Type.Array(Type.String())),
    resources: Type.Optional(Type.Array(Type.String())),
    resourceNames: Type.Optional(Type.Array(Type.String())),
    nonResourceURLs: Type.Optional(Type.Array(Type.String())),
  },
  strict,
);

const rbacHeader = (kind: string): { apiVersion: TSchema; kind: TSchema } => ({
  apiVersion: Type.Literal('rbac.authorization.k8s.io/v1'),
  kind: Type.Literal(kind),
});

export const RoleSchema = Type.Object(
  {
    ...rbacHeader('Role'),
    metadata: ObjectMetaSchema,
    rules: Type.Optional(Type.Array(PolicyRuleSchema)),
  },
  strict,
);

export const ClusterRoleSchema = Type.Object(
  {
    ...rbacHeader('ClusterRole'),
    metadata: ObjectMetaSchema,
    rules: Type.Optional(Type.Array(PolicyRuleSchema)),
    aggregationRule: Type.Optional(
      Type.Object({ clusterRoleSelectors: Type.Optional(Type.Array(LabelSelectorSchema)) }, strict),
    ),
  },
  strict,
);

export const SubjectSchema = Type.Object(
  {
    kind: Type.String(),
    name: Type.String(),
    namespace: Type.Optional(Type.String()),
    apiGroup: Type.Optional(Type.String()),
  },
  strict,
);

export const RoleRefSchema = Type.Object(
  { apiGroup: Type.String(), kind: Type.String(), name: Type.String() },
  strict,
);

export const RoleBindingSchema = Type.Object(
  {
    ...rbacHeader('RoleBinding'),
    metadata: ObjectMetaSchema,
    roleRef: RoleRefSchema,
    subjects: Type.Optional(Type.Array(SubjectSchema)),
  },
  strict,
);

export const ClusterRoleBindingSchema = Type.Object(
  {
    ...rbacHeader('ClusterRoleBinding'),
    metadata: ObjectMetaSchema,
    roleRef: RoleRefSchema,
    subjects: Type.Optional(Type.Array(SubjectSchema)),
  },
  strict,
);

// --- NetworkPolicy ----------------------------------------------------------

const IntOrString = Type.Union([Type.Integer(), Type.String()]);

export const NetworkPolicyPortSchema = Type.Object(
  {
    protocol: Type.Optional(
      Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')]),
    ),
    port: Type.Optional(IntOrString),
    endPort: Type.Optional(Type.Integer()),
  },
  strict,
);

export const NetworkPolicyPeerSchema = Type.Object(
  {
    podSelector: Type.Optional(LabelSelectorSchema),
    namespaceSelector: Type.Optional(LabelSelectorSchema),
    ipBlock: Type.Optional(
      Type.Object(
        { cidr: Type.String(), except: Type.Optional(Type.Array(Type.String())) },
        strict,
      ),
    ),
  },
  strict,
);

const PeerList = Type.Optional(Type.Array(NetworkPolicyPeerSchema));
const PortList = Type.Optional(Type.Array(NetworkPolicyPortSchema));

export const NetworkPolicySchema = Type.Object(
  {
    apiVersion: Type.Literal('networking.k8s.io/v1'),
    kind: Type.Literal('NetworkPolicy'),
    metadata: ObjectMetaSchema,
    spec: Type.Object(
      {
        podSelector: LabelSelectorSchema,
        policyTypes: Type.Optional(
          Type.Array(Type.Union([Type.Literal('Ingress'), Type.Literal('Egress')])),
        ),
        ingress: Type.Optional(
          Type.Array(Type.Object({ from: PeerList, ports: PortList }, strict)),
        ),
        egress: Type.Optional(Type.Array(Type.Object({ to: PeerList, ports: PortList }, strict))),
      },
      strict,
    ),
    status: Type.Optional(Type.Unknown()),
  },
  strict,
);

// --- AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1) -------------
// kubernetes-sigs/network-policy-api apis/v1alpha1: field names and enums as
// the CRDs define them; "exactly one of" and ranges are checked in validate.ts.

const Protocol = Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')]);

export const NamespacedPodSchema = Type.Object(
  { namespaceSelector: LabelSelectorSchema, podSelector: LabelSelectorSchema },
  strict,
);

export const AdminNetworkPolicySubjectSchema = Type.Object(
  {
    namespaces: Type.Optional(LabelSelectorSchema),
    pods: Type.Optional(NamespacedPodSchema),
  },
  strict,
);

export const AdminNetworkPolicyPortSchema = Type.Object(
  {
    portNumber: Type.Optional(
      Type.Object({ protocol: Type.Optional(Protocol), port: Type.Integer() }, strict),
    ),
    namedPort: Type.Optional(Type.String()),
    portRange: Type.Optional(
      Type.Object(
        { protocol: Type.Optional(Protocol), start: Type.Integer(), end: Type.Integer() },
        strict,
      ),
    ),
  },
  strict,
);

const AdminIngressPeerSchema = Type.Object(
  {
    namespaces: Type.Optional(LabelSelectorSchema),
    pods: Type.Optional(NamespacedPodSchema),
  },
  strict,
);

const AdminEgressPeerSchema = Type.Object(
  {
    namespaces: Type.Optional(LabelSelectorSchema),
    pods: Type.Optional(NamespacedPodSchema),
    nodes: Type.Optional(LabelSelectorSchema),
    networks: Type.Optional(Type.Array(Type.String())),
    domainNames: Type.Optional(Type.Array(Type.String())),
  },
  strict,
);

function adminRules(
  actions: readonly string[],
  peersKey: 'from' | 'to',
  peer: typeof AdminEgressPeerSchema | typeof AdminIngressPeerSchema,
) {
  return Type.Optional(
    Type.Array(
      Type.Object(
        {
          name: Type.Optional(Type.String()),
          action: Type.Union(actions.map((a) => Type.Literal(a))),
          [peersKey]: Type.Array(peer),
          ports: Type.Optional(Type.Array(AdminNetworkPolicyPortSchema)),
        },
        strict,
      ),
    ),
  );
}

const ADMIN_GROUP_VERSION = 'policy.networking.k8s.io/v1alpha1';

export const AdminNetworkPolicySchema = Type.Object(
  {
    apiVersion: Type.Literal(ADMIN_GROUP_VERSION),
    kind: Type.Literal('AdminNetworkPolicy'),
    metadata: ObjectMetaSchema,
    spec: Type.Object(
      {
        priority: Type.Integer(),
        subject: AdminNetworkPolicySubjectSchema,
        ingress: adminRules(['Allow', 'Deny', 'Pass'], 'from', AdminIngressPeerSchema),
        egress: adminRules(['Allow', 'Deny', 'Pass'], 'to', AdminEgressPeerSchema),
      },
      strict,
    ),
    status: Type.Optional(Type.Unknown()),
  },
  strict,
);

export const BaselineAdminNetworkPolicySchema = Type.Object(
  {
    apiVersion: Type.Literal(ADMIN_GROUP_VERSION),
    kind: Type.Literal('BaselineAdminNetworkPolicy'),
    metadata: ObjectMetaSchema,
    spec: Type.Object(
      {
        subject: AdminNetworkPolicySubjectSchema,
        ingress: adminRules(['Allow', 'Deny'], 'from', AdminIngressPeerSchema),
        egress: adminRules(['Allow', 'Deny'], 'to', AdminEgressPeerSchema),
      },
      strict,
    ),
    status: Type.Optional(Type.Unknown()),
  },
  strict,
);

// --- Pods and workloads -----------------------------------------------------

export const ContainerPortSchema = Type.Object(
  {
    containerPort: Type.Integer(),
    name: Type.Optional(Type.String()),
    protocol: Type.Optional(Type.String()),
    hostPort: Type.Optional(Type.Integer()),
  },
  open,
);

export const ContainerSchema = Type.Object(
  {
    name: Type.String(),
    ports: Type.Optional(Type.Array(ContainerPortSchema)),
    securityContext: Type.Optional(Type.Object({}, open)),
  },
  open,
);

export const PodSpecSchema = Type.Object(
  {
    containers: Type.Array(ContainerSchema),
    initContainers: Type.Optional(Type.Array(ContainerSchema)),
    ephemeralContainers: Type.Optional(Type.Array(ContainerSchema)),
    securityContext: Type.Optional(Type.Object({}, open)),
    volumes: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, open))),
    serviceAccountName: Type.Optional(Type.String()),
  },
  open,
);

export const PodSchema = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('Pod'),
    metadata: ObjectMetaSchema,
    spec: PodSpecSchema,
    status: Type.Optional(
      Type.Object(
        {
          podIP: Type.Optional(Type.String()),
          podIPs: Type.Optional(Type.Array(Type.Object({ ip: Type.String() }, open))),
        },
        open,
      ),
    ),
  },
  open,
);

export const PodTemplateSpecSchema = Type.Object(
  { metadata: Type.Optional(ObjectMetaSchema), spec: PodSpecSchema },
  open,
);

const workload = (apiVersion: string, kind: string): TSchema =>
  Type.Object(
    {
      apiVersion: Type.Literal(apiVersion),
      kind: Type.Literal(kind),
      metadata: ObjectMetaSchema,
      spec: Type.Object({ template: PodTemplateSpecSchema }, open),
    },
    open,
  );

export const DeploymentSchema = workload('apps/v1', 'Deployment');
export const StatefulSetSchema = workload('apps/v1', 'StatefulSet');
export const DaemonSetSchema = workload('apps/v1', 'DaemonSet');
export const ReplicaSetSchema = workload('apps/v1', 'ReplicaSet');
export const JobSchema = workload('batch/v1', 'Job');
export const CronJobSchema = Type.Object(
  {
    apiVersion: Type.Literal('batch/v1'),
    kind: Type.Literal('CronJob'),
    metadata: ObjectMetaSchema,
    spec: Type.Object(
      {
        schedule: Type.String(),
        jobTemplate: Type.Object(
          { spec: Type.Object({ template: PodTemplateSpecSchema }, open) },
          open,
        ),
      },
      open,
    ),
  },
  open,
);

export type PolicyRuleObject = Static<typeof PolicyRuleSchema>;
export type RoleObject = Static<typeof RoleSchema>;
export type ClusterRoleObject = Static<typeof ClusterRoleSchema>;
export type RoleBindingObject = Static<typeof RoleBindingSchema>;
export type ClusterRoleBindingObject = Static<typeof ClusterRoleBindingSchema>;
export type NetworkPolicyObject = Static<typeof NetworkPolicySchema>;
export type AdminNetworkPolicyObject = Static<typeof AdminNetworkPolicySchema>;
export type BaselineAdminNetworkPolicyObject = Static<typeof BaselineAdminNetworkPolicySchema>;
export type PodObject = Static<typeof PodSchema>;
