/**
 * The service graph (Kiali's core view) computed from the Istio standard
 * metrics of every proxy: two scrapes of each proxy's `/stats/prometheus`
 * give per-edge request rates, error rates and latency quantiles over the
 * window between them, the way Kiali computes them from Prometheus
 * (`rate(istio_requests_total[w])`, `histogram_quantile(q,
 * rate(istio_request_duration_milliseconds_bucket[w]))`).
 *
 * Which end is known: a destination-side series (reporter="destination")
 * always knows its destination (the proxy that was scraped) and its source's
 * SPIFFE ID when mTLS proved it; a source-side series (reporter="source")
 * knows its source and the destination service and subset. When the peer's
 * workload label is filled (peer metadata exchange) it is used as is;
 * otherwise the source is found from its SPIFFE ID when exactly one workload
 * runs as that service account, and the destination from the service host
 * and subset when exactly one workload backs them. Kiali uses the
 * destination reporter for mesh-internal edges and the source reporter for
 * traffic leaving the mesh; this does the same, and falls back to the source
 * reporter when the destination side cannot name the source (several
 * workloads share one service account, as Bookinfo's reviews v1–v3 do).
 * `mtls` comes from the destination's `connection_security_policy` (only the
 * server knows it, as in Istio).
 */
import type { Sample } from './prometheus-text.js';

/** A workload of the mesh (from mesh.json and its Workload resources). */
export interface MeshWorkload {
  /** `<workload>.<namespace>`. */
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  readonly app?: string | undefined;
  readonly version?: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** `spiffe://<trust domain>/ns/<ns>/sa/<sa>`. */
  readonly principal: string;
  readonly kind: 'workload' | 'gateway';
  /** Service hosts (`name.ns.svc.cluster.local`) whose selector picks this workload. */
  readonly services: readonly string[];
  readonly ports: readonly number[];
  readonly proxies: readonly { readonly name: string; readonly adminUrl: string }[];
}

/** One scrape of one proxy. */
export interface ProxyScrape {
  readonly proxy: string;
  /** The workload the proxy serves (`MeshWorkload.id`). */
  readonly workloadId: string;
  readonly atMs: number;
  readonly samples: readonly Sample[];
}

/** A node of `GET /api/graph`. */
export interface GraphNode {
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  readonly version: string;
  readonly app: string;
  readonly kind: 'workload' | 'gateway' | 'service' | 'external' | 'unknown';
  /** Service names this node serves (short names). */
  readonly services: readonly string[];
  readonly principal: string | null;
}

/** An edge of `GET /api/graph`. */
export interface GraphEdge {
  readonly source: string;
  readonly target: string;
  /** Requests per second over the window. */
  readonly rps: number;
  /** Fraction (0–1) of requests answered with no response, 4xx or 5xx. */
  readonly errorRate: number;
  /** Requests per second denied by policy (403). */
  readonly deniedRps: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly mtls: boolean;
  /** Which proxy's report the numbers come from. */
  readonly reporter: 'source' | 'destination';
  /** Status codes seen in the window, with their request counts. */
  readonly codes: Readonly<Record<string, number>>;
}

/** `GET /api/graph`. */
export interface ServiceGraph {
  readonly nodes: GraphNode[];
  readonly edges: GraphEdge[];
  /** Seconds between the two scrapes the rates come from (0: only one scrape yet). */
  readonly windowSeconds: number;
  readonly generatedAt: string;
}

const UNKNOWN = 'unknown';
const known = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== UNKNOWN;

/** A series' labels without `le`, as a stable key. */
function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  return `${name}|${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',')}`;
}

/** What a series increased by between two scrapes (a reset counts from zero, as `rate()` does). */
function deltas(
  prev: ProxyScrape,
  curr: ProxyScrape,
  keep: (name: string) => boolean,
): { sample: Sample; delta: number }[] {
  const before = new Map<string, number>();
  for (const s of prev.samples) if (keep(s.name)) before.set(seriesKey(s.name, s.labels), s.value);
  const out: { sample: Sample; delta: number }[] = [];
  for (const s of curr.samples) {
    if (!keep(s.name)) continue;
    const old = before.get(seriesKey(s.name, s.labels)) ?? 0;
    const delta = s.value >= old ? s.value - old : s.value;
    // Unchanged buckets stay: histogram_quantile needs the empty ones below the rank as lower bounds.
    if (delta > 0 || s.name.endsWith('_bucket')) out.push({ sample: s, delta });
  }
  return out;
}

