/**
 * `palisade audit`: risky configuration in Kubernetes and mesh manifests —
 * RBAC that grants too much, pods that fail their namespace's Pod Security
 * level, namespaces and pods without NetworkPolicy isolation, and mesh gaps
 * (mTLS not STRICT, workloads without AuthorizationPolicy, ALLOW rules with
 * no `from`). Istio's security kinds are read from raw objects
 * (security.istio.io/*). Output as findings, rendered as a table, JSON or
 * SARIF 2.1.0.
 */
import { describeObject, objectHeader } from '../../api/index.js';
import type { ClusterObjects, PodSource } from '../cluster-objects.js';
import { readStringMap, selectorMatches, type Labels } from '../labels/label-selector.js';
import { createNetworkPolicyEngine } from '../netpol/network-policy-engine.js';
import {
  evaluatePodSecurity,
  formatLevelVersion,
  namespacePolicy,
  violationMessage,
} from '../podsecurity/pod-security.js';
import { aggregateClusterRoles } from '../rbac/rbac-authorizer.js';
import type { PolicyRule } from '../rbac/types.js';

export type Severity = 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** What an audit rule looks for. */
export interface AuditRule {
  readonly id: string;
  readonly name: string;
  readonly severity: Severity;
  readonly description: string;
}

export interface Finding {
  readonly ruleId: string;
  readonly severity: Severity;
  readonly message: string;
  readonly file: string;
  /** `Kind ns/name` of the object concerned. */
  readonly object: string;
  /** 0-based index of the object's manifest in its file, when known. */
  readonly index?: number;
}

export const AUDIT_RULES: readonly AuditRule[] = [
  {
    id: 'PAL-K8S-RBAC-001',
    name: 'cluster-admin-binding',
    severity: 'critical',
    description:
      'A binding grants cluster-admin (or an all-powerful role) to a subject other than system:masters.',
  },
  {
    id: 'PAL-K8S-RBAC-002',
    name: 'rbac-wildcard',
    severity: 'high',
    description: 'A role uses "*" for verbs, resources or apiGroups.',
  },
  {
    id: 'PAL-K8S-RBAC-003',
    name: 'secrets-read',
    severity: 'high',
    description: 'A role can read Secrets (get, list or watch).',
  },
  {
    id: 'PAL-K8S-RBAC-004',
    name: 'privilege-escalation-verbs',
    severity: 'critical',
    description: 'A role can escalate, bind or impersonate.',
  },
  {
    id: 'PAL-K8S-RBAC-005',
    name: 'pod-exec',
    severity: 'medium',
    description: 'A role can exec or attach into pods.',
  },
  {
    id: 'PAL-K8S-PSS-001',
    name: 'pod-security-violation',
    severity: 'high',
    description: "A pod or pod template fails its namespace's Pod Security enforce level.",
  },
  {
    id: 'PAL-K8S-PSS-002',
    name: 'pod-security-baseline-unmet',
    severity: 'medium',
    description:
      'A pod in a namespace without a Pod Security enforce label fails the baseline level.',
  },
  {
    id: 'PAL-K8S-PSS-003',
    name: 'pod-security-no-enforce',
    severity: 'low',
    description: 'A namespace has no pod-security.kubernetes.io/enforce label (privileged).',
  },
  {
    id: 'PAL-K8S-NETPOL-001',
    name: 'namespace-without-networkpolicy',
    severity: 'medium',
    description:
      'A namespace with workloads has no NetworkPolicy: every pod accepts traffic from anywhere.',
  },
  {
    id: 'PAL-K8S-NETPOL-002',
    name: 'pod-not-isolated',
    severity: 'low',
    description: 'A pod is selected by no ingress NetworkPolicy in a namespace that has policies.',
  },
  {
    id: 'PAL-MESH-001',
    name: 'mtls-not-strict',
    severity: 'high',
    description: 'A PeerAuthentication sets mTLS to PERMISSIVE or DISABLE (plaintext accepted).',
  },
  {
    id: 'PAL-MESH-002',
    name: 'no-strict-peerauthentication',
    severity: 'medium',
    description: 'Neither the mesh nor the namespace has a STRICT PeerAuthentication.',
  },
  {
    id: 'PAL-MESH-003',
    name: 'workload-without-authorizationpolicy',
    severity: 'medium',
    description:
      'No AuthorizationPolicy applies to a workload: every authenticated caller is allowed.',
  },
  {
    id: 'PAL-MESH-004',
    name: 'allow-without-from',
    severity: 'high',
    description: 'An ALLOW AuthorizationPolicy has a rule without `from`: any source may call.',
  },
];

const RULES_BY_ID = new Map(AUDIT_RULES.map((r) => [r.id, r]));

