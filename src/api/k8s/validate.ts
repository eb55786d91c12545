/**
 * Validation of the Kubernetes security kinds: the schema (structure, unknown
 * fields) and then Kubernetes' own semantic rules with its field-error
 * wording (`rules[0].verbs: Required value: verbs must contain at least one
 * value`), from pkg/apis/rbac/validation and pkg/apis/networking/validation.
 */
import { BlockList, isIP } from 'node:net';
import { createValidator, joinPath, type ValidationIssue, type Validator } from '../validation.js';
import {
  AdminNetworkPolicySchema,
  BaselineAdminNetworkPolicySchema,
  ClusterRoleBindingSchema,
  ClusterRoleSchema,
  CronJobSchema,
  DaemonSetSchema,
  DeploymentSchema,
  JobSchema,
  NetworkPolicySchema,
  PodSchema,
  ReplicaSetSchema,
  RoleBindingSchema,
  RoleSchema,
  StatefulSetSchema,
} from './schemas.js';

const RBAC_GROUP = 'rbac.authorization.k8s.io';

const VALIDATORS = new Map<string, Validator<unknown>>([
  [`${RBAC_GROUP}/v1/Role`, createValidator(RoleSchema)],
  [`${RBAC_GROUP}/v1/ClusterRole`, createValidator(ClusterRoleSchema)],
  [`${RBAC_GROUP}/v1/RoleBinding`, createValidator(RoleBindingSchema)],
  [`${RBAC_GROUP}/v1/ClusterRoleBinding`, createValidator(ClusterRoleBindingSchema)],
  ['networking.k8s.io/v1/NetworkPolicy', createValidator(NetworkPolicySchema)],
  [
    'policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy',
    createValidator(AdminNetworkPolicySchema),
  ],
  [
    'policy.networking.k8s.io/v1alpha1/BaselineAdminNetworkPolicy',
    createValidator(BaselineAdminNetworkPolicySchema),
  ],
  ['v1/Pod', createValidator(PodSchema)],
  ['apps/v1/Deployment', createValidator(DeploymentSchema)],
  ['apps/v1/StatefulSet', createValidator(StatefulSetSchema)],
  ['apps/v1/DaemonSet', createValidator(DaemonSetSchema)],
  ['apps/v1/ReplicaSet', createValidator(ReplicaSetSchema)],
  ['batch/v1/Job', createValidator(JobSchema)],
  ['batch/v1/CronJob', createValidator(CronJobSchema)],
]);

/** The `apiVersion/kind` keys this module validates. */
export const K8S_SECURITY_KINDS: readonly string[] = [...VALIDATORS.keys()];

// Kubernetes field.Error bodies.
const required = (path: string, detail = ''): ValidationIssue => ({
  path,
  message: detail === '' ? 'Required value' : `Required value: ${detail}`,
});
const goValue = (v: unknown): string =>
  Array.isArray(v) ? `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}` : JSON.stringify(v);
