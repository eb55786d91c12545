/**
 * `palisade top` — per-workload request rate, success rate and latency of a
 * running mesh, from two scrapes of every proxy's Istio metrics (the columns
 * of `linkerd viz stat`).
 */
import { computeWorkloadStats, createMeshData, scrapeAll } from '../../dashboard/index.js';
import { PalisadeError } from '../../errors/index.js';
import { findMeshState } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { table } from './proxy-status.js';

const pct = (n: number | null): string => (n === null ? '-' : `${(n * 100).toFixed(2)}%`);
const ms = (n: number | null): string =>
  n === null ? '-' : `${String(Math.round(n * 10) / 10)}ms`;

export const topCommand: Command = {
  path: ['top'],
  summary: 'Show per-workload RPS, success rate and p50/p99 latency of a running mesh',
  usage: `Usage: palisade top [--state-dir DIR] [--window-ms 5000] [-o json]

Scrapes every proxy's admin /stats/prometheus twice, --window-ms apart
(default 5000), and prints per workload what it served in that window, as
linkerd viz stat does: SUCCESS (responses that were not 5xx or missing), RPS,
LATENCY_P50 and LATENCY_P99 (from istio_request_duration_milliseconds, as
histogram_quantile estimates them) and MTLS (the share of requests that came
over mutual TLS). Gateways show what they forwarded. DIR is the running mesh
(default: the one under .palisade/).`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        'state-dir': { type: 'string' },
        'window-ms': { type: 'string' },
        output: { type: 'string', short: 'o' },
      },
      false,
    );
    const windowMs = Number(values['window-ms'] ?? 5000);
    if (!Number.isInteger(windowMs) || windowMs < 100 || windowMs > 600_000)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--window-ms: ${String(values['window-ms'])} is not 100..600000`,
      );
    if (values.output !== undefined && values.output !== 'json')
      throw new PalisadeError('PAL_ERR_USAGE', `-o: ${values.output} is not supported (use json)`);
    const data = createMeshData({
      stateDir: findMeshState(values['state-dir'], io.cwd),
      intervalMs: 3_600_000,
    });
    try {
      const workloads = data.workloads();
      const first = await scrapeAll(workloads);
      await new Promise((r) => setTimeout(r, windowMs));
      const second = await scrapeAll(workloads);
      const stats = computeWorkloadStats(workloads, first, second);
      if (values.output === 'json') {
        io.stdout(`${JSON.stringify({ windowMs, workloads: stats }, null, 2)}\n`);
        return 0;
      }
      io.stdout(
        table(
          ['NAME', 'NAMESPACE', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P99', 'MTLS'],
          stats.map((s) => [
            s.workload,
            s.namespace,
            pct(s.successRate),
            s.rps.toFixed(2),
            ms(s.p50Ms),
            ms(s.p99Ms),
            pct(s.mtlsRate),
          ]),
        ),
      );
      return 0;
    } finally {
      data.close();
    }
  },
};