export interface AuditOptions {
  /** Istio's root namespace (mesh-wide policies). Default `istio-system`. */
  readonly rootNamespace?: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function has(xs: readonly string[] | undefined, v: string): boolean {
  return (xs ?? []).includes(v);
}

function grants(
  rule: PolicyRule,
  verbs: readonly string[],
  group: string,
  resource: string,
): boolean {
  return (
    (has(rule.verbs, '*') || verbs.some((v) => has(rule.verbs, v))) &&
    (has(rule.apiGroups, '*') || has(rule.apiGroups, group)) &&
    (has(rule.resources, '*') || has(rule.resources, resource))
  );
}

function isAllPowerful(rules: readonly PolicyRule[]): boolean {
  return rules.some((r) => has(r.verbs, '*') && has(r.apiGroups, '*') && has(r.resources, '*'));
}

/** Runs every audit rule over the objects. Findings are sorted by severity (worst first), then file. */
export function auditCluster(objects: ClusterObjects, options: AuditOptions = {}): Finding[] {
  const root = options.rootNamespace ?? 'istio-system';
  const findings: Finding[] = [];
  const add = (ruleId: string, message: string, file: string, object: string): void => {
    const rule = RULES_BY_ID.get(ruleId);
    if (rule === undefined) return;
    findings.push({ ruleId, severity: rule.severity, message, file, object });
  };
  const fileOf = new Map<string, string>();
  for (const m of objects.manifests) {
    const h = objectHeader(m.object);
    if (h !== undefined) fileOf.set(`${h.kind}/${h.namespace ?? ''}/${h.name}`, m.file);
  }
  const whereFile = (kind: string, ns: string | undefined, name: string): string =>
    fileOf.get(`${kind}/${ns ?? ''}/${name}`) ?? fileOf.get(`${kind}//${name}`) ?? '';

  // --- RBAC ----------------------------------------------------------------
  const clusterRules = aggregateClusterRoles(objects.roles);
  for (const role of objects.roles) {
    const rules =
      role.kind === 'ClusterRole' ? (clusterRules.get(role.name) ?? role.rules) : role.rules;
    const what = `${role.kind} ${role.namespace === undefined ? '' : `${role.namespace}/`}${role.name}`;
    const file = whereFile(role.kind, role.namespace, role.name);
    if (role.name.startsWith('system:')) continue; // Kubernetes' own bootstrap roles
    rules.forEach((r, i) => {
      const wild = (['verbs', 'apiGroups', 'resources'] as const).filter((k) => has(r[k], '*'));
      if (wild.length > 0)
        add('PAL-K8S-RBAC-002', `rules[${String(i)}] uses "*" in ${wild.join(', ')}`, file, what);
      if (grants(r, ['get', 'list', 'watch'], '', 'secrets'))
        add('PAL-K8S-RBAC-003', `rules[${String(i)}] can read secrets`, file, what);
      const esc = ['escalate', 'bind', 'impersonate'].filter(
        (v) => has(r.verbs, v) || has(r.verbs, '*'),
      );
      if (esc.length > 0 && ((r.resources ?? []).length > 0 || has(r.apiGroups, '*'))) {
        add('PAL-K8S-RBAC-004', `rules[${String(i)}] allows ${esc.join(', ')}`, file, what);
      }
      if (
        grants(r, ['create', 'get'], '', 'pods/exec') ||
        grants(r, ['create', 'get'], '', 'pods/attach')
      ) {
        add('PAL-K8S-RBAC-005', `rules[${String(i)}] can exec or attach into pods`, file, what);
      }
    });
  }
  for (const b of objects.bindings) {
    if (b.roleRef.kind !== 'ClusterRole') continue;
    const rules = clusterRules.get(b.roleRef.name) ?? [];
    if (b.roleRef.name !== 'cluster-admin' && !isAllPowerful(rules)) continue;
    const subjects = b.subjects.filter((s) => !(s.kind === 'Group' && s.name === 'system:masters'));
    if (subjects.length === 0) continue;
    const who = subjects
      .map((s) => `${s.kind} ${s.namespace === undefined ? '' : `${s.namespace}/`}${s.name}`)
      .join(', ');
    add(
      'PAL-K8S-RBAC-001',
      `${b.kind} grants ClusterRole ${b.roleRef.name} (all verbs on all resources${b.kind === 'RoleBinding' ? ` in namespace ${b.namespace ?? ''}` : ''}) to ${who}`,
      whereFile(b.kind, b.namespace, b.name),
      `${b.kind} ${b.namespace === undefined ? '' : `${b.namespace}/`}${b.name}`,
    );
  }

  // --- Pod Security --------------------------------------------------------
  const nsLabels = new Map<string, Labels>(objects.namespaces.map((n) => [n.name, n.labels]));
  const workloads = objects.podSources.filter((p) => !isOwnedPod(p));
  const nsOf = (p: PodSource): string => p.namespace ?? 'default';
  for (const p of workloads) {
    const labels = nsLabels.get(nsOf(p)) ?? {};
    const policy = namespacePolicy(labels);
    const what = describeObject(p.object);
    if (policy.enforce.level !== 'privileged') {
      const r = evaluatePodSecurity(policy.enforce, p.template.metadata, p.template.spec);
      if (!r.allowed) {
        add(
          'PAL-K8S-PSS-001',
          `namespace ${nsOf(p)} enforces ${formatLevelVersion(policy.enforce)}: ${violationMessage(policy.enforce, r.violations)}`,
          p.file,
          what,
        );
      }
    } else {
      const lv = { level: 'baseline', version: 'latest' } as const;
      const r = evaluatePodSecurity(lv, p.template.metadata, p.template.spec);
      if (!r.allowed) add('PAL-K8S-PSS-002', violationMessage(lv, r.violations), p.file, what);
    }
  }
  const workloadNamespaces = [...new Set(workloads.map(nsOf))].sort();
  for (const ns of workloadNamespaces) {
    const labels = nsLabels.get(ns) ?? {};
    if (labels['pod-security.kubernetes.io/enforce'] === undefined) {
      add(
        'PAL-K8S-PSS-003',
        `namespace ${ns} has no pod-security.kubernetes.io/enforce label; pods run unrestricted (privileged)`,
        whereFile('Namespace', undefined, ns),
        `Namespace ${ns}`,
      );
    }
  }

  // --- NetworkPolicy -------------------------------------------------------
  const engine = createNetworkPolicyEngine(objects);
  for (const ns of workloadNamespaces) {
    const policies = objects.policies.filter((p) => p.namespace === ns);
    if (policies.length === 0) {
      add(
        'PAL-K8S-NETPOL-001',
        `namespace ${ns} has no NetworkPolicy: its pods accept connections from any pod and address`,
        whereFile('Namespace', undefined, ns),
        `Namespace ${ns}`,
      );
      continue;
    }
    for (const p of workloads.filter((w) => nsOf(w) === ns)) {
      const labels = readStringMap(obj(p.template.metadata)['labels']);
      const sel = engine.selecting({ namespace: ns, name: p.name, labels, ports: [] });
      if (sel.ingress.length === 0) {
        add(
          'PAL-K8S-NETPOL-002',
          `no NetworkPolicy selects this workload's pods for ingress`,
          p.file,
          describeObject(p.object),
        );
      }
    }
  }

  // --- mesh ----------------------------------------------------------------
  const mesh = objects.manifests.filter((m) =>
    /\.istio\.io\//.test(str(obj(m.object)['apiVersion'])),
  );
  const injected = objects.namespaces.some(
    (n) => n.labels['istio-injection'] === 'enabled' || n.labels['istio.io/rev'] !== undefined,
  );
  if (mesh.length > 0 || injected) {
    const kindOf = (m: { object: unknown }): string =>
      str(obj(m.object)['apiVersion']).startsWith('security.istio.io/')
        ? str(obj(m.object)['kind'])
        : '';
    const peerAuths = mesh.filter((m) => kindOf(m) === 'PeerAuthentication');
    const authzs = mesh.filter((m) => kindOf(m) === 'AuthorizationPolicy');
    const nsOfObj = (o: unknown): string => str(obj(obj(o)['metadata'])['namespace']) || 'default';
    const modeOf = (o: unknown): string => str(obj(obj(obj(o)['spec'])['mtls'])['mode']) || 'UNSET';
    const hasSelector = (o: unknown): boolean =>
      Object.keys(readStringMap(obj(obj(obj(o)['spec'])['selector'])['matchLabels'])).length > 0;
    for (const m of peerAuths) {
      const mode = modeOf(m.object);
      if (mode === 'PERMISSIVE' || mode === 'DISABLE') {
        add(
          'PAL-MESH-001',
          `mtls.mode is ${mode}: plaintext connections are accepted`,
          m.file,
          describeObject(m.object),
        );
      }
      for (const [port, v] of Object.entries(obj(obj(obj(m.object)['spec'])['portLevelMtls']))) {
        const pm = str(obj(v)['mode']);
        if (pm === 'PERMISSIVE' || pm === 'DISABLE') {
          add(
            'PAL-MESH-001',
            `portLevelMtls[${port}].mode is ${pm}: plaintext connections are accepted on port ${port}`,
            m.file,
            describeObject(m.object),
          );
        }
      }
    }
    const meshStrict = peerAuths.some(
      (m) => nsOfObj(m.object) === root && !hasSelector(m.object) && modeOf(m.object) === 'STRICT',
    );
    if (!meshStrict) {
      for (const ns of workloadNamespaces) {
        const nsStrict = peerAuths.some(
          (m) =>
            nsOfObj(m.object) === ns && !hasSelector(m.object) && modeOf(m.object) === 'STRICT',
        );
        if (!nsStrict) {
          add(
            'PAL-MESH-002',
            `namespace ${ns} has no STRICT PeerAuthentication and the mesh (${root}) has none: mTLS is PERMISSIVE by default`,
            whereFile('Namespace', undefined, ns),
            `Namespace ${ns}`,
          );
        }
      }
    }
    for (const m of authzs) {
      const spec = obj(obj(m.object)['spec']);
      const action = str(spec['action']) || 'ALLOW';
      if (action !== 'ALLOW') continue;
      list(spec['rules']).forEach((r, i) => {
        if (list(obj(r)['from']).length === 0) {
          add(
            'PAL-MESH-004',
            `rules[${String(i)}] has no from: it allows requests from any source`,
            m.file,
            describeObject(m.object),
          );
        }
      });
    }
    for (const p of workloads) {
      const ns = nsOf(p);
      const labels = readStringMap(obj(p.template.metadata)['labels']);
      const applies = authzs.some((m) => {
        const pns = nsOfObj(m.object);
        if (pns !== root && pns !== ns) return false;
        const sel = obj(obj(obj(m.object)['spec'])['selector']);
        return selectorMatches({ matchLabels: readStringMap(sel['matchLabels']) }, labels);
      });
      if (!applies) {
        add(
          'PAL-MESH-003',
          `no AuthorizationPolicy applies to this workload: any authenticated caller is allowed`,
          p.file,
          describeObject(p.object),
        );
      }
    }
  }

  const indexOf = new Map<string, number>();
  for (const m of objects.manifests)
    indexOf.set(`${m.file}\u0000${describeObject(m.object)}`, m.index);
  const located = findings.map((f) => {
    const index = indexOf.get(`${f.file}\u0000${f.object}`);
    return index === undefined ? f : { ...f, index };
  });
  const rank = (s: Severity): number => SEVERITIES.indexOf(s);
  return located.sort(
    (a, b) =>
      rank(b.severity) - rank(a.severity) ||
      a.file.localeCompare(b.file) ||
      a.ruleId.localeCompare(b.ruleId) ||
      a.object.localeCompare(b.object),
  );
}

/** A Pod owned by a controller (ownerReferences) is audited through its workload. */
function isOwnedPod(p: PodSource): boolean {
  return p.kind === 'Pod' && list(obj(obj(p.object)['metadata'])['ownerReferences']).length > 0;
}

/** True when any finding is at or above `threshold`. */
export function hasFindingAtOrAbove(findings: readonly Finding[], threshold: Severity): boolean {
  const t = SEVERITIES.indexOf(threshold);
  return findings.some((f) => SEVERITIES.indexOf(f.severity) >= t);
}

const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
};

