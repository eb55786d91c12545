/**
 * The Prometheus configuration `palisade up --prometheus` generates: one
 * job for the proxies' admin `/stats/prometheus` (Istio's
 * `envoy-stats` job: every sidecar and gateway, labelled with the proxy's
 * name) and one for the control plane. Scrape interval 5 s (Istio's
 * sample Prometheus uses 15 s; a local mesh wants graphs that move quickly).
 */

/** One proxy to scrape. */
export interface PrometheusTarget {
  /** `host:port` of the admin endpoint. */
  readonly address: string;
  /** Proxy name (becomes the `pod` label, as Kubernetes service discovery sets it). */
  readonly name: string;
}

const quote = (s: string): string => JSON.stringify(s);

/** Renders prometheus.yml (YAML is a superset of JSON: values are quoted JSON strings). */
export function prometheusConfig(options: {
  readonly proxies: readonly PrometheusTarget[];
  readonly control?: string | undefined;
  readonly scrapeIntervalSeconds?: number | undefined;
}): string {
  const interval = `${String(options.scrapeIntervalSeconds ?? 5)}s`;
  const lines = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: envoy-stats',
    '    metrics_path: /stats/prometheus',
    '    static_configs:',
  ];
  for (const p of options.proxies)
    lines.push(
      `      - targets: [${quote(p.address)}]`,
      `        labels: { pod: ${quote(p.name)} }`,
    );
  if (options.control !== undefined)
    lines.push(
      '  - job_name: palisade-control',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${quote(options.control)}]`,
    );
  return `${lines.join('\n')}\n`;
}
