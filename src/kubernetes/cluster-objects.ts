/**
 * Turns parsed manifests into the inputs of the Kubernetes security engines:
 * RBAC roles and bindings, namespaces (labels read from raw objects),
 * pods, pod templates and NetworkPolicies. Every RBAC, NetworkPolicy and
 * pod-bearing object is validated first; all problems are reported together
 * with file, object and field path, and nothing is used half-valid.
 */
import {
  describeObject,
  type Manifest,
  ValidationError,
  type ValidationIssue,
} from '../api/index.js';
import { validateK8sObject } from '../api/k8s/index.js';
import { readStringMap, type LabelSelector } from './labels/label-selector.js';
import type {
  ContainerPort,
  NetpolNamespace,
  NetpolPod,
  NetworkPolicy,
  NetworkPolicyRule,
} from './netpol/network-policy-engine.js';
import type {
  AdminAction,
  AdminNetworkPolicy,
  AdminPeer,
  AdminPort,
  AdminRule,
  AdminSubject,
  BaselineAdminNetworkPolicy,
} from './netpol/admin-network-policy.js';
import { podTemplateOf, type PodTemplateRef } from './podsecurity/index.js';
import type { PolicyRule, RbacBinding, RbacRole, RbacSubject } from './rbac/types.js';

/** A pod or workload with where it came from. */
export interface PodSource {
  readonly file: string;
  readonly kind: string;
  readonly name: string;
  /** The object's namespace, or undefined when the manifest has none. */
  readonly namespace: string | undefined;
  readonly template: PodTemplateRef;
  readonly object: unknown;
}