const SECURITY_SEVERITY: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '2.0',
};

/**
 * SARIF 2.1.0 log (OASIS SARIF v2.1.0: sarifLog → runs[] → tool.driver +
 * results[]). `lineOf` gives a finding's start line (GitHub code scanning
 * needs `region.startLine`); unknown lines point at line 1.
 */
export function toSarif(
  findings: readonly Finding[],
  version: string,
  lineOf: (f: Finding) => number | undefined = () => undefined,
): unknown {
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'palisade',
            version,
            informationUri: 'https://palisade.dev/docs/kubernetes',
            rules: AUDIT_RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.description },
              defaultConfiguration: { level: SARIF_LEVEL[r.severity] },
              properties: {
                'security-severity': SECURITY_SEVERITY[r.severity],
                severity: r.severity,
              },
            })),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.ruleId,
          ruleIndex: AUDIT_RULES.findIndex((r) => r.id === f.ruleId),
          level: SARIF_LEVEL[f.severity],
          message: { text: `${f.object}: ${f.message}` },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: f.file === '' ? 'unknown' : f.file },
                region: { startLine: lineOf(f) ?? 1 },
              },
              logicalLocations: [{ name: f.object, kind: 'object' }],
            },
          ],
          properties: { severity: f.severity },
        })),
      },
    ],
  };
}

/** A plain-text table: SEVERITY RULE OBJECT FILE MESSAGE. */
export function toTable(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'No findings.\n';
  const rows = findings.map((f) => [
    f.severity.toUpperCase(),
    f.ruleId,
    f.object,
    f.file,
    f.message,
  ]);
  const head = ['SEVERITY', 'RULE', 'OBJECT', 'FILE', 'MESSAGE'];
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.slice(0, 1000).map((r) => Math.min((r[i] ?? '').length, 60))),
  );
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}
