/**
 * The API server's request rate and p99 for GET, LIST (100 objects) and
 * CREATE over HTTPS with a client certificate, against the embedded store
 * (on disk, fsync'd) and against etcd (one local member), with etcd itself
 * through the same gRPC client (put/get, no API server) as the reference in
 * the same run. 16 requests in flight, a fixed duration per case.
 * Run: npm run bench -- apiserver
 */
import { spawn } from 'node:child_process';
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

interface Result {
  readonly rps: number;
  readonly p99: number;
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
  out.CREATE = await run((i) =>
    call('POST', '/api/v1/namespaces/default/configmaps', cm(`c-${label}-${i}`)),
  );
  out.GET = await run((i) => call('GET', `/api/v1/namespaces/bench/configmaps/seed-${i % 100}`));
  out.LIST = await run(() => call('GET', '/api/v1/namespaces/bench/configmaps'));
  await agent.close();
  await server.close();
  await store.close();
  return out;
}

async function startEtcd(dir: string): Promise<{ url: string; stop: () => void }> {
  const client = `http://${HOST}:23791`;
  const peer = `http://${HOST}:23801`;
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
    client.close();
    console.log(`concurrency ${CONCURRENCY}, ${DURATION_MS} ms per case`);
    console.log(
      '| op | embedded store | etcd store | etcd alone (etcd3 client) | etcd store / etcd alone |',
    );
    console.log('| --- | --- | --- | --- | --- |');
    for (const op of ['GET', 'LIST', 'CREATE']) {
      const ratio = (viaEtcd[op]?.rps ?? 0) / (ref[op]?.rps ?? 1);
      console.log(
        `| ${op} | ${fmt(embedded[op])} | ${fmt(viaEtcd[op])} | ${fmt(ref[op])} | ${ratio.toFixed(2)}x |`,
      );
    }
  } finally {
    etcd.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
