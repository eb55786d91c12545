/**
 * The API server's request rate and p99 for GET, LIST (100 objects) and
 * CREATE over HTTPS with a client certificate, against the embedded store
 * (on disk, fsync'd) and against etcd (one local member), with etcd itself
 * as the reference in the same run: through the same gRPC client (put/get,
 * no API server) and through `etcdctl` (one process per request, as a shell
 * script would use it). 16 requests in flight, a fixed duration per case.
 * WATCH fan-out: 1,000 watch streams (HTTPS, one connection each, as 1,000
 * kubectl -w would hold) on one collection; an object is created and the time
 * until every watcher has its ADDED event is taken (5 events; median and
 * worst), against etcd's own watch fan-out (1,000 etcd3 watchers) as the
 * reference.
 * Run: npm run bench -- apiserver
 */
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { Agent, request } from 'undici';
import {
  ensurePki,
  openEmbeddedStore,
  openEtcdStore,
  startApiServer,
  type ObjectStore,
} from '../src/apiserver/index.js';

const HOST = '127.38.2.1';
const CONCURRENCY = 16;
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 1000);
const WATCH_EVENTS = 5;
const T0 = performance.now();
/** Progress on stderr, so a slow case shows where it is. */
const note = (what: string): void => {
  console.error(`[${((performance.now() - T0) / 1000).toFixed(1)} s] ${what}`);
};

interface Result {
  readonly rps: number;
  readonly p99: number;
  /** WATCH fan-out: the median time until every watcher saw an event (p99 holds the worst). */
  readonly median?: number;
}

async function run(op: (i: number) => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  let n = 0;
  const end = performance.now() + DURATION_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const t0 = performance.now();
        await op(i);
        lat.push(performance.now() - t0);
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { rps: (lat.length * 1000) / DURATION_MS, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 };
}

