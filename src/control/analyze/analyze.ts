/**
 * `palisade analyze`: lints mesh configuration the way `istioctl analyze`
 * does — schema errors and cross-resource mistakes that validation of one
 * object cannot see — with stable codes (docs/analyze.md). Codes mirror
 * Istio's analyzer messages (IST0101 ReferencedResourceNotFound, IST0109
 * ConflictingMeshGatewayVirtualServiceHosts, IST0127 NoMatchingWorkloadsFound,
 * IST0128 NoServerCertificateVerificationDestinationLevel, IST0130/0131
 * unreachable rules, IST0118 port naming).
 */
import { formatIssue, objectHeader, validateMeshObject, type Manifest } from '../../api/index.js';
import type { Service } from '../../api/core/index.js';
import type {
  DestinationRule,
  Gateway,
  ServiceEntry,
  VirtualService,
} from '../../api/networking/index.js';
import type { Workload } from '../../api/palisade/index.js';
import type { PeerAuthentication } from '../../api/security/index.js';

export type FindingLevel = 'Error' | 'Warning' | 'Info';

/** One analyzer message. */
export interface Finding {
  readonly level: FindingLevel;
  readonly code: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly message: string;
  readonly file: string;
}

/** The message catalogue: code → level and meaning (docs/analyze.md). */
export const FINDING_CODES = {
  PAL0001: { level: 'Error', title: 'SchemaValidationError' },
  PAL0101: { level: 'Error', title: 'ReferencedHostNotFound' },
  PAL0102: { level: 'Error', title: 'ReferencedSubsetNotFound' },
  PAL0103: { level: 'Error', title: 'ReferencedGatewayNotFound' },
  PAL0104: { level: 'Warning', title: 'NoMatchingWorkloadsFound' },
  PAL0105: { level: 'Error', title: 'ConflictingVirtualServiceHosts' },
  PAL0106: { level: 'Warning', title: 'VirtualServiceUnreachableRule' },
  PAL0107: { level: 'Warning', title: 'NoServerCertificateVerification' },
  PAL0108: { level: 'Warning', title: 'WeakerMtlsThanMesh' },
  PAL0109: { level: 'Info', title: 'PortNameIsNotUnderNamingConvention' },
  PAL0110: { level: 'Info', title: 'UnknownKindIgnored' },
} as const satisfies Record<string, { level: FindingLevel; title: string }>;

export type FindingCode = keyof typeof FINDING_CODES;

/** Options of {@link analyzeManifests}. */
export interface AnalyzeOptions {
  /** Istio's root namespace (mesh-wide policies). Default istio-system. */
  readonly rootNamespace?: string;
}

interface Obj<T> {
  readonly value: T;
  readonly file: string;
  readonly namespace: string;
  readonly name: string;
  readonly kind: string;
}

const DOMAIN = 'cluster.local';
const BUILTIN_GATEWAY_LABELS = [{ istio: 'ingressgateway' }, { istio: 'egressgateway' }];

