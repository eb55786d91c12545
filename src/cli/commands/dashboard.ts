/**
 * `palisade dashboard` — the web UI of a running mesh (service graph,
 * security view, proxies, traces, live requests), served from this process
 * (src/dashboard). `palisade up` starts the same server by itself.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createMeshData, startDashboardServer } from '../../dashboard/index.js';
import { PalisadeError } from '../../errors/index.js';
import { findMeshState } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

/** Parses a port flag (0 = any free port). */
export function portFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new PalisadeError('PAL_ERR_USAGE', `${flag}: ${value} is not a port`);
  return n;
}

export const dashboardCommand: Command = {
  path: ['dashboard'],
  summary:
    'Serve the web dashboard of a running mesh: graph, security, proxies, traces, live requests',
  usage: `Usage: palisade dashboard [--state-dir DIR] [--address 127.0.0.1] [--port 20001]
                          [--token-file FILE]

Serves the dashboard of the mesh in DIR (default: the running mesh under
.palisade/, as palisade up wrote it) and prints "Dashboard: URL". It reads
every proxy's admin /stats/prometheus every 2 s (rates over the last 30 s),
the proxies' /certs and /tap, the control plane's debug API, and the trace
receiver when the mesh runs with --tracing. All assets are served from here
(no CDN). It listens on 127.0.0.1 by default; any other --address needs
--token-file: a file holding a secret (16+ characters) that every request must
present — open URL/?token=SECRET once, or send Authorization: Bearer SECRET.
--port 0 picks a free port. Ctrl-C stops it.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        'state-dir': { type: 'string' },
        address: { type: 'string' },
        port: { type: 'string' },
        'token-file': { type: 'string' },
      },
      false,
    );
    const stateDir = findMeshState(values['state-dir'], io.cwd);
    const token =
      values['token-file'] === undefined
        ? undefined
        : readFileSync(resolve(io.cwd, values['token-file']), 'utf8').trim();
    const data = createMeshData({ stateDir });
    let server;
    try {
      server = await startDashboardServer({
        data,
        host: values.address ?? '127.0.0.1',
        port: portFlag(values.port, '--port', 20001),
        ...(token === undefined ? {} : { token }),
      });
    } catch (error) {
      data.close();
      throw error;
    }
    await data.scrape();
    io.stdout(`Dashboard: ${server.url}\n`);
    await new Promise<void>((resolveStop) => {
      const stop = (): void => {
        resolveStop();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    data.close();
    await server.close();
    return 0;
  },
};