/**
 * `histogram_quantile`'s estimate (Prometheus: linear interpolation within the
 * bucket the rank falls in; the +Inf bucket answers the highest finite bound).
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | null {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      if (count === lowerCount) return le;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

interface Acc {
  requests: number;
  errors: number;
  denied: number;
  mtls: number;
  codes: Map<string, number>;
  buckets: Map<number, number>;
}

const newAcc = (): Acc => ({
  requests: 0,
  errors: 0,
  denied: 0,
  mtls: 0,
  codes: new Map(),
  buckets: new Map(),
});

/** Index of the mesh's workloads by identity and service, for naming a series' ends. */
class Directory {
  readonly byId = new Map<string, MeshWorkload>();
  readonly #byPrincipal = new Map<string, MeshWorkload[]>();
  readonly #byService = new Map<string, MeshWorkload[]>();
  readonly #byName = new Map<string, MeshWorkload>();

  constructor(workloads: readonly MeshWorkload[]) {
    for (const w of workloads) {
      this.byId.set(w.id, w);
      this.#byName.set(`${w.workload}|${w.namespace}`, w);
      this.#byPrincipal.set(w.principal, [...(this.#byPrincipal.get(w.principal) ?? []), w]);
      for (const host of w.services)
        this.#byService.set(host, [...(this.#byService.get(host) ?? []), w]);
    }
  }

  named(workload: string, namespace: string | undefined): MeshWorkload | undefined {
    if (namespace !== undefined && known(namespace))
      return this.#byName.get(`${workload}|${namespace}`);
    return [...this.byId.values()].find((w) => w.workload === workload);
  }

  /** The one workload running as `principal`; undefined when none or several. */
  byPrincipal(principal: string): MeshWorkload | undefined {
    const all = this.#byPrincipal.get(principal) ?? [];
    return all.length === 1 ? all[0] : undefined;
  }

  /** Workloads behind a service host, narrowed by the subset's version when one was routed to. */
  behind(host: string, version: string | undefined): MeshWorkload[] {
    const all = this.#byService.get(host) ?? [];
    if (!known(version)) return all;
    const narrowed = all.filter((w) => w.version === version || w.labels['version'] === version);
    return narrowed.length > 0 ? narrowed : all;
  }

  isMeshService(host: string): boolean {
    return this.#byService.has(host);
  }
}

/** A node that is not a workload: a service backed by several workloads, an external host, or an unknown caller. */
function extraNode(
  id: string,
  kind: 'service' | 'external' | 'unknown',
  name: string,
  namespace: string,
): GraphNode {
  return {
    id,
    workload: name,
    namespace,
    version: '',
    app: '',
    kind,
    services: kind === 'service' ? [name] : [],
    principal: null,
  };
}

/**
 * Computes the graph from the previous and current scrape of every proxy.
 * Every workload is a node (idle ones too); services, external hosts and
 * unidentified callers become nodes when traffic names them.
 */