function labelsMatch(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Analyzes manifests (already parsed) and returns findings in file/object order. */
export function analyzeManifests(
  manifests: readonly Manifest[],
  options: AnalyzeOptions = {},
): Finding[] {
  const root = options.rootNamespace ?? 'istio-system';
  const findings: Finding[] = [];
  const add = (
    code: FindingCode,
    o: { kind: string; namespace: string; name: string; file: string },
    message: string,
  ): void => {
    findings.push({
      level: FINDING_CODES[code].level,
      code,
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      message,
      file: o.file,
    });
  };
  const valid: Obj<unknown>[] = [];
  for (const m of manifests) {
    if (m.object === null || m.object === undefined) continue;
    const header = objectHeader(m.object);
    const kind = header?.kind ?? 'Unknown';
    const name = header?.name ?? `document ${String(m.index + 1)}`;
    const namespace = header?.namespace ?? (kind === 'Namespace' ? '' : 'default');
    const at = { kind, namespace, name, file: m.file };
    const result = validateMeshObject(m.object);
    if (result.ok === 'unknown') {
      add('PAL0110', at, `Unknown kind ${result.apiVersion}/${result.kind}, ignored`);
      continue;
    }
    if (!result.ok) {
      for (const issue of result.issues)
        add('PAL0001', at, `Schema validation error: ${formatIssue(issue)}`);
      continue;
    }
    valid.push({ ...at, value: result.value });
  }
  // Several documents with one kind/namespace/name are versions of one object
  // (applied in order, the last wins), not separate objects.
  const effective = new Map<string, Obj<unknown>>();
  for (const o of valid) effective.set(`${o.kind}/${o.namespace}/${o.name}`, o);
  const current = [...effective.values()];
  const of = <T>(kind: string): Obj<T>[] => current.filter((o) => o.kind === kind) as Obj<T>[];
  const services = of<Service>('Service');
  const entries = of<ServiceEntry>('ServiceEntry');
  const workloads = of<Workload>('Workload');
  const gateways = of<Gateway>('Gateway');
  const rules = of<DestinationRule>('DestinationRule');
  const virtualServices = of<VirtualService>('VirtualService');

  /** The FQDN a host names from `namespace`, or undefined when nothing in the config defines it. */
  const resolve = (host: string, namespace: string): string | undefined => {
    if (host.includes('*')) return host;
    const candidates =
      host.split('.').length === 1
        ? [`${host}.${namespace}.svc.${DOMAIN}`]
        : host.split('.').length === 2
          ? [`${host}.svc.${DOMAIN}`, host]
          : [host, host.endsWith(`.svc`) ? `${host}.${DOMAIN}` : host];
    for (const c of candidates) {
      if (services.some((s) => `${s.name}.${s.namespace}.svc.${DOMAIN}` === c)) return c;
      if (entries.some((e) => e.value.spec.hosts.includes(c) || e.value.spec.hosts.includes(host)))
        return c;
    }
    return undefined;
  };
  const podLabels = workloads.map((w) => ({
    namespace: w.namespace,
    labels: w.value.spec.labels ?? {},
  }));
  const selects = (
    selector: Readonly<Record<string, string>>,
    namespace: string | undefined,
  ): boolean =>
    podLabels.some(
      (p) =>
        (namespace === undefined || p.namespace === namespace) && labelsMatch(selector, p.labels),
    );

  // Subsets defined per FQDN.
  const subsets = new Map<string, Set<string>>();
  for (const dr of rules) {
    const fqdn = resolve(dr.value.spec.host, dr.namespace);
    if (fqdn === undefined) {
      add('PAL0101', dr, `Referenced host not found: ${JSON.stringify(dr.value.spec.host)}`);
      continue;
    }
    const set = subsets.get(fqdn) ?? new Set<string>();
    for (const s of dr.value.spec.subsets ?? []) set.add(s.name);
    subsets.set(fqdn, set);
    const tls = dr.value.spec.trafficPolicy?.tls;
    if (
      (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') &&
      tls.caCertificates === undefined &&
      tls.credentialName === undefined &&
      tls.insecureSkipVerify !== true
    )
      add(
        'PAL0107',
        dr,
        `DestinationRule ${dr.namespace}/${dr.name} has TLS mode ${tls.mode} but no caCertificates are set to validate server identity for host: ${dr.value.spec.host}`,
      );
  }

  const gatewayNames = new Set(gateways.map((g) => `${g.namespace}/${g.name}`));
  const hostOwners = new Map<string, Obj<VirtualService>[]>();
  for (const vs of virtualServices) {
    const spec = vs.value.spec;
    const bound = (spec.gateways ?? []).length === 0 ? ['mesh'] : (spec.gateways ?? []);
    for (const g of bound) {
      if (g === 'mesh') continue;
      const qualified = g.includes('/') ? g : `${vs.namespace}/${g}`;
      if (!gatewayNames.has(qualified))
        add('PAL0103', vs, `Referenced gateway not found: ${JSON.stringify(g)}`);
    }
    for (const host of spec.hosts ?? [])
      for (const g of bound) {
        const key = `${g === 'mesh' ? 'mesh' : g.includes('/') ? g : `${vs.namespace}/${g}`}|${resolve(host, vs.namespace) ?? host}`;
        hostOwners.set(key, [...(hostOwners.get(key) ?? []), vs]);
      }
    const destinations = (spec.http ?? []).flatMap((r) => [
      ...(r.route ?? []).map((d) => d.destination),
      ...(r.mirror === undefined ? [] : [r.mirror]),
    ]);
    const tcpTls = [...(spec.tcp ?? []), ...(spec.tls ?? [])].flatMap((r) =>
      (r.route ?? []).map((d) => d.destination),
    );
    for (const d of [...destinations, ...tcpTls]) {
      const fqdn = resolve(d.host, vs.namespace);
      if (fqdn === undefined) {
        add('PAL0101', vs, `Referenced host not found: ${JSON.stringify(d.host)}`);
        continue;
      }
      if (d.subset !== undefined && !(subsets.get(fqdn)?.has(d.subset) ?? false))
        add(
          'PAL0102',
          vs,
          `Referenced host+subset in destinationrule not found: ${JSON.stringify(`${d.host}+${d.subset}`)}`,
        );
    }
    // Unreachable rules: anything after a rule without matches; duplicate matches.
    const http = spec.http ?? [];
    const seen = new Map<string, string>();
    http.forEach((r, i) => {
      if (i > 0 && (http[i - 1]?.match ?? []).length === 0)
        add(
          'PAL0106',
          vs,
          `VirtualService rule #${String(i)} not used (only the last rule can have no matches; any subsequent rules will be ignored).`,
        );
      (r.match ?? []).forEach((m, j) => {
        const key = JSON.stringify(m);
        const earlier = seen.get(key);
        if (earlier !== undefined)
          add(
            'PAL0106',
            vs,
            `VirtualService rule #${String(i)} match #${String(j)} is not used (duplicate/overlapping match in ${earlier}).`,
          );
        else seen.set(key, `rule #${String(i)} match #${String(j)}`);
      });
    });
  }
  for (const [key, owners] of hostOwners) {
    if (owners.length < 2) continue;
    const [gateway, host] = key.split('|');
    const first = owners[0];
    if (first === undefined) continue;
    add(
      'PAL0105',
      first,
      `The VirtualServices ${owners.map((o) => `${o.namespace}/${o.name}`).join(', ')} associated with ${gateway ?? 'mesh'} define the same host ${host ?? ''} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
    );
  }

  // Selectors matching no workloads (gateways may be the built-in ones).
  for (const g of gateways) {
    const sel = g.value.spec.selector ?? {};
    if (!BUILTIN_GATEWAY_LABELS.some((b) => labelsMatch(sel, b)) && !selects(sel, undefined))
      add(
        'PAL0104',
        g,
        `No matching workloads for this resource with the following labels: ${Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`,
      );
  }
  for (const kind of ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication']) {
    for (const o of of<{ spec?: { selector?: { matchLabels: Record<string, string> } } }>(kind)) {
      const sel = o.value.spec?.selector?.matchLabels;
      if (sel === undefined) continue;
      const namespaceScope = o.namespace === root ? undefined : o.namespace;
      if (!selects(sel, namespaceScope) && !BUILTIN_GATEWAY_LABELS.some((b) => labelsMatch(sel, b)))
        add(
          'PAL0104',
          o,
          `No matching workloads for this resource with the following labels: ${Object.entries(sel)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')}`,
        );
    }
  }
  for (const o of of<{ spec: { workloadSelector?: { labels: Record<string, string> } } }>(
    'Sidecar',
  )) {
    const sel = o.value.spec.workloadSelector?.labels;
    if (sel !== undefined && !selects(sel, o.namespace))
      add(
        'PAL0104',
        o,
        `No matching workloads for this resource with the following labels: ${Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`,
      );
  }

  // Weaker mTLS than the mesh-wide STRICT policy.
  const peerAuthns = of<PeerAuthentication>('PeerAuthentication');
  const meshStrict = peerAuthns.some(
    (p) =>
      p.namespace === root &&
      p.value.spec?.selector === undefined &&
      p.value.spec?.mtls?.mode === 'STRICT',
  );
  if (meshStrict) {
    for (const p of peerAuthns) {
      if (p.namespace === root && p.value.spec?.selector === undefined) continue;
      const modes = [
        p.value.spec?.mtls?.mode,
        ...Object.values(p.value.spec?.portLevelMtls ?? {}).map((m) => m.mode),
      ];
      const weak = modes.find((m) => m === 'PERMISSIVE' || m === 'DISABLE');
      if (weak !== undefined)
        add(
          'PAL0108',
          p,
          `mTLS mode ${weak} weakens the mesh-wide STRICT policy (${root}): plaintext is accepted ${p.value.spec?.selector === undefined ? `in namespace ${p.namespace}` : 'by the selected workloads'}`,
        );
    }
    for (const dr of rules)
      if (
        dr.value.spec.trafficPolicy?.tls?.mode === 'DISABLE' &&
        services.some(
          (s) =>
            resolve(dr.value.spec.host, dr.namespace) === `${s.name}.${s.namespace}.svc.${DOMAIN}`,
        )
      )
        add(
          'PAL0108',
          dr,
          `TLS mode DISABLE toward ${dr.value.spec.host}, whose workloads require mTLS (mesh-wide STRICT): requests will fail`,
        );
  }

  for (const s of services)
    s.value.spec.ports.forEach((p, i) => {
      const name = p.name ?? '';
      const proto = (p.appProtocol ?? name).toLowerCase().split('-')[0] ?? '';
      if (
        ![
          'http',
          'http2',
          'https',
          'grpc',
          'grpc-web',
          'tcp',
          'tls',
          'mongo',
          'mysql',
          'redis',
          'udp',
        ].includes(proto)
      )
        add(
          'PAL0109',
          s,
          `Port name ${JSON.stringify(name)} (port: ${String(p.port)}, targetPort: ${String(p.targetPort ?? p.port)}) doesn't follow the naming convention of Istio port (spec.ports[${String(i)}]): the protocol is treated as TCP`,
        );
    });

  // Stable order: file, then object order within the file, then check order.
  const fileOrder = new Map<string, number>();
  const objectOrder = new Map<string, number>();
  manifests.forEach((m, i) => {
    if (!fileOrder.has(m.file)) fileOrder.set(m.file, i);
    const h = objectHeader(m.object);
    const key = `${m.file}|${h?.kind ?? 'Unknown'}|${h?.name ?? `document ${String(m.index + 1)}`}`;
    if (!objectOrder.has(key)) objectOrder.set(key, m.index);
  });
  const rank = (f: Finding): number => objectOrder.get(`${f.file}|${f.kind}|${f.name}`) ?? 0;
  return findings
    .map((f, i) => ({ f, i }))
    .sort(
      (a, b) =>
        (fileOrder.get(a.f.file) ?? 0) - (fileOrder.get(b.f.file) ?? 0) ||
        rank(a.f) - rank(b.f) ||
        a.i - b.i,
    )
    .map(({ f }) => f);
}

/** The one-line form istioctl prints: `Error [PAL0101] (VirtualService default/reviews) …`. */
export function formatFinding(f: Finding): string {
  return `${f.level} [${f.code}] (${f.kind} ${f.namespace === '' ? '' : `${f.namespace}/`}${f.name}) ${f.message}`;
}
