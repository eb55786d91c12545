// `palisade proxy` as a real process driven by a test ADS server: curl through
// the outbound explicit proxy reaches the apps the EDS endpoints name (round
// robin), routes by Host, answers 404 for unknown hosts and 502 for the
// BlackHoleCluster, tunnels CONNECT, and keeps serving every request when the
// control plane is killed mid-traffic. Admin /ready and /config_dump answer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { test } from 'node:test';
import { TYPE_URLS, EXTENSION_TYPE_URLS } from '../../src/xds/index.js';
import { CLI, runProcess } from '../helpers/index.js';
import { startTestAdsServer } from './ads-server.js';

async function startApp(name: string): Promise<{
  port: number;
  /** Resolves when the app receives its first `/slow` request. */
  slowSeen: Promise<void>;
  close: () => Promise<void>;
}> {
  let onSlow: () => void = () => undefined;
  const slowSeen = new Promise<void>((resolve) => {
    onSlow = resolve;
  });
  const server = http.createServer((req, res) => {
    res.setHeader('x-app', name);
    if (req.url?.startsWith('/slow') === true) onSlow();
    const delay = req.url?.startsWith('/slow') === true ? 300 : 0;
    setTimeout(() => {
      res.end(`${name} ${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}`);
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    slowSeen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

const SERVICE = 'outbound|80||b.ns.svc.cluster.local';

function resources(appPorts: number[]): Record<string, object[]> {
  return {
    [TYPE_URLS.cluster]: [
      {
        '@type': TYPE_URLS.cluster,
        name: SERVICE,
        type: 'EDS',
        eds_cluster_config: { eds_config: { ads: {} } },
      },
    ],
    [TYPE_URLS.endpoint]: [
      {
        '@type': TYPE_URLS.endpoint,
        cluster_name: SERVICE,
        endpoints: [
          {
            lb_endpoints: appPorts.map((port) => ({
              endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } },
            })),
          },
        ],
      },
    ],
    [TYPE_URLS.listener]: [
      {
        '@type': TYPE_URLS.listener,
        name: 'outbound',
        filter_chains: [
          {
            filter_chain_match: { destination_port: { value: 80 } },
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
                  stat_prefix: 'outbound_0.0.0.0_80',
                  rds: { route_config_name: '80', config_source: { ads: {} } },
                  http_filters: [
                    {
                      name: 'envoy.filters.http.router',
                      typed_config: { '@type': EXTENSION_TYPE_URLS.router },
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
    [TYPE_URLS.route]: [
      {
        '@type': TYPE_URLS.route,
        name: '80',
        virtual_hosts: [
          {
            name: 'b.ns.svc.cluster.local:80',
            domains: ['b', 'b.ns', 'b.ns.svc', 'b.ns.svc.cluster.local', 'b:80', 'b.ns:80'],
            routes: [
              { match: { prefix: '/old' }, redirect: { path_redirect: '/new' } },
              { match: { prefix: '/api' }, route: { cluster: SERVICE, prefix_rewrite: '/v2' } },
              { match: { prefix: '/' }, route: { cluster: SERVICE } },
            ],
          },
          {
            name: 'blocked',
            domains: ['blocked.example'],
            routes: [{ match: { prefix: '/' }, route: { cluster: 'BlackHoleCluster' } }],
          },
        ],
      },
    ],
  };
}

async function startProxyProcess(xdsPort: number): Promise<{
  outbound: number;
  admin: number;
  stop: () => Promise<number | null>;
}> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'proxy',
      '--xds',
      `127.0.0.1:${String(xdsPort)}`,
      '--xds-insecure',
      '--node-id',
      'sidecar~127.0.0.1~a-1.ns~ns.svc.cluster.local',
      '--metadata',
      '{"NAMESPACE":"ns","SERVICE_ACCOUNT":"a"}',
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      '--drain-ms',
      '1000',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
    }),
  );
  // Up to 20 s: on a loaded 2-core machine loading the protos alone can take seconds.
  for (let i = 0; i < 800 && !/ready outbound=\d+ admin=\d+/.test(out); i += 1) {
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const match = /ready outbound=(\d+) admin=(\d+)/.exec(out);
  if (match === null) {
    child.kill('SIGKILL');
    throw new Error(`proxy did not start: ${out} ${err}`);
  }
  return {
    outbound: Number(match[1]),
    admin: Number(match[2]),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

async function curl(args: string[]): Promise<{ status: number; body: string; stdout: string }> {
  const result = await runProcess('curl', [
    '-s',
    '--max-time',
    '5',
    '-w',
    '\n%{http_code}',
    ...args,
  ]);
  const stdout = result.stdout;
  const at = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at), stdout };
}

async function waitReady(admin: number): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const r = await curl([`http://127.0.0.1:${String(admin)}/config_dump`]);
    if (r.status === 200) {
      const dump = JSON.parse(r.body) as { configs: Record<string, { resources: unknown[] }> };
      if (Object.values(dump.configs).every((c) => c.resources.length > 0)) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail('proxy never received the whole config');
}

test('outbound explicit proxy routes by Host to EDS endpoints and survives control-plane loss', async (t) => {
  const appA = await startApp('A');
  const appB = await startApp('B');
  t.after(() => appA.close());
  t.after(() => appB.close());
  const ads = await startTestAdsServer(t);
  for (const [typeUrl, list] of Object.entries(resources([appA.port, appB.port]))) {
    ads.set(typeUrl, 'v1', list);
  }
  ads.set(TYPE_URLS.secret, 'v1', [
    { '@type': TYPE_URLS.secret, name: 'ROOTCA', validation_context: {} },
  ]);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = ['-x', `http://127.0.0.1:${String(proxy.outbound)}`];
  await waitReady(proxy.admin);

  const ready = await curl([`http://127.0.0.1:${String(proxy.admin)}/ready`]);
  assert.equal(ready.status, 200);

  // /logging as Envoy's: POST changes (all or one logger), GET only lists, bad input names itself.
  const logging = `http://127.0.0.1:${String(proxy.admin)}/logging`;
  assert.match((await curl([logging])).body, /active loggers:\n {2}proxy: info/);
  const viaGet = await curl([`${logging}?level=debug`]);
  assert.equal(viaGet.status, 405);
  assert.match(viaGet.body, /requires POST/);
  const badLevel = await curl(['-X', 'POST', `${logging}?level=loud`]);
  assert.equal(badLevel.status, 400);
  assert.match(badLevel.body, /unknown logger level "loud"/);
  const badLogger = await curl(['-X', 'POST', `${logging}?upstream=debug`]);
  assert.equal(badLogger.status, 400);
  assert.match(badLogger.body, /unknown logger "upstream" \(loggers: proxy\)/);
  assert.match((await curl(['-X', 'POST', `${logging}?proxy=warning`])).body, /proxy: warning/);
  assert.match((await curl(['-X', 'POST', `${logging}?level=debug`])).body, /proxy: debug/);
  assert.match((await curl([logging])).body, /proxy: debug/);

  // Round robin over both endpoints; Host carried to the app.
  const seen = new Set<string>();
  for (let i = 0; i < 4; i += 1) {
    const r = await curl([...via, 'http://b.ns/hello']);
    assert.equal(r.status, 200);
    assert.match(r.body, /^[AB] GET \/hello host=b\.ns$/);
    seen.add(r.body[0] ?? '');
  }
  assert.deepEqual([...seen].sort(), ['A', 'B']);

  const rewritten = await curl([...via, 'http://b:80/api/x?q=1']);
  assert.match(rewritten.body, /GET \/v2\/x\?q=1/);
  const redirect = await curl([...via, '-D', '-', 'http://b.ns/old']);
  assert.equal(redirect.status, 301);
  assert.match(redirect.stdout, /location: http:\/\/b\.ns\/new/i);
  assert.equal((await curl([...via, 'http://unknown.ns/'])).status, 404);
  assert.equal((await curl([...via, 'http://blocked.example/'])).status, 502);
  assert.equal((await curl([...via, 'http://b.ns/a%00b'])).status, 400);

  // CONNECT tunnel to the routed cluster.
  const tunnel = await curl(['-p', ...via, 'http://b.ns:80/tunnel']);
  assert.equal(tunnel.status, 200);
  assert.match(tunnel.body, /GET \/tunnel/);

  // Control plane killed mid-traffic: every request still succeeds.
  const results: number[] = [];
  for (let i = 0; i < 40; i += 1) {
    if (i === 10) ads.stop();
    results.push((await curl([...via, 'http://b.ns/during'])).status);
  }
  assert.deepEqual(results, Array<number>(40).fill(200));
  const dump = await curl([`http://127.0.0.1:${String(proxy.admin)}/config_dump`]);
  assert.equal((JSON.parse(dump.body) as { connected: boolean }).connected, false);

  assert.equal(await proxy.stop(), 0);
});

test('the proxy NACKs a listener with an unsupported field and keeps the last good one', async (t) => {
  const app = await startApp('A');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  for (const [typeUrl, list] of Object.entries(resources([app.port]))) ads.set(typeUrl, 'v1', list);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = ['-x', `http://127.0.0.1:${String(proxy.outbound)}`];
  for (let i = 0; i < 200 && (await curl([...via, 'http://b.ns/'])).status !== 200; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  // A real Listener field the proxy does not implement: NACKed, not ignored.
  const [good] = resources([app.port])[TYPE_URLS.listener] ?? [];
  ads.set(TYPE_URLS.listener, 'v2', [
    { ...good, per_connection_buffer_limit_bytes: { value: 1024 } },
  ]);
  let nack: string | undefined;
  for (let i = 0; i < 200 && nack === undefined; i += 1) {
    nack = ads.requests.find(
      (r) => r.type_url === TYPE_URLS.listener && r.error_detail !== undefined,
    )?.error_detail?.message;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.match(
    nack ?? '',
    /listener "outbound": unsupported field per_connection_buffer_limit_bytes/,
  );
  const r = await curl([...via, 'http://b.ns/still']);
  assert.equal(r.status, 200);
  assert.match(r.body, /GET \/still/);
});

test('SIGTERM drains: an in-flight request completes, then the proxy exits 0', async (t) => {
  const app = await startApp('A');
  t.after(() => app.close());
  const ads = await startTestAdsServer(t);
  for (const [typeUrl, list] of Object.entries(resources([app.port]))) ads.set(typeUrl, 'v1', list);
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = ['-x', `http://127.0.0.1:${String(proxy.outbound)}`];
  for (let i = 0; i < 200 && (await curl([...via, 'http://b.ns/'])).status !== 200; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const inFlight = curl([...via, 'http://b.ns/slow']);
  // In flight once the app has it (it answers 300 ms later): then SIGTERM.
  await app.slowSeen;
  const exited = proxy.stop();
  const r = await inFlight;
  assert.equal(r.status, 200);
  assert.match(r.body, /GET \/slow/);
  assert.equal(await exited, 0);
});