export function computeServiceGraph(
  workloads: readonly MeshWorkload[],
  previous: readonly ProxyScrape[],
  current: readonly ProxyScrape[],
): ServiceGraph {
  const dir = new Directory(workloads);
  const extra = new Map<string, GraphNode>();
  const edges = {
    destination: new Map<string, Acc>(),
    source: new Map<string, Acc>(),
  };
  // The destination side's mTLS verdict per (destination, caller principal), for source-side edges.
  const mtlsSeen = new Map<string, boolean>();
  const prevByProxy = new Map(previous.map((s) => [s.proxy, s]));
  let windowSeconds = 0;

  const sourceOf = (labels: Readonly<Record<string, string>>): string | undefined => {
    const wl = labels['source_workload'];
    if (known(wl)) {
      const w = dir.named(wl, labels['source_workload_namespace']);
      if (w !== undefined) return w.id;
    }
    const principal = labels['source_principal'];
    if (!known(principal)) {
      extra.set(UNKNOWN, extraNode(UNKNOWN, 'unknown', UNKNOWN, ''));
      return UNKNOWN;
    }
    return dir.byPrincipal(principal)?.id; // undefined: several workloads share the identity
  };
  const destinationOf = (labels: Readonly<Record<string, string>>): string | undefined => {
    const wl = labels['destination_workload'];
    if (known(wl)) {
      const w = dir.named(wl, labels['destination_workload_namespace']);
      if (w !== undefined) return w.id;
    }
    const host = labels['destination_service'];
    if (!known(host)) return undefined;
    if (!dir.isMeshService(host)) {
      const id = `external:${host}`;
      extra.set(id, extraNode(id, 'external', host, ''));
      return id;
    }
    const behind = dir.behind(host, labels['destination_version']);
    if (behind.length === 1) return behind[0]?.id;
    const id = `service:${host}`;
    const [name, ns] = host.split('.');
    extra.set(id, extraNode(id, 'service', name ?? host, ns ?? ''));
    return id;
  };

  for (const curr of current) {
    const prev = prevByProxy.get(curr.proxy);
    if (prev === undefined || curr.atMs <= prev.atMs) continue;
    windowSeconds = Math.max(windowSeconds, (curr.atMs - prev.atMs) / 1000);
    const seconds = (curr.atMs - prev.atMs) / 1000;
    const changed = deltas(
      prev,
      curr,
      (n) => n === 'istio_requests_total' || n === 'istio_request_duration_milliseconds_bucket',
    );
    for (const { sample, delta } of changed) {
      const l = sample.labels;
      const reporter = l['reporter'] === 'source' ? 'source' : 'destination';
      const source = reporter === 'source' ? curr.workloadId : sourceOf(l);
      const target = reporter === 'destination' ? curr.workloadId : destinationOf(l);
      if (reporter === 'destination' && sample.name === 'istio_requests_total') {
        const key = `${curr.workloadId}|${l['source_principal'] ?? ''}`;
        mtlsSeen.set(
          key,
          (mtlsSeen.get(key) ?? true) && l['connection_security_policy'] === 'mutual_tls',
        );
      }
      if (source === undefined || target === undefined) continue;
      const key = `${source}>${target}`;
      const map = edges[reporter];
      const acc = map.get(key) ?? newAcc();
      map.set(key, acc);
      const perSecond = delta / seconds;
      if (sample.name === 'istio_requests_total') {
        const code = l['response_code'] ?? '0';
        const status = Number(code);
        acc.requests += perSecond;
        acc.codes.set(code, (acc.codes.get(code) ?? 0) + delta);
        if (status === 0 || status >= 400) acc.errors += perSecond;
        if (status === 403) acc.denied += perSecond;
        if (l['connection_security_policy'] === 'mutual_tls') acc.mtls += perSecond;
      } else {
        const le = l['le'] === '+Inf' ? Infinity : Number(l['le']);
        if (!Number.isNaN(le)) acc.buckets.set(le, (acc.buckets.get(le) ?? 0) + delta);
      }
    }
  }

  const out: GraphEdge[] = [];
  const finish = (key: string, acc: Acc, reporter: 'source' | 'destination'): void => {
    if (acc.requests === 0) return; // only histogram buckets that did not move
    const [source = '', target = ''] = key.split('>');
    let mtls = acc.requests > 0 && acc.mtls >= acc.requests * 0.999;
    if (reporter === 'source') {
      const caller = dir.byId.get(source)?.principal;
      mtls = caller !== undefined && mtlsSeen.get(`${target}|${caller}`) === true;
    }
    out.push({
      source,
      target,
      rps: round(acc.requests),
      errorRate: acc.requests > 0 ? round(acc.errors / acc.requests) : 0,
      deniedRps: round(acc.denied),
      p50Ms: roundOrNull(histogramQuantile(0.5, acc.buckets)),
      p99Ms: roundOrNull(histogramQuantile(0.99, acc.buckets)),
      mtls,
      reporter,
      codes: Object.fromEntries(acc.codes),
    });
  };
  for (const [key, acc] of edges.destination) finish(key, acc, 'destination');
  const reported = new Set(
    [...edges.destination].filter(([, acc]) => acc.requests > 0).map(([key]) => key),
  );
  // A source-side edge is used only where the destination side could not name the caller:
  // `productpage > service:reviews` is dropped when reviews v1–v3 reported productpage's calls.
  for (const [key, acc] of edges.source) {
    const [source = '', target = ''] = key.split('>');
    const targets = target.startsWith('service:')
      ? dir.behind(target.slice('service:'.length), undefined).map((w) => w.id)
      : [target];
    if (targets.some((t) => reported.has(`${source}>${t}`))) continue;
    finish(key, acc, 'source');
  }
  out.sort((a, b) => a.source.localeCompare(b.source) || a.target.localeCompare(b.target));

  const nodes: GraphNode[] = [
    ...workloads.map((w): GraphNode => ({
      id: w.id,
      workload: w.workload,
      namespace: w.namespace,
      version: w.version ?? '',
      app: w.app ?? '',
      kind: w.kind,
      services: w.services.map((h) => h.split('.')[0] ?? h),
      principal: w.principal,
    })),
    // Services, external hosts and unknown callers only while an edge names them.
    ...[...extra.values()].filter((n) => out.some((e) => e.source === n.id || e.target === n.id)),
  ];
  return {
    nodes,
    edges: out,
    windowSeconds: round(windowSeconds),
    generatedAt: new Date().toISOString(),
  };
}

