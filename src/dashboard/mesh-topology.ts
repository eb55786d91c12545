/**
 * What the dashboard knows about a running mesh: `<state>/mesh.json` (written
 * by `palisade up`: the control plane address, every proxy's admin URL, and
 * when present the Prometheus and trace receiver URLs) and the mesh's config
 * directory (Workloads, Services and the security policies, re-read on every
 * request so `palisade apply` shows at once).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readManifests, type Manifest } from '../api/index.js';
import { DEBUG_TOKEN_FILE, type DebugAccess } from '../control/index.js';
import { PalisadeError } from '../errors/index.js';
import { CA_FILES } from '../identity/index.js';
import type { MeshWorkload } from './service-graph.js';

/** The fields of mesh.json the dashboard reads (others are ignored). */
export interface MeshState {
  readonly name: string;
  readonly stateDir: string;
  readonly configDir: string;
  readonly control: string;
  readonly proxies: readonly {
    readonly name: string;
    readonly nodeId: string;
    readonly adminUrl: string;
  }[];
  readonly prometheusUrl?: string;
  readonly tracesUrl?: string;
  readonly dashboardUrl?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks `<stateDir>/mesh.json`. */
export function readMeshState(stateDir: string): MeshState {
  const file = join(stateDir, 'mesh.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new PalisadeError(
      'PAL_ERR_FILE_READ',
      `${file}: cannot read the running mesh (${(error as Error).message}); start it with palisade up -f examples/bookinfo, or pass --state-dir`,
      { cause: error },
    );
  }
  const problems: string[] = [];
  const str = (o: Record<string, unknown>, key: string, where: string): string => {
    const v = o[key];
    if (typeof v !== 'string' || v === '')
      problems.push(`${where}.${key}: must be a non-empty string`);
    return typeof v === 'string' ? v : '';
  };
  if (!isRecord(parsed)) throw new PalisadeError('PAL_ERR_FILE_READ', `${file}: not a JSON object`);
  const proxies = Array.isArray(parsed['proxies']) ? parsed['proxies'] : [];
  const state: MeshState = {
    name: str(parsed, 'name', 'mesh'),
    stateDir,
    configDir: str(parsed, 'configDir', 'mesh'),
    control: str(parsed, 'control', 'mesh'),
    proxies: proxies.map((p: unknown, i) => {
      const o = isRecord(p) ? p : {};
      const where = `mesh.proxies[${String(i)}]`;
      return {
        name: str(o, 'name', where),
        nodeId: str(o, 'nodeId', where),
        adminUrl: str(o, 'adminUrl', where),
      };
    }),
    ...(typeof parsed['prometheusUrl'] === 'string'
      ? { prometheusUrl: parsed['prometheusUrl'] }
      : {}),
    ...(typeof parsed['tracesUrl'] === 'string' ? { tracesUrl: parsed['tracesUrl'] } : {}),
    ...(typeof parsed['dashboardUrl'] === 'string' ? { dashboardUrl: parsed['dashboardUrl'] } : {}),
  };
  if (problems.length > 0)
    throw new PalisadeError('PAL_ERR_FILE_READ', `${file}: ${problems.join('; ')}`);
  return state;
}

/** The mesh's trust domain (the CA's, default cluster.local). */
export function trustDomainOf(stateDir: string): string {
  try {
    const meta = JSON.parse(readFileSync(join(stateDir, 'ca', CA_FILES.meta), 'utf8')) as {
      trustDomain?: unknown;
    };
    if (typeof meta.trustDomain === 'string') return meta.trustDomain;
  } catch {
    // no CA metadata: the default
  }
  return 'cluster.local';
}

/** How to reach the control plane's debug API: its TLS root and the operator token `up` wrote. */
export function debugAccessOf(stateDir: string): DebugAccess {
  const tokenFile = join(stateDir, DEBUG_TOKEN_FILE);
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  const rootFile = join(stateDir, 'ca', CA_FILES.rootCert);
  if (!existsSync(rootFile)) return { transport: 'plaintext', token };
  return {
    transport: { rootPem: readFileSync(rootFile, 'utf8'), trustDomain: trustDomainOf(stateDir) },
    token,
  };
}

