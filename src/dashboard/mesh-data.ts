/**
 * The dashboard's data sources for a running mesh: scrapes of every proxy's
 * admin `/stats/prometheus` (kept for a window so rates come from two
 * scrapes), certificates from each proxy's `/certs`, recent denials from
 * `/tap/denies`, and the control plane's debug API for the proxy-status
 * table. Every request to a proxy is loopback HTTP with a deadline; a proxy
 * that does not answer is left out of that round, never waited for.
 */
import * as http from 'node:http';
import { callDebug, type SyncStatusReply } from '../control/index.js';
import { parsePrometheusText } from './prometheus-text.js';
import {
  computeServiceGraph,
  computeWorkloadStats,
  type MeshWorkload,
  type ProxyScrape,
  type ServiceGraph,
  type WorkloadStats,
} from './service-graph.js';
import {
  debugAccessOf,
  meshWorkloads,
  readConfigObjects,
  readMeshState,
  trustDomainOf,
  type MeshState,
} from './mesh-topology.js';

/** GET `url` (loopback) and return status and body, or undefined on failure/timeout. */
export function httpGet(
  url: string,
  timeoutMs = 3000,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    // No keep-alive pool: idle pooled sockets would hold a short CLI run (top) open.
    const req = http.get(url, { timeout: timeoutMs, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // A scrape of 1,000 series is ~60 MB at most (mesh-metrics.ts); refuse beyond that.
        if (size > 64 * 1024 * 1024) req.destroy();
        else chunks.push(c);
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', () => {
        resolve(undefined);
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(undefined);
    });
  });
}

const KEEP = (n: string): boolean =>
  n === 'istio_requests_total' || n === 'istio_request_duration_milliseconds_bucket';

/** Scrapes every proxy of the given workloads once (in parallel). */
export async function scrapeAll(workloads: readonly MeshWorkload[]): Promise<ProxyScrape[]> {
  const jobs = workloads.flatMap((w) =>
    w.proxies.map(async (p): Promise<ProxyScrape | undefined> => {
      const r = await httpGet(`${p.adminUrl}/stats/prometheus`);
      if (r?.status !== 200) return undefined;
      return {
        proxy: p.name,
        workloadId: w.id,
        atMs: Date.now(),
        samples: parsePrometheusText(r.body, KEEP),
      };
    }),
  );
  return (await Promise.all(jobs)).filter((s): s is ProxyScrape => s !== undefined);
}

/** Options of {@link createMeshData}. */
export interface MeshDataOptions {
  readonly stateDir: string;
  /** Rates are computed over (up to) this window; default 30 s. */
  readonly windowMs?: number;
  /** Scrape interval; default 2 s. */
  readonly intervalMs?: number;
}

/** Live data of one mesh. */
export interface MeshData {
  state(): MeshState;
  workloads(): MeshWorkload[];
  graph(): ServiceGraph;
  top(): WorkloadStats[];
  /** One scrape round now (the interval also runs them). */
  scrape(): Promise<void>;
  syncStatus(): Promise<SyncStatusReply>;
  close(): void;
}

/** Starts scraping the mesh in `stateDir` every `intervalMs`. */
export function createMeshData(options: MeshDataOptions): MeshData {
  const windowMs = options.windowMs ?? 30_000;
  const rounds: { atMs: number; scrapes: ProxyScrape[] }[] = [];
  let state = readMeshState(options.stateDir);
  const trustDomain = trustDomainOf(options.stateDir);
  const workloads = (): MeshWorkload[] => {
    try {
      state = readMeshState(options.stateDir);
    } catch {
      // keep the last good mesh.json (up rewrites it while adding dashboardUrl)
    }
    return meshWorkloads(state, readConfigObjects(state.configDir), trustDomain);
  };
  const window = (): [ProxyScrape[], ProxyScrape[]] => {
    const newest = rounds.at(-1);
    if (newest === undefined) return [[], []];
    const oldest = rounds.find((r) => r.atMs >= newest.atMs - windowMs) ?? newest;
    return [oldest.scrapes, newest.scrapes];
  };
  let running: Promise<void> | undefined;
  const scrape = (): Promise<void> => {
    running ??= scrapeAll(workloads())
      .then((scrapes) => {
        const now = Date.now();
        rounds.push({ atMs: now, scrapes });
        // Keep one round older than the window, so the window is always spanned.
        while (rounds.length > 2 && (rounds[1]?.atMs ?? now) < now - windowMs) rounds.shift();
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void scrape(), options.intervalMs ?? 2000);
  timer.unref();
  return {
    state: () => state,
    workloads,
    graph() {
      const [prev, curr] = window();
      return computeServiceGraph(workloads(), prev, curr);
    },
    top() {
      const [prev, curr] = window();
      return computeWorkloadStats(workloads(), prev, curr);
    },
    scrape,
    syncStatus: () =>
      callDebug<SyncStatusReply>(state.control, 'SyncStatus', {}, debugAccessOf(options.stateDir)),
    close() {
      clearInterval(timer);
    },
  };
}
