/**
 * The two-proxy mTLS chain — client → outbound proxy → mTLS → inbound proxy →
 * app — built with Palisade sidecars (a real `palisade control` and two
 * `palisade proxy` processes started as `palisade up` starts them, SVIDs from
 * the mesh CA, mesh-wide STRICT PeerAuthentication), with HAProxy and with
 * nginx (the same shape: a plaintext front, mutual TLS between two instances
 * with certificates from the same CA, keep-alive everywhere, one thread or
 * worker each), with a bare Node.js pair that only forwards
 * (bench/fixtures/proxy-chain/bare-node-proxy.ts: the floor of a node:http
 * + undici proxy), a raw-socket pair (raw-socket-proxy.ts: node:net/tls and
 * the least framing, the floor of any Node proxy here), a pair on Palisade's
 * own HTTP/1.1 transport (http1-proxy.ts, src/proxy/http1, which the full
 * Palisade proxy runs on too), the full Palisade pair again without access
 * logs (`nolog`) and a direct connection, in one run. Per chain: max
 * throughput (32 keep-alive connections, 1 s warm-up + 5 s, median of five
 * alternating rounds, with per-round ratios min/median/max), p50/p99 at a fixed 500 req/s (5 s) and the latency
 * added over direct, both proxies' RSS idle (at start, and after 20 s idle, when
 * V8 has given back its start-up young generation) and peak, and
 * their CPU per request (/proc utime+stime over the measured window), at
 * full load and at the fixed 500 req/s (steadier on a shared machine: no
 * contention between the chain's processes for the two cores).
 * The load generator (bench/fixtures/proxy-chain/loadgen.ts) runs in its own
 * process; the app (node:http, 13-byte body) runs in this one.
 *
 * Run: node dist/bench/proxy-chain.bench.js [--only palisade,nolog,node,raw,http1,haproxy,nginx,direct]
 *   [--profile DIR] [--no-access-log] [--rounds N]
 *   --profile DIR: the Node proxies (Palisade's and the fixtures) run with `node --cpu-prof
 *   --cpu-prof-dir=DIR` (profiles written on exit).
 *   --no-access-log: the Palisade proxies run with `--access-log-file ""` (Istio's default profile;
 *   HAProxy and nginx log nothing here either). By default they log every request to stdout, as
 *   Istio's demo profile and `palisade up` do.
 * Needs haproxy and nginx (Debian packages) for the references; a missing one is skipped.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCaDirectory } from '../src/identity/index.js';
import { startTraceReceiver, type TraceReceiver } from '../src/telemetry/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const LOADGEN = join(ROOT, 'dist', 'bench', 'fixtures', 'proxy-chain', 'loadgen.js');
const BARE_NODE = join(ROOT, 'dist', 'bench', 'fixtures', 'proxy-chain', 'bare-node-proxy.js');
const RAW_SOCKET = join(ROOT, 'dist', 'bench', 'fixtures', 'proxy-chain', 'raw-socket-proxy.js');
const HTTP1 = join(ROOT, 'dist', 'bench', 'fixtures', 'proxy-chain', 'http1-proxy.js');
const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
};
const only = flag('--only')?.split(',');
const profileDir = flag('--profile');
// Istio's default profile logs no requests (meshConfig.accessLogFile ""); the references log none.
const noAccessLog = argv.includes('--no-access-log');
// Every Node proxy of the run (Palisade's and the fixtures) is profiled alike.
const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
const wanted = (name: string): boolean => only === undefined || only.includes(name);

const SECONDS = 5;
const WARMUP_S = 1;
const CONCURRENCY = 32;
const RATE = 500;
const ROUNDS = Number(flag('--rounds') ?? '5');
const SETTLE_S = 20;
// Loopback addresses of this bench only (127.77.0.0/24), so it can run beside tests.
const NET = '127.77.0';
const APP = { host: `${NET}.2`, port: 18080 };

const dir = join(tmpdir(), `palisade-chain-${String(process.pid)}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

interface Child {
  readonly proc: ChildProcess;
  readonly name: string;
  stderr: string;
}
const children: Child[] = [];
let cleaned = false;
const cleanup = (): void => {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });

/** Starts a process; resolves with the first match of `ready` on its stdout (stdout is then drained). */
function start(
  name: string,
  cmd: string,
  args: string[],
  ready?: RegExp,
  env: NodeJS.ProcessEnv = { ...process.env, PALISADE_LOG_LEVEL: 'warn' },
): Promise<{ child: Child; match: RegExpExecArray | null }> {
  const proc = spawn(cmd, args, { stdio: ['ignore', ready ? 'pipe' : 'ignore', 'pipe'], env });
  const child: Child = { proc, name, stderr: '' };
  children.push(child);
  proc.stderr?.on('data', (chunk: Buffer) => {
    child.stderr = (child.stderr + chunk.toString()).slice(-4000);
  });
  if (ready === undefined) return Promise.resolve({ child, match: null });
  return new Promise((resolve, reject) => {
    let out = '';
    let found = false;
    const timer = setTimeout(() => {
      reject(
        new Error(
          `${name} not ready in 60 s (a loaded shared machine starts slowly):\n${child.stderr}`,
        ),
      );
    }, 60_000);
    proc.stdout?.on('data', (chunk: Buffer) => {
      if (found) return; // access logs and the like: drained, not kept
      out += chunk.toString();
      const m = ready.exec(out);
      if (m !== null) {
        found = true;
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${name} exited (${String(code)}):\n${child.stderr}`));
    });
  });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
const which = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms);
  });

interface Target {
  host: string;
  port: number;
  path: string;
  authority: string;
}

function get(t: Target): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: t.host, port: t.port, path: t.path, headers: { host: t.authority }, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => {
      resolve(0);
    });
    req.on('timeout', () => {
      req.destroy();
    });
    req.end();
  });
}

async function waitOk(name: string, t: Target, pids: Child[]): Promise<void> {
  let status = 0;
  for (let i = 0; i < 200; i += 1) {
    status = await get(t);
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(
    `${name}: no 200 through the chain (last status ${String(status)}):\n${pids.map((c) => `--- ${c.name}\n${c.stderr}`).join('\n')}`,
  );
}

interface Load {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  cpuS: number;
  peakRssKb: number;
}
/** Runs the load generator; samples the proxies' CPU over the measured window and their peak RSS. */
function load(t: Target, mode: 'throughput' | 'rate', pids: number[]): Promise<Load> {
  const opts = {
    ...t,
    mode,
    warmupS: WARMUP_S,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
    rate: RATE,
  };
  const proc = spawn(process.execPath, [LOADGEN, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const cpu = (): number => pids.reduce((a, p) => a + cpuSeconds(p), 0);
  const rss = (): number => pids.reduce((a, p) => a + rssKb(p), 0);
  let peak = rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 250);
  let cpu0 = 0;
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.startsWith('measuring\n') && cpu0 === 0) cpu0 = cpu();
    });
    proc.on('exit', (code) => {
      clearInterval(sampler);
      const cpu1 = cpu();
      peak = Math.max(peak, rss());
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) {
        reject(new Error(`load generator failed (${String(code)}): ${out}`));
        return;
      }
      const r = JSON.parse(line) as Omit<Load, 'cpuS' | 'peakRssKb'>;
      resolve({ ...r, cpuS: cpu1 - cpu0, peakRssKb: peak });
    });
  });
}

// The app: a small fixed response, keep-alive.
const app = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 13 });
  res.end('hello, mesh!\n');
});
await new Promise<void>((r) => app.listen(APP.port, APP.host, r));

interface Chain {
  name: string;
  target: Target;
  procs: Child[];
}
const chains: Chain[] = [];
let receiver: TraceReceiver | undefined;
const skipped: string[] = [];

try {
  // The mesh CA: SVIDs for the Palisade proxies, certificates for the references.
  const caDir = join(dir, 'ca');
  const palisade = (args: string[]): string =>
    execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  palisade(['ca', 'init', '--dir', caDir]);
  const root = join(caDir, 'root-cert.pem');
  for (const who of ['client', 'server']) {
    palisade([
      'ca',
      'issue',
      '--dir',
      caDir,
      '--spiffe-id',
      `spiffe://cluster.local/ns/bench/sa/${who}-ref`,
      '--out',
      join(dir, who),
    ]);
    writeFileSync(
      join(dir, `${who}.pem`),
      readFileSync(join(dir, `${who}-cert.pem`), 'utf8') +
        readFileSync(join(dir, `${who}-key.pem`), 'utf8'),
    );
  }

  if (wanted('direct'))
    chains.push({
      name: 'direct',
      target: { ...APP, path: '/', authority: `app.bench:${String(APP.port)}` },
      procs: [],
    });

  /** The Service and Workloads of a second sidecar pair (`app-<suffix>`, `client-<suffix>`). */
  const pairConfig = (suffix: string): string => `---
apiVersion: v1
kind: Service
metadata: { name: app-${suffix}, namespace: bench }
spec: { selector: { app: app-${suffix} }, ports: [{ name: http, port: ${String(APP.port)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: app-${suffix}, namespace: bench }
spec: { serviceAccount: app-${suffix}, labels: { app: app-${suffix} }, command: node, ports: [{ name: http, port: ${String(APP.port)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: client-${suffix}, namespace: bench }
spec: { serviceAccount: client-${suffix}, labels: { app: client-${suffix} }, command: node, ports: [{ name: http, port: 18081 }] }
`;
  if (wanted('palisade') || wanted('nolog')) {
    // Control plane with one Service + Workload `app`, a Workload `client`, mesh-wide STRICT.
    const config = join(dir, 'config');
    mkdirSync(config);
    writeFileSync(
      join(config, 'mesh.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: app, namespace: bench }
spec: { selector: { app: app }, ports: [{ name: http, port: ${String(APP.port)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: app, namespace: bench }
spec: { serviceAccount: app, labels: { app: app }, command: node, ports: [{ name: http, port: ${String(APP.port)} }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: client, namespace: bench }
spec: { serviceAccount: client, labels: { app: client }, command: node, ports: [{ name: http, port: 18081 }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
${wanted('traced') ? pairConfig('t') : ''}${wanted('nolog') ? pairConfig('r') : ''}`,
    );
    const control = await start(
      'control',
      process.execPath,
      [CLI, 'control', '--config-dir', config, '--listen', `${NET}.1:0`, '--ca-dir', caDir],
      /xDS (\S+), CA (https:\/\/\S+),/,
    );
    const xds = control.match?.[1] ?? '';
    const caUrl = control.match?.[2] ?? '';
    const ca = await loadCaDirectory(caDir);
    // As src/runtime/mesh-runtime.ts starts a sidecar.
    const sidecar = async (
      name: string,
      ip: string,
      appIp: string,
      extra: readonly string[] = [],
    ): Promise<{ child: Child; admin: string }> => {
      const token = join(dir, `${name}.jwt`);
      writeFileSync(
        token,
        await ca.tokens.mint({
          namespace: 'bench',
          serviceAccount: name,
          ttlMs: 24 * 3600 * 1000,
        }),
        { mode: 0o600 },
      );
      const proxy = await start(
        `${name}-sidecar`,
        process.execPath,
        [
          ...profile,
          CLI,
          'proxy',
          '--xds',
          xds,
          '--node-id',
          `sidecar~${ip}~${name}-0.bench~bench.svc.cluster.local`,
          '--metadata',
          JSON.stringify({
            NAMESPACE: 'bench',
            SERVICE_ACCOUNT: name,
            LABELS: { app: name },
            WORKLOAD_NAME: name,
            APP_ADDRESS: appIp,
            PROXY_TYPE: 'sidecar',
            INSTANCE_IPS: ip,
          }),
          '--token-file',
          token,
          '--ca-url',
          caUrl,
          '--ca-root-cert',
          root,
          '--trust-domain',
          ca.trustDomain,
          '--admin-port',
          '0',
          ...(noAccessLog ? ['--access-log-file', ''] : []),
          ...extra,
        ],
        /ready outbound=\d+ admin=(\d+)/,
        { ...process.env, PALISADE_LOG_LEVEL: 'warn' },
      );
      return { child: proxy.child, admin: `http://127.0.0.1:${proxy.match?.[1] ?? ''}` };
    };
    const server = await sidecar('app', `${NET}.3`, APP.host);
    const client = await sidecar('client', `${NET}.4`, `${NET}.5`);
    // The same pair tracing every request to a receiver in this process (as `up --tracing`):
    // the receiver's CPU is not the proxies' and is not counted.
    let traced: { server: typeof server; client: typeof client } | undefined;
    if (wanted('traced')) {
      receiver = await startTraceReceiver({ host: '127.0.0.1' });
      const tracing = ['--otlp-endpoint', receiver.url, '--trace-sampling', '100'];
      traced = {
        server: await sidecar('app-t', `${NET}.6`, APP.host, tracing),
        client: await sidecar('client-t', `${NET}.7`, `${NET}.8`, tracing),
      };
    }
    // The same pair without access logs, to measure what the log costs in the same run.
    let quietPair: { server: typeof server; client: typeof client } | undefined;
    if (wanted('nolog')) {
      const off = ['--access-log-file', ''];
      quietPair = {
        server: await sidecar('app-r', `${NET}.14`, APP.host, off),
        client: await sidecar('client-r', `${NET}.15`, `${NET}.16`, off),
      };
    }
    // Ready as `palisade up` decides it: config accepted and an SVID installed, on both.
    for (const s of [
      server,
      client,
      ...(traced === undefined ? [] : [traced.server, traced.client]),
      ...(quietPair === undefined ? [] : [quietPair.server, quietPair.client]),
    ])
      for (let i = 0; ; i += 1) {
        const certs = await new Promise<string>((resolve) => {
          http
            .get(`${s.admin}/certs`, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => {
                resolve(res.statusCode === 200 ? body : '');
              });
            })
            .on('error', () => {
              resolve('');
            });
        });
        if (certs.includes('"serial_number"')) break;
        if (i > 200) throw new Error(`${s.child.name}: no SVID:\n${s.child.stderr}`);
        await sleep(100);
      }
    if (wanted('palisade'))
      chains.push({
        name: 'palisade',
        target: {
          host: `${NET}.4`,
          port: 15001,
          path: `http://app.bench:${String(APP.port)}/`,
          authority: `app.bench:${String(APP.port)}`,
        },
        procs: [client.child, server.child],
      });
    if (quietPair !== undefined)
      chains.push({
        name: 'nolog',
        target: {
          host: `${NET}.15`,
          port: 15001,
          path: `http://app-r.bench:${String(APP.port)}/`,
          authority: `app-r.bench:${String(APP.port)}`,
        },
        procs: [quietPair.client.child, quietPair.server.child],
      });
    if (traced !== undefined)
      chains.push({
        name: 'traced',
        target: {
          host: `${NET}.7`,
          port: 15001,
          path: `http://app-t.bench:${String(APP.port)}/`,
          authority: `app-t.bench:${String(APP.port)}`,
        },
        procs: [traced.client.child, traced.server.child],
      });
  }

  if (wanted('node')) {
    // The floor of any Node.js proxy pair on this machine: forwarding only (bare-node-proxy.ts).
    const bare = (role: 'front' | 'back', ip: string, port: number, upstream: string) =>
      start(
        `node-${role}`,
        process.execPath,
        [
          ...profile,
          BARE_NODE,
          JSON.stringify({
            role,
            host: ip,
            port,
            upstream,
            cert: join(dir, role === 'front' ? 'client-cert.pem' : 'server-cert.pem'),
            key: join(dir, role === 'front' ? 'client-key.pem' : 'server-key.pem'),
            ca: root,
          }),
        ],
        /ready/,
      );
    const back = await bare('back', `${NET}.21`, 18401, `http://${APP.host}:${String(APP.port)}`);
    const front = await bare('front', `${NET}.20`, 18400, `https://${NET}.21:18401`);
    chains.push({
      name: 'node',
      target: { host: `${NET}.20`, port: 18400, path: '/', authority: 'app.bench' },
      procs: [front.child, back.child],
    });
  }

  // The raw-socket floor (issue 22) and a pair on Palisade's own HTTP/1.1 transport.
  for (const [name, script, base] of [
    ['raw', RAW_SOCKET, 30],
    ['http1', HTTP1, 40],
  ] as const) {
    if (!wanted(name)) continue;
    const pair = (role: 'front' | 'back', ip: string, port: number, upstream: string) =>
      start(
        `${name}-${role}`,
        process.execPath,
        [
          ...profile,
          script,
          JSON.stringify({
            role,
            host: ip,
            port,
            upstream,
            cert: join(dir, role === 'front' ? 'client-cert.pem' : 'server-cert.pem'),
            key: join(dir, role === 'front' ? 'client-key.pem' : 'server-key.pem'),
            ca: root,
          }),
        ],
        /ready/,
      );
    const backIp = `${NET}.${String(base + 1)}`;
    const frontIp = `${NET}.${String(base)}`;
    const back = await pair('back', backIp, 18501 + base, `${APP.host}:${String(APP.port)}`);
    const front = await pair('front', frontIp, 18500 + base, `${backIp}:${String(18501 + base)}`);
    chains.push({
      name,
      target: { host: frontIp, port: 18500 + base, path: '/', authority: 'app.bench' },
      procs: [front.child, back.child],
    });
  }

  if (!wanted('haproxy')) {
    /* not asked for */
  } else if (!which('haproxy')) skipped.push('haproxy: not installed (apt-get install haproxy)');
  else {
    const common = `global\n  nbthread 1\n  maxconn 4096\n  tune.ssl.default-dh-param 2048\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n`;
    const front = join(dir, 'haproxy-front.cfg');
    const back = join(dir, 'haproxy-back.cfg');
    writeFileSync(
      front,
      `${common}frontend f\n  bind ${NET}.10:18200\n  default_backend b\nbackend b\n  http-reuse always\n  server s ${NET}.11:18201 ssl crt ${join(dir, 'client.pem')} ca-file ${root} verify required\n`,
    );
    writeFileSync(
      back,
      `${common}frontend f\n  bind ${NET}.11:18201 ssl crt ${join(dir, 'server.pem')} ca-file ${root} verify required\n  default_backend b\nbackend b\n  http-reuse always\n  server s ${APP.host}:${String(APP.port)}\n`,
    );
    const a = await start('haproxy-front', 'haproxy', ['-db', '-f', front]);
    const b = await start('haproxy-back', 'haproxy', ['-db', '-f', back]);
    chains.push({
      name: 'haproxy',
      target: { host: `${NET}.10`, port: 18200, path: '/', authority: 'app.bench' },
      procs: [a.child, b.child],
    });
  }

  if (!wanted('nginx')) {
    /* not asked for */
  } else if (!which('nginx')) skipped.push('nginx: not installed (apt-get install nginx-light)');
  else {
    const conf = (name: string, body: string): string => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((k) => `  ${k}_temp_path ${d};\n`)
        .join('');
      const file = join(dir, `${name}.conf`);
      writeFileSync(
        file,
        `daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log ${join(d, 'error.log')} error;\npid ${join(d, 'nginx.pid')};\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n${temp}${body}\n}\n`,
      );
      return file;
    };
    // The front cannot check the back's name: the certificate names a SPIFFE ID (URI SAN) only,
    // which nginx's proxy_ssl_verify cannot match; the back verifies the front's certificate.
    const front = conf(
      'nginx-front',
      `  upstream back { server ${NET}.13:18301; keepalive 64; keepalive_requests 1000000; }\n  server {\n    listen ${NET}.12:18300;\n    location / {\n      proxy_pass https://back;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_ssl_certificate ${join(dir, 'client-cert.pem')};\n      proxy_ssl_certificate_key ${join(dir, 'client-key.pem')};\n      proxy_ssl_trusted_certificate ${root};\n      proxy_ssl_session_reuse on;\n    }\n  }`,
    );
    const back = conf(
      'nginx-back',
      `  upstream app { server ${APP.host}:${String(APP.port)}; keepalive 64; keepalive_requests 1000000; }\n  server {\n    listen ${NET}.13:18301 ssl;\n    ssl_certificate ${join(dir, 'server-cert.pem')};\n    ssl_certificate_key ${join(dir, 'server-key.pem')};\n    ssl_client_certificate ${root};\n    ssl_verify_client on;\n    location / {\n      proxy_pass http://app;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }\n  }`,
    );
    const a = await start('nginx-front', 'nginx', ['-c', front, '-p', dir]);
    const b = await start('nginx-back', 'nginx', ['-c', back, '-p', dir]);
    chains.push({
      name: 'nginx',
      target: { host: `${NET}.12`, port: 18300, path: '/', authority: 'app.bench' },
      procs: [a.child, b.child],
    });
  }

  for (const c of chains) await waitOk(c.name, c.target, c.procs);
  await sleep(1000);
  // Idle RSS: every chain up, one request through it, no load yet.
  const pidsOf = (c: Chain): number[] => c.procs.map((p) => p.proc.pid ?? 0);
  const idleRss = new Map(chains.map((c) => [c.name, pidsOf(c).map(rssKb)]));
  // Settled idle RSS: V8 returns the young generation grown during start-up (and compacts)
  // once a process has been idle for some seconds (its memory reducer); measured after 20 s.
  await sleep(SETTLE_S * 1000);
  const settledRss = new Map(chains.map((c) => [c.name, pidsOf(c).map(rssKb)]));

  // Alternating rounds: every chain once per round, so drifting machine load hits all alike.
  const rounds = new Map<string, Load[]>(chains.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round += 1)
    for (const c of chains) rounds.get(c.name)?.push(await load(c.target, 'throughput', pidsOf(c)));
  // The table shows each chain's median round (by throughput), with the peak RSS of all rounds.
  const best = new Map<string, Load>();
  for (const [name, rs] of rounds) {
    const sorted = [...rs].sort((a, b) => a.rps - b.rps);
    const median = sorted[Math.floor(sorted.length / 2)];
    if (median !== undefined)
      best.set(name, { ...median, peakRssKb: Math.max(...rs.map((r) => r.peakRssKb)) });
  }
  const rated = new Map<string, Load>();
  for (const c of chains) rated.set(c.name, await load(c.target, 'rate', pidsOf(c)));

  const mb = (kb: number): string => (kb / 1024).toFixed(0);
  const direct = rated.get('direct');
  console.log(
    `\n${SECONDS} s per run after ${String(WARMUP_S)} s warm-up; ${String(CONCURRENCY)} connections (median of ${String(ROUNDS)} alternating rounds); latency at ${String(RATE)} req/s; RSS and CPU of both proxies together`,
  );
  const each = (kbs: readonly number[]): string =>
    kbs.length === 0 ? '-' : `${mb(kbs.reduce((a, b) => a + b, 0))} (${kbs.map(mb).join(' + ')})`;
  console.log(
    `chain        req/s   p50 ms   p99 ms   added p50/p99 ms   errors   RSS at start MB   RSS idle 20 s MB   RSS peak MB   CPU µs per req   at ${String(RATE)} req/s`,
  );
  for (const c of chains) {
    const t = best.get(c.name);
    const r = rated.get(c.name);
    if (t === undefined || r === undefined) continue;
    const added =
      direct === undefined || c.name === 'direct'
        ? '-'
        : `${(r.p50 - direct.p50).toFixed(2)} / ${(r.p99 - direct.p99).toFixed(2)}`;
    console.log(
      `${c.name.padEnd(10)} ${t.rps.toFixed(0).padStart(7)}  ${r.p50.toFixed(2).padStart(7)}  ${r.p99.toFixed(2).padStart(7)}   ${added.padStart(16)}   ${String(t.errors + r.errors).padStart(6)}   ${each(idleRss.get(c.name) ?? []).padStart(15)}   ${each(settledRss.get(c.name) ?? []).padStart(16)}   ${(c.procs.length === 0 ? '-' : mb(t.peakRssKb)).padStart(11)}   ${(c.procs.length === 0 ? '-' : ((t.cpuS / t.requests) * 1e6).toFixed(1)).padStart(14)}   ${c.procs.length === 0 ? '-' : ((r.cpuS / r.requests) * 1e6).toFixed(1)}`,
    );
  }
  for (const s of skipped) console.log(`skipped: ${s}`);
  // Per-round ratios (round i of one chain against round i of the reference): min/median/max.
  const spread = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    const f = (x: number | undefined): string => (x ?? NaN).toFixed(2);
    return `${f(s[0])} / ${f(s[Math.floor(s.length / 2)])} / ${f(s[s.length - 1])}`;
  };
  const cpuPerReq = (r: Load): number => r.cpuS / r.requests;
  console.log(`\nper-round ratios, min / median / max over ${String(ROUNDS)} rounds:`);
  for (const name of ['raw', 'http1', 'palisade', 'nolog', 'node'])
    for (const ref of ['haproxy', 'node', 'palisade']) {
      if (ref === 'palisade' && name !== 'nolog') continue;
      const mine = rounds.get(name);
      const other = rounds.get(ref);
      if (name === ref || mine === undefined || other === undefined || other.length === 0) continue;
      const pairs = mine.map((r, i) => [r, other[i]] as const).filter(([, b]) => b !== undefined);
      console.log(
        `${name} / ${ref}: throughput ${spread(pairs.map(([a, b]) => a.rps / (b?.rps ?? 1)))}×, CPU per request ${spread(pairs.map(([a, b]) => cpuPerReq(a) / (b === undefined ? 1 : cpuPerReq(b))))}×`,
      );
    }
  const sum = (kbs: readonly number[] | undefined): number =>
    (kbs ?? []).reduce((a, b) => a + b, 0);
  for (const [name, refs] of [
    ['traced', ['palisade']],
    ['palisade', ['haproxy', 'nginx', 'node']],
    ['nolog', ['palisade', 'haproxy', 'node']],
    ['node', ['haproxy']],
    ['raw', ['haproxy', 'node']],
    ['http1', ['haproxy', 'node', 'raw']],
  ] as const) {
    const mine = best.get(name);
    const mineRate = rated.get(name);
    for (const ref of refs) {
      const other = best.get(ref);
      const otherRate = rated.get(ref);
      if (mine === undefined || other === undefined) continue;
      const addedRatio =
        direct === undefined || mineRate === undefined || otherRate === undefined
          ? ''
          : `, added p50 ${((mineRate.p50 - direct.p50) / Math.max(0.001, otherRate.p50 - direct.p50)).toFixed(1)}×, added p99 ${((mineRate.p99 - direct.p99) / Math.max(0.001, otherRate.p99 - direct.p99)).toFixed(1)}×`;
      const rateCpu =
        mineRate === undefined || otherRate === undefined
          ? ''
          : `, CPU per request at ${String(RATE)} req/s ${(cpuPerReq(mineRate) / cpuPerReq(otherRate)).toFixed(2)}×`;
      console.log(
        `${name} / ${ref}: throughput ${(mine.rps / other.rps).toFixed(2)}×, CPU per request ${(mine.cpuS / mine.requests / (other.cpuS / other.requests)).toFixed(1)}×, RSS idle ${(sum(settledRss.get(name)) / sum(settledRss.get(ref))).toFixed(1)}×${addedRatio}${rateCpu}`,
      );
    }
  }
  const pal = best.get('palisade');
  const dt = best.get('direct');
  if (pal !== undefined && dt !== undefined)
    console.log(`palisade / direct: throughput ${(pal.rps / dt.rps).toFixed(2)}×`);
  const palIdle = settledRss.get('palisade');
  if (pal !== undefined && palIdle !== undefined) {
    const hap = best.get('haproxy');
    console.log(
      `goals: throughput ≥ 0.6× HAProxy: ${hap === undefined ? 'n/a (no HAProxy)' : `${(pal.rps / hap.rps).toFixed(2)}× ${pal.rps / hap.rps >= 0.6 ? 'met' : 'NOT met'}`}; RSS ≤ 60 MB idle per proxy: ${palIdle.map(mb).join(' / ')} MB ${palIdle.every((k) => k / 1024 <= 60) ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  // Proxies first with SIGTERM (they drain and exit; a --cpu-prof profile is written on exit).
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            c.proc.kill('SIGKILL');
          }, 8000);
          c.proc.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
  app.close();
  app.closeAllConnections();
  if (receiver !== undefined)
    console.log(
      `trace receiver: ${String(receiver.store.size.traces)} traces, ${String(receiver.store.size.spans)} spans kept (bounded)`,
    );
  await receiver?.close();
  cleanup();
}
