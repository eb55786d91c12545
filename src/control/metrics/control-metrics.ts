/**
 * The control plane's own metrics, served as Prometheus text on a monitoring
 * port like istiod's `:15014/metrics`, under Istio's metric names so the same
 * queries and dashboards work (https://istio.io/latest/docs/reference/commands/pilot-discovery/#metrics):
 *
 * - `pilot_xds{type}`                   gauge: connected xDS clients
 * - `pilot_xds_pushes{type}`            counter: responses sent, by xDS type (cds, eds, lds, rds, sds)
 * - `pilot_total_xds_rejects{type}`     counter: NACKs received, by type
 * - `pilot_xds_push_time_seconds`       histogram: time of one push to every proxy
 * - `citadel_server_csr_count`          counter: CSRs received
 * - `citadel_server_success_cert_issue_count` counter: certificates signed
 * - `citadel_server_csr_sign_error_count{error}` counter: CSRs refused
 *
 * Counting is a few integer increments on the push/NACK/CSR paths; rendering
 * happens only when scraped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** xDS resource kind → Istio's short type label (pilot's `type` label values). */
const TYPE_LABEL: Readonly<Record<string, string>> = {
  cluster: 'cds',
  endpoint: 'eds',
  listener: 'lds',
  route: 'rds',
  secret: 'sds',
};

/** Push-time histogram bounds in seconds (istiod uses .01 … 30). */
const PUSH_TIME_BOUNDS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

/** Events the xDS server and the CA report. */
export type ControlMetricEvent =
  | { readonly type: 'push'; readonly kind: string }
  | { readonly type: 'nack'; readonly kind: string }
  | { readonly type: 'pushAll'; readonly seconds: number }
  | { readonly type: 'csr'; readonly signed: boolean; readonly error?: string };

export interface ControlMetrics {
  record(event: ControlMetricEvent): void;
  /** Prometheus text exposition 0.0.4; `connected` is read at scrape time. */
  render(connected: { readonly type: string }[]): string;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelOf(kind: string): string {
  return TYPE_LABEL[kind] ?? kind;
}

export function createControlMetrics(): ControlMetrics {
  const pushes = new Map<string, number>();
  const rejects = new Map<string, number>();
  const pushBuckets = PUSH_TIME_BOUNDS.map(() => 0);
  let pushCount = 0;
  let pushSum = 0;
  let csrCount = 0;
  let issued = 0;
  const signErrors = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string): void => {
    m.set(k, (m.get(k) ?? 0) + 1);
  };
  return {
    record(event) {
      switch (event.type) {
        case 'push':
          bump(pushes, labelOf(event.kind));
          break;
        case 'nack':
          bump(rejects, labelOf(event.kind));
          break;
        case 'pushAll':
          pushCount += 1;
          pushSum += event.seconds;
          PUSH_TIME_BOUNDS.forEach((b, i) => {
            if (event.seconds <= b) pushBuckets[i] = (pushBuckets[i] ?? 0) + 1;
          });
          break;
        case 'csr':
          csrCount += 1;
          if (event.signed) issued += 1;
          else bump(signErrors, event.error ?? 'unknown');
          break;
      }
    },
    render(connected) {
      const lines: string[] = [];
      const byType = new Map<string, number>();
      for (const c of connected) bump(byType, c.type);
      const family = (name: string, type: string, help: string): void => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      };
      family('pilot_xds', 'gauge', 'Number of endpoints connected to this pilot using XDS.');
      if (byType.size === 0) lines.push('pilot_xds 0');
      for (const [t, n] of [...byType].sort())
        lines.push(`pilot_xds{type="${escapeLabel(t)}"} ${String(n)}`);
      family(
        'pilot_xds_pushes',
        'counter',
        'Pilot build and send errors for lds, rds, cds and eds.',
      );
      for (const [t, n] of [...pushes].sort())
        lines.push(`pilot_xds_pushes{type="${escapeLabel(t)}"} ${String(n)}`);
      family(
        'pilot_total_xds_rejects',
        'counter',
        'Total number of XDS responses from pilot rejected by proxy.',
      );
      for (const [t, n] of [...rejects].sort())
        lines.push(`pilot_total_xds_rejects{type="${escapeLabel(t)}"} ${String(n)}`);
      family(
        'pilot_xds_push_time_seconds',
        'histogram',
        'Total time in seconds Pilot takes to push lds, rds, cds and eds.',
      );
      PUSH_TIME_BOUNDS.forEach((b, i) => {
        lines.push(
          `pilot_xds_push_time_seconds_bucket{le="${String(b)}"} ${String(pushBuckets[i] ?? 0)}`,
        );
      });
      lines.push(
        `pilot_xds_push_time_seconds_bucket{le="+Inf"} ${String(pushCount)}`,
        `pilot_xds_push_time_seconds_sum ${String(pushSum)}`,
        `pilot_xds_push_time_seconds_count ${String(pushCount)}`,
      );
      family(
        'citadel_server_csr_count',
        'counter',
        'The number of CSRs received by Citadel server.',
      );
      lines.push(`citadel_server_csr_count ${String(csrCount)}`);
      family(
        'citadel_server_success_cert_issue_count',
        'counter',
        'The number of certificates issuances that have succeeded.',
      );
      lines.push(`citadel_server_success_cert_issue_count ${String(issued)}`);
      family(
        'citadel_server_csr_sign_error_count',
        'counter',
        'The number of errors occurred when signing the CSR.',
      );
      for (const [e, n] of [...signErrors].sort())
        lines.push(`citadel_server_csr_sign_error_count{error="${escapeLabel(e)}"} ${String(n)}`);
      return `${lines.join('\n')}\n`;
    },
  };
}

export interface MonitoringServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (and nothing else) on `host:port`. Plaintext like
 * istiod's 15014: the counters carry no secrets and no proxy identities.
 */
export async function startMonitoringServer(options: {
  readonly host: string;
  readonly port: number;
  readonly metrics: () => string;
}): Promise<MonitoringServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
      .end(options.metrics());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    port,
    url: `http://${host}:${String(port)}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
