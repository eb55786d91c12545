/**
 * `palisade tap WORKLOAD` — live requests through a workload's proxies
 * (Linkerd's `tap`), read from each proxy's admin `/tap` stream (loopback
 * only, so only the local operator can tap).
 */
import * as http from 'node:http';
import { createMeshData } from '../../dashboard/index.js';
import { PalisadeError } from '../../errors/index.js';
import { findMeshState } from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

interface TapLine {
  time: string;
  direction: string;
  method: string;
  path: string;
  authority?: string;
  status: number;
  durationMs: number;
  sourcePrincipal: string | null;
  destination: string;
  mtls: boolean;
  policy?: string;
}

export const tapCommand: Command = {
  path: ['tap'],
  summary: 'Stream live requests through a workload (method, path, status, latency, peer identity)',
  usage: `Usage: palisade tap WORKLOAD [--state-dir DIR] [--max N] [--duration-ms MS] [-o json]

Prints one line per request that WORKLOAD's proxies finish (inbound and
outbound), as linkerd tap does:
  <time> <proxy> in  GET /reviews/0 200 3.2ms src=spiffe://cluster.local/ns/default/sa/bookinfo-productpage tls=true
  <time> <proxy> out GET /ratings/0 200 1.9ms dst=outbound|9080||ratings.default.svc.cluster.local tls=true
and, for a request a policy denied, policy=ns/name. WORKLOAD is a Workload
name (reviews-v2) or name.namespace. Stops after --max requests, after
--duration-ms, or on Ctrl-C. -o json prints each request as a JSON line.`,
  run: async (args, io) => {
    const { values, positionals } = parseCommandArgs(args, {
      'state-dir': { type: 'string' },
      max: { type: 'string' },
      'duration-ms': { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    const name = positionals[0];
    if (name === undefined || positionals.length > 1)
      throw new PalisadeError('PAL_ERR_USAGE', 'palisade tap takes one WORKLOAD (e.g. reviews-v2)');
    const max = values.max === undefined ? Infinity : Number(values.max);
    const duration = values['duration-ms'] === undefined ? Infinity : Number(values['duration-ms']);
    if (!(max > 0) || !(duration > 0))
      throw new PalisadeError('PAL_ERR_USAGE', '--max and --duration-ms take positive numbers');
    const data = createMeshData({
      stateDir: findMeshState(values['state-dir'], io.cwd),
      intervalMs: 3_600_000,
    });
    const workloads = data.workloads();
    data.close();
    const w = workloads.find((x) => x.id === name || x.workload === name);
    if (w === undefined)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `no workload ${name} in this mesh (workloads: ${workloads.map((x) => x.workload).join(', ')})`,
      );
    let seen = 0;
    const requests: http.ClientRequest[] = [];
    await new Promise<void>((resolveDone, reject) => {
      const finish = (): void => {
        process.off('SIGINT', finish);
        process.off('SIGTERM', finish);
        clearTimeout(timer);
        for (const r of requests) r.destroy();
        resolveDone();
      };
      const timer = setTimeout(finish, Number.isFinite(duration) ? duration : 2 ** 31 - 1);
      process.once('SIGINT', finish);
      process.once('SIGTERM', finish);
      let open = 0;
      for (const p of w.proxies) {
        const req = http.get(`${p.adminUrl}/tap`, { agent: false }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(
              new PalisadeError(
                'PAL_ERR_USAGE',
                `${p.name}: /tap answered ${String(res.statusCode)}`,
              ),
            );
            finish();
            return;
          }
          open += 1;
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (line === '' || seen >= max) continue;
              const e = JSON.parse(line) as TapLine;
              seen += 1;
              if (values.output === 'json')
                io.stdout(`${JSON.stringify({ proxy: p.name, ...e })}\n`);
              else
                io.stdout(
                  `${e.time} ${p.name} ${e.direction === 'inbound' ? 'in ' : 'out'} ${e.method} ${e.path} ${String(e.status)} ${e.durationMs.toFixed(1)}ms ${
                    e.direction === 'inbound'
                      ? `src=${e.sourcePrincipal ?? 'plaintext'}`
                      : `dst=${e.destination}`
                  } tls=${String(e.mtls)}${e.policy === undefined ? '' : ` policy=${e.policy}`}\n`,
                );
              if (seen >= max) finish();
            }
          });
          res.on('end', () => {
            open -= 1;
            if (open === 0) finish();
          });
        });
        req.on('error', (error) => {
          reject(
            new PalisadeError(
              'PAL_ERR_USAGE',
              `${p.name}: cannot tap ${p.adminUrl} (${error.message}): is the mesh running?`,
            ),
          );
          finish();
        });
        requests.push(req);
      }
      io.stderr(`palisade tap: tapping ${w.proxies.map((p) => p.name).join(', ')}\n`);
    });
    return 0;
  },
};