/** Every object the security engines read, plus the raw objects for audits. */
export interface ClusterObjects {
  readonly roles: RbacRole[];
  readonly bindings: RbacBinding[];
  readonly namespaces: NetpolNamespace[];
  readonly pods: NetpolPod[];
  readonly policies: NetworkPolicy[];
  readonly adminPolicies: AdminNetworkPolicy[];
  readonly baselinePolicies: BaselineAdminNetworkPolicy[];
  readonly podSources: PodSource[];
  /**
   * Objects of kinds no engine reads (`file: apiVersion Kind "name"`), so a
   * caller can warn instead of silently ignoring a policy it cannot apply.
   */
  readonly ignored: string[];
  readonly manifests: readonly Manifest[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strs = (v: unknown): string[] => list(v).filter((x): x is string => typeof x === 'string');
const optStrs = (v: unknown): string[] | undefined => (Array.isArray(v) ? strs(v) : undefined);

function rule(r: unknown): PolicyRule {
  const o = obj(r);
  const out: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = { verbs: strs(o['verbs']) };
  const g = optStrs(o['apiGroups']);
  if (g !== undefined) out.apiGroups = g;
  const res = optStrs(o['resources']);
  if (res !== undefined) out.resources = res;
  const names = optStrs(o['resourceNames']);
  if (names !== undefined) out.resourceNames = names;
  const urls = optStrs(o['nonResourceURLs']);
  if (urls !== undefined) out.nonResourceURLs = urls;
  return out;
}

function subject(s: unknown): RbacSubject {
  const o = obj(s);
  const ns = str(o['namespace']);
  return {
    kind: str(o['kind']),
    name: str(o['name']),
    ...(ns === '' ? {} : { namespace: ns }),
    apiGroup: str(o['apiGroup']),
  };
}

function selector(v: unknown): LabelSelector {
  const o = obj(v);
  return {
    matchLabels: readStringMap(o['matchLabels']),
    matchExpressions: list(o['matchExpressions']).map((e) => {
      const x = obj(e);
      return { key: str(x['key']), operator: str(x['operator']), values: strs(x['values']) };
    }),
  };
}

function netpolRules(v: unknown, peersKey: 'from' | 'to'): NetworkPolicyRule[] {
  return list(v).map((r) => {
    const o = obj(r);
    return {
      peers: list(o[peersKey]).map((p) => {
        const x = obj(p);
        return {
          ...(x['podSelector'] == null ? {} : { podSelector: selector(x['podSelector']) }),
          ...(x['namespaceSelector'] == null
            ? {}
            : { namespaceSelector: selector(x['namespaceSelector']) }),
          ...(x['ipBlock'] == null
            ? {}
            : {
                ipBlock: {
                  cidr: str(obj(x['ipBlock'])['cidr']),
                  except: strs(obj(x['ipBlock'])['except']),
                },
              }),
        };
      }),
      ports: list(o['ports']).map((p) => {
        const x = obj(p);
        const port = x['port'];
        const endPort = x['endPort'];
        return {
          protocol: str(x['protocol']) === '' ? 'TCP' : str(x['protocol']),
          ...(typeof port === 'number' || typeof port === 'string' ? { port } : {}),
          ...(typeof endPort === 'number' ? { endPort } : {}),
        };
      }),
    };
  });
}

function adminSubject(v: unknown): AdminSubject {
  const o = obj(v);
  return {
    ...(o['namespaces'] == null ? {} : { namespaces: selector(o['namespaces']) }),
    ...(o['pods'] == null
      ? {}
      : {
          pods: {
            namespaceSelector: selector(obj(o['pods'])['namespaceSelector']),
            podSelector: selector(obj(o['pods'])['podSelector']),
          },
        }),
  };
}

function adminPort(v: unknown): AdminPort {
  const o = obj(v);
  const proto = (x: Obj): string => (str(x['protocol']) === '' ? 'TCP' : str(x['protocol']));
  const num = o['portNumber'] == null ? undefined : obj(o['portNumber']);
  const range = o['portRange'] == null ? undefined : obj(o['portRange']);
  return {
    ...(num === undefined
      ? {}
      : { portNumber: { protocol: proto(num), port: Number(num['port']) } }),
    ...(typeof o['namedPort'] === 'string' ? { namedPort: o['namedPort'] } : {}),
    ...(range === undefined
      ? {}
      : {
          portRange: {
            protocol: proto(range),
            start: Number(range['start']),
            end: Number(range['end']),
          },
        }),
  };
}

function adminRules(v: unknown, peersKey: 'from' | 'to'): AdminRule[] {
  return list(v).map((r) => {
    const o = obj(r);
    return {
      name: str(o['name']),
      action: str(o['action']) as AdminAction,
      peers: list(o[peersKey]).map((p): AdminPeer => {
        const x = obj(p);
        return {
          ...(x['namespaces'] == null ? {} : { namespaces: selector(x['namespaces']) }),
          ...(x['pods'] == null
            ? {}
            : {
                pods: adminSubject({ pods: x['pods'] }).pods ?? {
                  namespaceSelector: {},
                  podSelector: {},
                },
              }),
          ...(x['networks'] == null ? {} : { networks: strs(x['networks']) }),
          ...(x['nodes'] == null ? {} : { nodes: selector(x['nodes']) }),
          ...(x['domainNames'] == null ? {} : { domainNames: strs(x['domainNames']) }),
        };
      }),
      ...(o['ports'] == null ? {} : { ports: list(o['ports']).map(adminPort) }),
    };
  });
}

/** Kinds the engines read besides pod-bearing workloads. */
const KNOWN_KINDS = new Set([
  'v1/Namespace',
  'rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/RoleBinding',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'networking.k8s.io/v1/NetworkPolicy',
  'policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy',
  'policy.networking.k8s.io/v1alpha1/BaselineAdminNetworkPolicy',
]);

function containerPorts(spec: unknown): ContainerPort[] {
  const out: ContainerPort[] = [];
  const s = obj(spec);
  for (const c of [...list(s['containers']), ...list(s['initContainers'])]) {
    for (const p of list(obj(c)['ports'])) {
      const x = obj(p);
      if (typeof x['containerPort'] !== 'number') continue;
      out.push({
        containerPort: x['containerPort'],
        protocol: str(x['protocol']) === '' ? 'TCP' : str(x['protocol']),
        ...(str(x['name']) === '' ? {} : { name: str(x['name']) }),
      });
    }
  }
  return out;
}

/** Options for {@link clusterObjectsFrom}. */
export interface ClusterObjectsOptions {
  /** Namespace for namespaced objects that have none (kubectl's `default`). */
  readonly defaultNamespace?: string;
  /**
   * Validate Pods and pod templates (default true). NetworkPolicy checks turn
   * this off: they read only a pod's labels, IP and container ports, so a
   * cluster snapshot may list pods without a full spec.
   */
  readonly validatePods?: boolean;
}

/**
 * Reads the security-relevant objects out of manifests. Throws a
 * ValidationError listing every invalid object's problems.
 */
export function clusterObjectsFrom(
  manifests: readonly Manifest[],
  options: ClusterObjectsOptions = {},
): ClusterObjects {
  const dflt = options.defaultNamespace ?? 'default';
  const issues: ValidationIssue[] = [];
  const out: ClusterObjects = {
    roles: [],
    bindings: [],
    namespaces: [],
    pods: [],
    policies: [],
    adminPolicies: [],
    baselinePolicies: [],
    podSources: [],
    ignored: [],
    manifests,
  };
  for (const m of manifests) {
    const o = obj(m.object);
    const skip = options.validatePods === false && podTemplateOf(m.object) !== undefined;
    const problems = skip ? [] : validateK8sObject(m.object);
    if (problems !== undefined && problems.length > 0) {
      const where = `${m.file}: ${describeObject(m.object)}`;
      for (const p of problems) issues.push({ path: `${where}: ${p.path}`, message: p.message });
      continue;
    }
    const meta = obj(o['metadata']);
    const name = str(meta['name']);
    const rawNs = str(meta['namespace']);
    const ns = rawNs === '' ? dflt : rawNs;
    const labels = readStringMap(meta['labels']);
    const apiVersion = str(o['apiVersion']);
    if (
      !KNOWN_KINDS.has(`${apiVersion}/${str(o['kind'])}`) &&
      podTemplateOf(m.object) === undefined &&
      m.object != null
    )
      out.ignored.push(`${m.file}: ${apiVersion} ${str(o['kind'])} ${JSON.stringify(name)}`);
    switch (o['kind']) {
      case 'Namespace':
        if (apiVersion === 'v1') out.namespaces.push({ name, labels });
        break;
      case 'Role':
      case 'ClusterRole': {
        const agg = o['aggregationRule'];
        out.roles.push({
          kind: o['kind'],
          name,
          ...(o['kind'] === 'Role' ? { namespace: ns } : {}),
          labels,
          rules: list(o['rules']).map(rule),
          ...(agg == null
            ? {}
            : {
                aggregationRule: {
                  clusterRoleSelectors: list(obj(agg)['clusterRoleSelectors']).map(selector),
                },
              }),
        });
        break;
      }
      case 'RoleBinding':
      case 'ClusterRoleBinding': {
        const ref = obj(o['roleRef']);
        out.bindings.push({
          kind: o['kind'],
          name,
          ...(o['kind'] === 'RoleBinding' ? { namespace: ns } : {}),
          roleRef: {
            kind: str(ref['kind']),
            name: str(ref['name']),
            apiGroup: str(ref['apiGroup']),
          },
          subjects: list(o['subjects']).map(subject),
        });
        break;
      }
      case 'NetworkPolicy': {
        const spec = obj(o['spec']);
        out.policies.push({
          namespace: ns,
          name,
          podSelector: selector(spec['podSelector']),
          policyTypes: strs(spec['policyTypes']),
          ingress: netpolRules(spec['ingress'], 'from'),
          egress: netpolRules(spec['egress'], 'to'),
        });
        break;
      }
      case 'AdminNetworkPolicy':
      case 'BaselineAdminNetworkPolicy': {
        if (apiVersion !== 'policy.networking.k8s.io/v1alpha1') break;
        const spec = obj(o['spec']);
        const common = {
          name,
          subject: adminSubject(spec['subject']),
          ingress: adminRules(spec['ingress'], 'from'),
          egress: adminRules(spec['egress'], 'to'),
        };
        if (o['kind'] === 'AdminNetworkPolicy')
          out.adminPolicies.push({ ...common, priority: Number(spec['priority']) });
        else out.baselinePolicies.push(common);
        break;
      }
      default:
        break;
    }
    const template = podTemplateOf(m.object);
    if (template !== undefined) {
      out.podSources.push({
        file: m.file,
        kind: str(o['kind']),
        name,
        namespace: rawNs === '' ? undefined : rawNs,
        template,
        object: m.object,
      });
      if (o['kind'] === 'Pod') {
        const status = obj(o['status']);
        const ip = str(status['podIP']) || str(obj(list(status['podIPs'])[0])['ip']);
        out.pods.push({
          namespace: ns,
          name,
          labels,
          ...(ip === '' ? {} : { ip }),
          ports: containerPorts(o['spec']),
        });
      }
    }
  }
  if (issues.length > 0) throw new ValidationError('invalid Kubernetes objects', issues);
  return out;
}