async function benchServer(
  label: string,
  store: ObjectStore,
  dir: string,
): Promise<Record<string, Result>> {
  const pki = await ensurePki(dir, HOST, `https://${HOST}:0`);
  const server = await startApiServer({ store, pki, host: HOST, port: 0 });
  const agent = new Agent({
    connect: { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem },
    connections: CONCURRENCY,
  });
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<void> => {
    const res = await request(`${server.url}${path}`, {
      method,
      dispatcher: agent,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode}`);
  };
  const cm = (name: string): unknown => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name },
    data: { k: 'v'.repeat(200) },
  });
  await call('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'bench' },
  });
  for (let i = 0; i < 100; i++)
    await call('POST', '/api/v1/namespaces/bench/configmaps', cm(`seed-${i}`));
  const out: Record<string, Result> = {};
  note(`${label}: seeded`);
  out.CREATE = await run((i) =>
    call('POST', '/api/v1/namespaces/default/configmaps', cm(`c-${label}-${i}`)),
  );
  out.GET = await run((i) => call('GET', `/api/v1/namespaces/bench/configmaps/seed-${i % 100}`));
  out.LIST = await run(() => call('GET', '/api/v1/namespaces/bench/configmaps'));
  await call('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'watch' },
  });
  note(`${label}: CREATE, GET, LIST done; opening ${String(WATCHERS)} watches`);
  out.WATCH = await watchFanOut(server.url, pki, (i) =>
    call('POST', '/api/v1/namespaces/watch/configmaps', cm(`w-${String(i)}`)),
  );
  await agent.close();
  await server.close();
  await store.close();
  return out;
}

/** Median and worst of the times until all watchers saw an event, as a Result (rps = events/s). */
function fanOutResult(times: number[]): Result {
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  return { rps: 1000 / median, p99: times.at(-1) ?? 0, median };
}

/**
 * WATCHERS watch streams on one collection (one TLS connection each); then
 * WATCH_EVENTS creates, each timed until every watcher has its ADDED line.
 */
async function watchFanOut(
  url: string,
  pki: { ca: { certPem: string }; admin: { certPem: string; keyPem: string } },
  create: (i: number) => Promise<void>,
): Promise<Result> {
  const agent = new HttpsAgent({
    ca: pki.ca.certPem,
    cert: pki.admin.certPem,
    key: pki.admin.keyPem,
    keepAlive: false,
    maxSockets: Infinity,
  });
  const u = new URL(url);
  const seen = new Array<number>(WATCHERS).fill(0);
  let waiting: { count: number; target: number; done: () => void } | undefined;
  const requests: ReturnType<typeof httpsRequest>[] = [];
  let closing = false;
  // Opened 100 at a time (one TLS handshake each): 1,000 connects in the same instant overflow
  // the listen backlog and get reset, which says nothing about serving watches.
  const open = (w: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: u.hostname,
          port: u.port,
          path: '/api/v1/namespaces/watch/configmaps?watch=true&resourceVersion=0',
          agent,
        },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`watch: ${String(res.statusCode)}`));
          resolve();
          let buf = '';
          res.on('data', (d: Buffer) => {
            buf += d.toString();
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              if (buf.slice(0, nl).includes('"ADDED"')) {
                seen[w] = (seen[w] ?? 0) + 1;
                if (waiting !== undefined && seen[w] === waiting.target) {
                  waiting.count += 1;
                  if (waiting.count === WATCHERS) waiting.done();
                }
              }
              buf = buf.slice(nl + 1);
            }
          });
          res.on('error', () => undefined);
        },
      );
      req.on('error', (e) => {
        if (!closing) reject(e);
      });
      req.end();
      requests.push(req);
    });
  for (let first = 0; first < WATCHERS; first += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, WATCHERS - first) }, (_, i) => open(first + i)),
    );
  note(`${String(WATCHERS)} watches open`);
  const times: number[] = [];
  for (let e = 1; e <= WATCH_EVENTS; e++) {
    const t0 = performance.now();
    // Bounded: a watcher that never sees the event fails the bench instead of hanging it.
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => {
        fail(
          new Error(
            `event ${String(e)}: ${String(waiting?.count)} of ${String(WATCHERS)} watchers saw it within 60 s`,
          ),
        );
      }, 60_000);
      waiting = {
        count: 0,
        target: e,
        done: () => {
          clearTimeout(timer);
          done();
        },
      };
      create(e).catch((err: unknown) => {
        note(`event ${String(e)}: create failed: ${String(err)}`);
      });
    });
    times.push(performance.now() - t0);
  }
  closing = true;
  for (const r of requests) r.destroy();
  agent.destroy();
  return fanOutResult(times);
}

/** etcd's own fan-out: WATCHERS etcd3 watchers on one prefix, WATCH_EVENTS puts. */
async function etcdWatchFanOut(client: Etcd3, writer: Etcd3): Promise<Result> {
  let waiting: { count: number; done: () => void } | undefined;
  const watchers = await Promise.all(
    Array.from({ length: WATCHERS }, () =>
      client
        .watch()
        .prefix('/watch/')
        .create()
        .then((w) => {
          w.on('put', () => {
            if (waiting !== undefined && ++waiting.count === WATCHERS) waiting.done();
          });
          return w;
        }),
    ),
  );
  note(`etcd alone: ${String(watchers.length)} etcd3 watchers open`);
  const times: number[] = [];
  for (let e = 1; e <= WATCH_EVENTS; e++) {
    const t0 = performance.now();
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => {
        fail(
          new Error(
            `etcd alone, event ${String(e)}: ${String(waiting?.count)} of ${String(WATCHERS)} watchers saw it within 60 s`,
          ),
        );
      }, 60_000);
      waiting = {
        count: 0,
        done: () => {
          clearTimeout(timer);
          done();
        },
      };
      void writer
        .put(`/watch/k${String(e)}`)
        .value('v')
        .exec(); // a builder runs only when executed
    });
    times.push(performance.now() - t0);
  }
  // No cancel round trip per watcher: the caller closes the client, which ends them all.
  return fanOutResult(times);
}

/** `etcdctl put|get` as processes, CONCURRENCY at a time, for DURATION_MS. */
function etcdctl(url: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('etcdctl', ['--endpoints', url, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`etcdctl ${args.join(' ')}: ${err}`));
    });
  });
}

async function startEtcd(dir: string): Promise<{ url: string; stop: () => void }> {
  // Free ports, so the bench runs beside tests and other benches.
  const client = `http://${HOST}:${String(await freePort())}`;
  const peer = `http://${HOST}:${String(await freePort())}`;
  const child = spawn(
    'etcd',
    [
      '--name',
      'b',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `b=${peer}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const on = (d: Buffer): void => {
      log += d.toString();
      if (/ready to serve client requests/.test(log)) resolve();
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (c) => {
      reject(new Error(`etcd exited ${String(c)}: ${log}`));
    });
  });
  return { url: client, stop: () => child.kill('SIGKILL') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => {
        resolve(port);
      });
    });
  });
}

const fmt = (r: Result | undefined): string =>
  r === undefined ? '-' : `${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms`;

const dir = mkdtempSync(join(tmpdir(), 'palisade-bench-apiserver-'));
try {
  const embedded = await benchServer(
    'embedded',
    await openEmbeddedStore({ dir: join(dir, 'embedded') }),
    join(dir, 'embedded'),
  );
  const etcd = await startEtcd(dir);
  try {
    const viaEtcd = await benchServer(
      'etcd',
      await openEtcdStore({ endpoints: [etcd.url] }),
      join(dir, 'etcd-api'),
    );
    const client = new Etcd3({ hosts: [etcd.url] });
    const value = JSON.stringify({ data: { k: 'v'.repeat(200) } });
    const ref: Record<string, Result> = {
      CREATE: await run((i) =>
        client
          .put(`/ref/c${i}`)
          .value(value)
          .then(() => undefined),
      ),
      GET: await run((i) =>
        client
          .get(`/ref/c${i % 100}`)
          .string()
          .then(() => undefined),
      ),
      LIST: await run(() =>
        client
          .getAll()
          .prefix('/ref/c1')
          .limit(100)
          .strings()
          .then(() => undefined),
      ),
    };
    note('etcd alone: CREATE, GET, LIST done');
    // The watchers on a client of their own, as the API server's store has its own client.
    const watchClient = new Etcd3({ hosts: [etcd.url] });
    ref.WATCH = await etcdWatchFanOut(watchClient, client);
    watchClient.close();
    note('etcd alone: WATCH done');
    client.close();
    const ctl: Record<string, Result> = {
      CREATE: await run((i) => etcdctl(etcd.url, ['put', `/ctl/c${String(i)}`, value])),
      GET: await run((i) => etcdctl(etcd.url, ['get', `/ref/c${String(i % 100)}`])),
      LIST: await run(() => etcdctl(etcd.url, ['get', '--prefix', '/ref/c1', '--limit', '100'])),
    };
    console.log(
      `concurrency ${String(CONCURRENCY)}, ${String(DURATION_MS)} ms per case; WATCH: ${String(WATCHERS)} watchers, ${String(WATCH_EVENTS)} events, time until all saw each (median, worst)`,
    );
    console.log(
      '| op | embedded store | etcd store | etcd alone (etcd3 client) | etcdctl (process per request) | embedded / etcd alone | etcd store / etcd alone | etcd store / etcdctl |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    const fmtWatch = (r: Result | undefined): string => {
      const m = r?.median;
      return m === undefined || r === undefined
        ? '-'
        : `median ${m.toFixed(0)} ms, worst ${r.p99.toFixed(0)} ms`;
    };
    const ratio = (a: Result | undefined, b: Result | undefined): string =>
      a === undefined || b === undefined ? '-' : `${(a.rps / b.rps).toFixed(2)}x`;
    for (const op of ['GET', 'LIST', 'CREATE', 'WATCH']) {
      const f = op === 'WATCH' ? fmtWatch : fmt;
      console.log(
        `| ${op} | ${f(embedded[op])} | ${f(viaEtcd[op])} | ${f(ref[op])} | ${op === 'WATCH' ? '-' : fmt(ctl[op])} | ${ratio(embedded[op], ref[op])} | ${ratio(viaEtcd[op], ref[op])} | ${ratio(viaEtcd[op], ctl[op])} |`,
      );
    }
  } finally {
    etcd.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
// The in-process API servers' client sockets and etcd3 channels may keep the loop alive for a while after closing.
process.exit(0);