interface Obj {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  spec?: Record<string, unknown>;
}

/** The mesh's current config objects (the config dir `palisade apply` writes to). */
export function readConfigObjects(configDir: string): Manifest[] {
  try {
    return readManifests([configDir]);
  } catch {
    return [];
  }
}

const GATEWAYS: readonly { proxy: string; labels: Record<string, string> }[] = [
  {
    proxy: 'istio-ingressgateway',
    labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
  },
  { proxy: 'istio-egressgateway', labels: { istio: 'egressgateway', app: 'istio-egressgateway' } },
];

/**
 * The workloads of the mesh: every Workload resource (its proxies are
 * `<name>-<replica>-sidecar` in mesh.json) and the two gateways.
 */
export function meshWorkloads(
  state: MeshState,
  objects: readonly Manifest[],
  trustDomain: string,
): MeshWorkload[] {
  const services: { host: string; namespace: string; selector: Record<string, string> }[] = [];
  const out: MeshWorkload[] = [];
  for (const m of objects) {
    const o = m.object as Obj;
    const name = typeof o.metadata?.name === 'string' ? o.metadata.name : '';
    const namespace = typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : 'default';
    if (o.kind === 'Service' && isRecord(o.spec?.['selector']))
      services.push({
        host: `${name}.${namespace}.svc.cluster.local`,
        namespace,
        selector: o.spec['selector'] as Record<string, string>,
      });
  }
  const backing = (namespace: string, labels: Readonly<Record<string, string>>): string[] =>
    services
      .filter(
        (s) =>
          s.namespace === namespace &&
          Object.keys(s.selector).length > 0 &&
          Object.entries(s.selector).every(([k, v]) => labels[k] === v),
      )
      .map((s) => s.host);
  for (const m of objects) {
    const o = m.object as Obj;
    if (o.kind !== 'Workload' || typeof o.metadata?.name !== 'string') continue;
    const name = o.metadata.name;
    const namespace = typeof o.metadata.namespace === 'string' ? o.metadata.namespace : 'default';
    const spec = o.spec ?? {};
    const labels = isRecord(spec['labels']) ? (spec['labels'] as Record<string, string>) : {};
    const sa = typeof spec['serviceAccount'] === 'string' ? spec['serviceAccount'] : 'default';
    const ports = Array.isArray(spec['ports'])
      ? spec['ports']
          .map((p: unknown) => (isRecord(p) ? Number(p['port']) : NaN))
          .filter((n) => n > 0)
      : [];
    const proxyPrefix = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+-sidecar$`);
    out.push({
      id: `${name}.${namespace}`,
      workload: name,
      namespace,
      app: labels['app'],
      version: labels['version'],
      labels,
      serviceAccount: sa,
      principal: `spiffe://${trustDomain}/ns/${namespace}/sa/${sa}`,
      kind: 'workload',
      services: backing(namespace, labels),
      ports,
      proxies: state.proxies
        .filter((p) => proxyPrefix.test(p.name) && p.nodeId.includes(`.${namespace}~`))
        .map((p) => ({ name: p.name, adminUrl: p.adminUrl })),
    });
  }
  for (const g of GATEWAYS) {
    const proxies = state.proxies.filter((p) => p.name === g.proxy);
    if (proxies.length === 0) continue;
    const sa = `${g.proxy}-service-account`;
    out.push({
      id: `${g.proxy}.istio-system`,
      workload: g.proxy,
      namespace: 'istio-system',
      app: g.proxy,
      version: undefined,
      labels: g.labels,
      serviceAccount: sa,
      principal: `spiffe://${trustDomain}/ns/istio-system/sa/${sa}`,
      kind: 'gateway',
      services: [],
      ports: [],
      proxies: proxies.map((p) => ({ name: p.name, adminUrl: p.adminUrl })),
    });
  }
  return out;
}
