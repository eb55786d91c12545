/**
 * The observability side of `palisade up`: the trace receiver (in the `up`
 * process: it only holds recent spans in memory) and a supervised
 * Prometheus (Debian package `prometheus`) scraping every proxy. Ports start
 * at the usual ones (Prometheus 9090, the OTLP/HTTP receiver 4318) and move
 * up when taken (bounded search), always on 127.0.0.1.
 */
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prometheusConfig, startTraceReceiver, type TraceReceiver } from '../telemetry/index.js';
import { assertPortFree } from './address-allocation.js';
import type { ProcessSpec } from './supervisor.js';

/** The first free port on 127.0.0.1 from `preferred` (at most 100 tries). */
export async function freeLoopbackPort(
  preferred: number,
  wantedBy: string,
  host = '127.0.0.1',
): Promise<number> {
  for (let port = preferred; ; port += 1) {
    try {
      await assertPortFree(host, port, wantedBy);
      return port;
    } catch (error) {
      if (port - preferred >= 100) throw error;
    }
  }
}

/** Starts the trace receiver; proxies get `--otlp-endpoint` and sample every request. */
export async function startMeshTracing(bridgeIp?: string): Promise<{
  receiver: TraceReceiver;
  proxyArgs: string[];
}> {
  // netns mode: the proxies are in pods, where the host's loopback is not theirs; they reach
  // the host at its bridge address (as they reach the control plane).
  const host = bridgeIp ?? '127.0.0.1';
  const port = await freeLoopbackPort(4318, 'the trace receiver', host);
  const receiver = await startTraceReceiver({
    host,
    port,
    ...(bridgeIp === undefined ? {} : { meshBridge: true }),
  });
  // A local mesh is for looking at: every request is traced (Istio's default is 1 %).
  return { receiver, proxyArgs: ['--otlp-endpoint', receiver.url, '--trace-sampling', '100'] };
}

/** Writes prometheus.yml under the state dir and returns the process to supervise. */
export async function prometheusProcess(options: {
  readonly binary: string;
  readonly stateDir: string;
  readonly proxies: readonly { readonly name: string; readonly adminUrl: string }[];
  /** `host:port` of the control plane's monitoring endpoint (`/metrics`). */
  readonly control?: string;
}): Promise<{ spec: ProcessSpec; url: string }> {
  const port = await freeLoopbackPort(9090, 'Prometheus');
  const dir = join(options.stateDir, 'prometheus');
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    prometheusConfig({
      proxies: options.proxies.map((p) => ({
        name: p.name,
        address: new URL(p.adminUrl).host,
      })),
      control: options.control,
    }),
  );
  return {
    url: `http://127.0.0.1:${String(port)}/`,
    spec: {
      name: 'prometheus',
      command: options.binary,
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${String(port)}`,
        // Raw samples for a day are plenty for a local mesh; keeps the state dir small.
        '--storage.tsdb.retention.time=1d',
      ],
      cwd: dir,
    },
  };
}

/** The absolute path of `name` in the directories of `path` (a PATH value), if executable. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