const invalid = (path: string, value: unknown, detail: string): ValidationIssue => ({
  path,
  message: `Invalid value: ${goValue(value)}: ${detail}`,
});
const notSupported = (
  path: string,
  value: unknown,
  supported: readonly string[],
): ValidationIssue => ({
  path,
  message: `Unsupported value: ${goValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
});

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const strs = (v: unknown): string[] => list(v).filter((x): x is string => typeof x === 'string');
const s = (v: unknown): string => (typeof v === 'string' ? v : '');

function validateMeta(o: Obj, namespaced: boolean): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const meta = obj(o['metadata']);
  if (s(meta['name']) === '' && s(meta['generateName']) === '') {
    out.push(required('metadata.name', 'name or generateName is required'));
  }
  if (namespaced && s(meta['namespace']) === '') out.push(required('metadata.namespace'));
  if (!namespaced && s(meta['namespace']) !== '') {
    out.push(invalid('metadata.namespace', meta['namespace'], 'not allowed on this type'));
  }
  return out;
}

/** ValidatePolicyRule. */
function validateRule(rule: Obj, namespaced: boolean, path: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (strs(rule['verbs']).length === 0) {
    out.push(required(joinPath(path, 'verbs'), 'verbs must contain at least one value'));
  }
  const urls = strs(rule['nonResourceURLs']);
  if (urls.length > 0) {
    if (namespaced) {
      out.push(
        invalid(
          joinPath(path, 'nonResourceURLs'),
          urls,
          'namespaced rules cannot apply to non-resource URLs',
        ),
      );
    }
    if (
      strs(rule['apiGroups']).length > 0 ||
      strs(rule['resources']).length > 0 ||
      strs(rule['resourceNames']).length > 0
    ) {
      out.push(
        invalid(
          joinPath(path, 'nonResourceURLs'),
          urls,
          'rules cannot apply to both regular resources and non-resource URLs',
        ),
      );
    }
    return out;
  }
  if (strs(rule['apiGroups']).length === 0) {
    out.push(
      required(joinPath(path, 'apiGroups'), 'resource rules must supply at least one api group'),
    );
  }
  if (strs(rule['resources']).length === 0) {
    out.push(
      required(joinPath(path, 'resources'), 'resource rules must supply at least one resource'),
    );
  }
  return out;
}

const SA_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** ValidateRoleBindingSubject. */
function validateSubject(subject: Obj, namespaced: boolean, path: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const name = s(subject['name']);
  if (name === '') out.push(required(joinPath(path, 'name')));
  const apiGroup = s(subject['apiGroup']);
  switch (subject['kind']) {
    case 'ServiceAccount':
      if (name !== '' && (!SA_NAME.test(name) || name.length > 253)) {
        out.push(
          invalid(
            joinPath(path, 'name'),
            name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
          ),
        );
      }
      if (apiGroup !== '') out.push(notSupported(joinPath(path, 'apiGroup'), apiGroup, ['']));
      if (!namespaced && s(subject['namespace']) === '')
        out.push(required(joinPath(path, 'namespace')));
      break;
    case 'User':
    case 'Group':
      if (apiGroup !== RBAC_GROUP)
        out.push(notSupported(joinPath(path, 'apiGroup'), apiGroup, [RBAC_GROUP]));
      break;
    default:
      out.push(
        notSupported(joinPath(path, 'kind'), subject['kind'], ['ServiceAccount', 'User', 'Group']),
      );
  }
  return out;
}

function validateBinding(o: Obj, namespaced: boolean): ValidationIssue[] {
  const out = validateMeta(o, namespaced);
  const ref = obj(o['roleRef']);
  if (s(ref['apiGroup']) !== RBAC_GROUP)
    out.push(notSupported('roleRef.apiGroup', s(ref['apiGroup']), [RBAC_GROUP]));
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (s(ref['kind']) === '') out.push(required('roleRef.kind'));
  else if (!kinds.includes(s(ref['kind'])))
    out.push(notSupported('roleRef.kind', ref['kind'], kinds));
  if (s(ref['name']) === '') out.push(required('roleRef.name'));
  else if (
    ref['name'] === '.' ||
    ref['name'] === '..' ||
    s(ref['name']).includes('/') ||
    s(ref['name']).includes('%')
  ) {
    out.push(invalid('roleRef.name', ref['name'], 'may not contain "/" or "%" or be "." or ".."'));
  }
  list(o['subjects']).forEach((sub, i) => {
    out.push(...validateSubject(obj(sub), namespaced, joinPath('subjects', i)));
  });
  return out;
}

// --- NetworkPolicy ----------------------------------------------------------

const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function parseCidr(text: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  const family = isIP(m[1]);
  const prefix = Number(m[2]);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { ip: m[1], prefix, family: family as 4 | 6 };
}

function strictSubset(
  inner: { ip: string; prefix: number; family: 4 | 6 },
  outer: { ip: string; prefix: number; family: 4 | 6 },
): boolean {
  if (inner.family !== outer.family || inner.prefix <= outer.prefix) return false;
  const type = outer.family === 4 ? 'ipv4' : 'ipv6';
  const block = new BlockList();
  block.addSubnet(outer.ip, outer.prefix, type);
  return block.check(inner.ip, type);
}

/** JSON null means "unset" to the API server; drop null-valued keys before checking. */
function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = stripNulls(v);
  return out;
}

function validatePorts(ports: unknown, path: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  list(ports).forEach((raw, i) => {
    const p = obj(raw);
    const pp = joinPath(path, i);
    const proto = p['protocol'];
    if (proto !== undefined && !['TCP', 'UDP', 'SCTP'].includes(s(proto))) {
      out.push(notSupported(joinPath(pp, 'protocol'), proto, ['SCTP', 'TCP', 'UDP']));
    }
    const port = p['port'];
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        out.push(invalid(joinPath(pp, 'port'), port, 'must be between 1 and 65535, inclusive'));
      }
    } else if (typeof port === 'string') {
      if (
        port.length > 15 ||
        !IANA_SVC_NAME.test(port) ||
        !/[a-z]/.test(port) ||
        port.includes('--')
      ) {
        out.push(
          invalid(
            joinPath(pp, 'port'),
            port,
            'must be a valid IANA_SVC_NAME (at most 15 characters, lowercase alphanumeric or -, at least one letter)',
          ),
        );
      }
    }
    const end = p['endPort'];
    if (end !== undefined) {
      if (typeof port === 'string') {
        out.push(
          invalid(joinPath(pp, 'endPort'), end, 'may not be specified when `port` is non-numeric'),
        );
      } else if (port === undefined || port === null) {
        out.push(
          invalid(
            joinPath(pp, 'endPort'),
            end,
            'may not be specified when `port` is not specified',
          ),
        );
      } else if (typeof end === 'number' && typeof port === 'number' && end < port) {
        out.push(invalid(joinPath(pp, 'endPort'), end, 'must be greater than or equal to `port`'));
      } else if (typeof end === 'number' && end > 65535) {
        out.push(invalid(joinPath(pp, 'endPort'), end, 'must be between 1 and 65535, inclusive'));
      }
    }
  });
  return out;
}

function validatePeers(peers: unknown, path: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  list(peers).forEach((raw, i) => {
    const p = obj(raw);
    const pp = joinPath(path, i);
    const n = ['podSelector', 'namespaceSelector', 'ipBlock'].filter(
      (k) => p[k] !== undefined && p[k] !== null,
    ).length;
    if (n === 0) out.push(required(pp, 'must specify a peer'));
    if (p['ipBlock'] !== undefined && n > 1) {
      out.push({ path: pp, message: 'Forbidden: may not specify both ipBlock and another peer' });
    }
    if (p['ipBlock'] !== undefined) {
      const ib = obj(p['ipBlock']);
      const cidr = parseCidr(s(ib['cidr']));
      if (cidr === undefined) {
        out.push(
          invalid(
            joinPath(joinPath(pp, 'ipBlock'), 'cidr'),
            ib['cidr'],
            'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
          ),
        );
      }
      strs(ib['except']).forEach((e, j) => {
        const ep = joinPath(joinPath(joinPath(pp, 'ipBlock'), 'except'), j);
        const ec = parseCidr(e);
        if (ec === undefined)
          out.push(
            invalid(ep, e, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'),
          );
        else if (cidr !== undefined && !strictSubset(ec, cidr)) {
          out.push(invalid(ep, e, 'must be a strict subset of `cidr`'));
        }
      });
    }
  });
  return out;
}

function validateNetworkPolicy(o: Obj): ValidationIssue[] {
  const out = validateMeta(o, true);
  const spec = obj(o['spec']);
  list(spec['ingress']).forEach((r, i) => {
    const rp = joinPath('spec.ingress', i);
    out.push(...validatePorts(obj(r)['ports'], joinPath(rp, 'ports')));
    out.push(...validatePeers(obj(r)['from'], joinPath(rp, 'from')));
  });
  list(spec['egress']).forEach((r, i) => {
    const rp = joinPath('spec.egress', i);
    out.push(...validatePorts(obj(r)['ports'], joinPath(rp, 'ports')));
    out.push(...validatePeers(obj(r)['to'], joinPath(rp, 'to')));
  });
  const types = list(spec['policyTypes']);
  if (types.length > 2)
    out.push({
      path: 'spec.policyTypes',
      message: 'Invalid value: may not specify more than two policyTypes',
    });
  return out;
}

// --- AdminNetworkPolicy / BaselineAdminNetworkPolicy -------------------------
// The CRD's OpenAPI rules (kubebuilder markers in apis/v1alpha1 of
// kubernetes-sigs/network-policy-api): MinProperties/MaxProperties=1 on
// subject, peers and ports; priority 0..1000; at most 100 rules, 100 peers
// and 100 ports; 25 networks; rule names up to 100 characters; BANP named
// "default"; no namedPort with a networks/nodes/domainNames peer;
// domainNames only on Allow rules.

function exactlyOne(v: unknown, path: string, fields: readonly string[]): ValidationIssue[] {
  const set = fields.filter((f) => obj(v)[f] !== undefined);
  if (set.length === 1) return [];
  return [
    invalid(
      path,
      set,
      set.length === 0
        ? `exactly one of ${fields.join(', ')} must be set`
        : `only one of ${fields.join(', ')} may be set`,
    ),
  ];
}

function validateAdminPort(v: unknown, path: string): ValidationIssue[] {
  const out = exactlyOne(v, path, ['portNumber', 'namedPort', 'portRange']);
  const p = obj(v);
  const inRange = (n: unknown, at: string): void => {
    if (typeof n === 'number' && (n < 1 || n > 65535))
      out.push(invalid(at, n, 'must be between 1 and 65535, inclusive'));
  };
  if (p['portNumber'] !== undefined)
    inRange(obj(p['portNumber'])['port'], joinPath(joinPath(path, 'portNumber'), 'port'));
  if (p['portRange'] !== undefined) {
    const r = obj(p['portRange']);
    const rp = joinPath(path, 'portRange');
    inRange(r['start'], joinPath(rp, 'start'));
    inRange(r['end'], joinPath(rp, 'end'));
    if (typeof r['start'] === 'number' && typeof r['end'] === 'number' && r['start'] >= r['end'])
      out.push(invalid(rp, r, 'Start port must be less than End port'));
  }
  return out;
}

function validateAdminSpec(o: Obj, baseline: boolean): ValidationIssue[] {
  const out = validateMeta(o, false);
  const name = s(obj(o['metadata'])['name']);
  if (baseline && name !== 'default')
    out.push(
      invalid(
        'metadata.name',
        name,
        'Only one baseline admin network policy with metadata.name="default" can be created in the cluster',
      ),
    );
  const spec = obj(o['spec']);
  const priority = spec['priority'];
  if (!baseline && typeof priority === 'number' && (priority < 0 || priority > 1000))
    out.push(invalid('spec.priority', priority, 'must be between 0 and 1000, inclusive'));
  out.push(...exactlyOne(spec['subject'], 'spec.subject', ['namespaces', 'pods']));
  for (const [dir, peersKey, peerFields] of [
    ['ingress', 'from', ['namespaces', 'pods']],
    ['egress', 'to', ['namespaces', 'pods', 'nodes', 'networks', 'domainNames']],
  ] as const) {
    const rules = list(spec[dir]);
    if (rules.length > 100)
      out.push(invalid(`spec.${dir}`, rules.length, 'must have at most 100 items'));
    rules.forEach((r, i) => {
      const rp = joinPath(`spec.${dir}`, i);
      const rule = obj(r);
      if (s(rule['name']).length > 100)
        out.push(
          invalid(joinPath(rp, 'name'), rule['name'], 'may not be more than 100 characters'),
        );
      const peers = list(rule[peersKey]);
      const pp = joinPath(rp, peersKey);
      if (peers.length === 0) out.push(required(pp, 'at least one peer is required'));
      if (peers.length > 100) out.push(invalid(pp, peers.length, 'must have at most 100 items'));
      let addressPeer = false;
      peers.forEach((peer, j) => {
        const at = joinPath(pp, j);
        out.push(...exactlyOne(peer, at, peerFields));
        const x = obj(peer);
        if (
          x['networks'] !== undefined ||
          x['nodes'] !== undefined ||
          x['domainNames'] !== undefined
        )
          addressPeer = true;
        const nets = list(x['networks']);
        if (x['networks'] !== undefined && (nets.length === 0 || nets.length > 25))
          out.push(invalid(joinPath(at, 'networks'), nets.length, 'must have 1 to 25 items'));
        nets.forEach((n, k) => {
          if (parseCidr(s(n)) === undefined)
            out.push(
              invalid(joinPath(joinPath(at, 'networks'), k), n, 'Invalid CIDR format provided'),
            );
        });
        if (x['domainNames'] !== undefined && rule['action'] !== 'Allow')
          out.push(
            invalid(
              joinPath(at, 'domainNames'),
              x['domainNames'],
              'domainNames peer is only supported for Allow rules',
            ),
          );
      });
      if (rule['ports'] !== undefined) {
        const ports = list(rule['ports']);
        const portsPath = joinPath(rp, 'ports');
        if (ports.length === 0 || ports.length > 100)
          out.push(invalid(portsPath, ports.length, 'must have 1 to 100 items'));
        ports.forEach((p, k) => {
          out.push(...validateAdminPort(p, joinPath(portsPath, k)));
          if (addressPeer && obj(p)['namedPort'] !== undefined)
            out.push(
              invalid(
                joinPath(joinPath(portsPath, k), 'namedPort'),
                obj(p)['namedPort'],
                'networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
              ),
            );
        });
      }
    });
  }
  return out;
}

/**
 * Validates one Kubernetes security object. Returns undefined when the
 * apiVersion/kind is not one this module owns, else every issue found
 * (empty when valid). Semantic checks run only on structurally valid objects.
 */
export function validateK8sObject(input: unknown): ValidationIssue[] | undefined {
  const object = stripNulls(input);
  const o = obj(object);
  const key = `${s(o['apiVersion'])}/${s(o['kind'])}`;
  const v = VALIDATORS.get(key);
  if (v === undefined) return undefined;
  const r = v(object);
  if (!r.ok) return [...r.issues];
  switch (o['kind']) {
    case 'Role':
    case 'ClusterRole': {
      const namespaced = o['kind'] === 'Role';
      const out = validateMeta(o, namespaced);
      list(o['rules']).forEach((rule, i) => {
        out.push(...validateRule(obj(rule), namespaced, joinPath('rules', i)));
      });
      return out;
    }
    case 'RoleBinding':
      return validateBinding(o, true);
    case 'ClusterRoleBinding':
      return validateBinding(o, false);
    case 'NetworkPolicy':
      return validateNetworkPolicy(o);
    case 'AdminNetworkPolicy':
      return validateAdminSpec(o, false);
    case 'BaselineAdminNetworkPolicy':
      return validateAdminSpec(o, true);
    default:
      return validateMeta(o, false).filter((i) => i.path !== 'metadata.namespace');
  }
}