const round = (n: number): number => Math.round(n * 1000) / 1000;
const roundOrNull = (n: number | null): number | null => (n === null ? null : round(n));

/** One row of `palisade top` / `GET /api/top` (Linkerd's `viz stat`: what a workload served). */
export interface WorkloadStats {
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  /** Inbound requests per second. */
  readonly rps: number;
  /** Fraction of inbound requests answered without error (no 5xx, no missing response); null when idle. */
  readonly successRate: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Inbound requests that arrived over mutual TLS, as a fraction; null when idle. */
  readonly mtlsRate: number | null;
}

/**
 * Per-workload inbound statistics from the destination side's reports (for
 * gateways, which have no inbound sidecar side, from what they sent on).
 * Success follows Linkerd's `viz stat`: a 4xx is a successful response of
 * the server; no response or a 5xx is a failure.
 */
export function computeWorkloadStats(
  workloads: readonly MeshWorkload[],
  previous: readonly ProxyScrape[],
  current: readonly ProxyScrape[],
): WorkloadStats[] {
  const prevByProxy = new Map(previous.map((s) => [s.proxy, s]));
  const acc = new Map<
    string,
    { req: number; fail: number; mtls: number; buckets: Map<number, number> }
  >();
  for (const curr of current) {
    const prev = prevByProxy.get(curr.proxy);
    if (prev === undefined || curr.atMs <= prev.atMs) continue;
    const seconds = (curr.atMs - prev.atMs) / 1000;
    const w = workloads.find((x) => x.id === curr.workloadId);
    const reporter = w?.kind === 'gateway' ? 'source' : 'destination';
    const a = acc.get(curr.workloadId) ?? {
      req: 0,
      fail: 0,
      mtls: 0,
      buckets: new Map<number, number>(),
    };
    acc.set(curr.workloadId, a);
    for (const { sample, delta } of deltas(
      prev,
      curr,
      (n) => n === 'istio_requests_total' || n === 'istio_request_duration_milliseconds_bucket',
    )) {
      if (sample.labels['reporter'] !== reporter) continue;
      if (sample.name === 'istio_requests_total') {
        const status = Number(sample.labels['response_code'] ?? '0');
        a.req += delta / seconds;
        if (status === 0 || status >= 500) a.fail += delta / seconds;
        if (sample.labels['connection_security_policy'] === 'mutual_tls') a.mtls += delta / seconds;
      } else {
        const le = sample.labels['le'] === '+Inf' ? Infinity : Number(sample.labels['le']);
        if (!Number.isNaN(le)) a.buckets.set(le, (a.buckets.get(le) ?? 0) + delta);
      }
    }
  }
  return workloads.map((w) => {
    const a = acc.get(w.id);
    const busy = a !== undefined && a.req > 0;
    return {
      id: w.id,
      workload: w.workload,
      namespace: w.namespace,
      rps: round(a?.req ?? 0),
      successRate: busy ? round(1 - a.fail / a.req) : null,
      p50Ms: busy ? roundOrNull(histogramQuantile(0.5, a.buckets)) : null,
      p99Ms: busy ? roundOrNull(histogramQuantile(0.99, a.buckets)) : null,
      mtlsRate: busy && w.kind !== 'gateway' ? round(a.mtls / a.req) : null,
    };
  });
}
