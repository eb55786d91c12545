/**
 * Config push latency and memory per connected proxy: the control plane runs
 * in-process on a temp config dir (50 services, each with a Workload), N
 * simulated sidecars (raw ADS streams, each authenticated with its own token
 * and node, ACKing every response) connect; then one VirtualService file is
 * rewritten and each client's time from the write to receiving the new route
 * configuration is recorded (it includes the 100 ms config-watch and 100 ms
 * push debounces). The simulated clients decode only each response's envelope
 * (version, type, nonce) — a real proxy decodes its resources on its own CPU,
 * and N full decodes on the control plane's thread would measure the bench,
 * not the push; the cost of one full decode is reported beside the figures.
 * Reference in the same run: the time to compile one proxy's resources, times
 * N (what a push must at least do without caching).
 *
 * The xDS port speaks TLS as in production (clients verify the control
 * plane's certificate against the mesh roots); `--plaintext` runs the same
 * bench over plaintext gRPC for the cost of TLS.
 *
 * Run: node --expose-gc dist/bench/xds-push.bench.js [N ...] [--plaintext]   (default 100 1000)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs/minimal.js';
import {
  compileProxy,
  startControlPlane,
  buildRegistry,
  createSnapshot,
  validateManifests,
} from '../src/control/index.js';
import { readManifests } from '../src/api/index.js';
import { initCaDirectory, loadCaDirectory } from '../src/identity/index.js';
import { silentLogger } from '../src/logging/index.js';
import { xdsChannelCredentials } from '../src/xds/grpc-channel.js';
import { objectToStruct, TYPE_URLS } from '../src/xds/index.js';
import { adsServiceDefinition } from '../src/xds/protos.js';

const SERVICES = 50;
const counts = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const sizes = counts.length > 0 ? counts : [100, 1000];
const plaintext = process.argv.includes('--plaintext');

function meshYaml(weight: number): { base: string; vs: string } {
  let base = '';
  for (let i = 0; i < SERVICES; i += 1)
    base += `---
apiVersion: v1
kind: Service
metadata: { name: svc-${String(i)}, namespace: bench }
spec: { selector: { app: svc-${String(i)} }, ports: [{ name: http, port: 80 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: svc-${String(i)}, namespace: bench }
spec: { serviceAccount: sa, labels: { app: svc-${String(i)}, version: v1 }, command: node, ports: [{ name: http, port: 80 }] }
`;
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-0, namespace: bench }
spec:
  hosts: [svc-0]
  http:
    - route:
        - { destination: { host: svc-0 }, weight: ${String(weight)} }
        - { destination: { host: svc-1 }, weight: ${String(100 - weight)} }
`;
  return { base, vs };
}

interface Sim {
  lastRoute: number;
  routeVersion: string;
  connected: boolean;
  close(): void;
}

interface Envelope {
  readonly version_info: string;
  readonly type_url: string;
  readonly nonce: string;
}

/** DiscoveryResponse fields 1 (version_info), 4 (type_url) and 5 (nonce); resources are skipped. */
function decodeEnvelope(bytes: Buffer): Envelope {
  const reader = protobuf.Reader.create(bytes);
  let version = '';
  let typeUrl = '';
  let nonce = '';
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === 1) version = reader.string();
    else if (field === 4) typeUrl = reader.string();
    else if (field === 5) nonce = reader.string();
    else reader.skipType(tag & 7);
  }
  return { version_info: version, type_url: typeUrl, nonce };
}

/** An ADS client whose responses are left as bytes (`decodeEnvelope` reads what an ACK needs). */
function envelopeClientConstructor(): grpc.ServiceClientConstructor {
  const base = adsServiceDefinition();
  const method = base['StreamAggregatedResources'];
  if (method === undefined) throw new Error('ADS StreamAggregatedResources missing');
  return grpc.makeClientConstructor(
    {
      StreamAggregatedResources: {
        ...method,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    },
    'AggregatedDiscoveryService',
  );
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function run(n: number): Promise<void> {
  const dir = join(tmpdir(), `palisade-xds-bench-${String(process.pid)}-${String(n)}`);
  rmSync(dir, { recursive: true, force: true });
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  const { base, vs } = meshYaml(50);
  writeFileSync(join(configDir, 'mesh.yaml'), base);
  writeFileSync(join(configDir, 'vs.yaml'), vs);
  await initCaDirectory(join(dir, 'ca'));
  const ca = await loadCaDirectory(join(dir, 'ca'));

  // Reference: compile one proxy's resources without the cache.
  const snapshotResult = validateManifests(readManifests([configDir]));
  if (!snapshotResult.ok) throw new Error('bench config invalid');
  const snapshot = createSnapshot(1, snapshotResult.objects);
  const registry = buildRegistry(snapshot, []);
  const workload = registry.workloads[0];
  if (workload === undefined) throw new Error('no workload');
  const inputs = {
    snapshot,
    registry,
    trustDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    mesh: { outboundTrafficPolicy: 'ALLOW_ANY' as const },
    trustBundlePem: ca.trustBundle.toPem(),
    credentials: new Map(),
  };
  const node = {
    id: 'x',
    type: 'sidecar' as const,
    ip: '127.1.0.1',
    appAddress: '127.2.0.1',
    namespace: 'bench',
    serviceAccount: 'sa',
    labels: workload.labels,
    workload,
  };
  for (let i = 0; i < 20; i += 1) compileProxy(inputs, node);
  const c0 = performance.now();
  const reps = 200;
  for (let i = 0; i < reps; i += 1) compileProxy(inputs, node);
  const compileMs = (performance.now() - c0) / reps;

  const plane = await startControlPlane({
    configDir,
    ca,
    logger: silentLogger(),
    host: '127.0.0.1',
    port: 0,
    caPort: 0,
    xdsPlaintext: plaintext,
  });
  const credentials = xdsChannelCredentials(
    plaintext ? 'plaintext' : { rootPem: ca.trustBundle.toPem(), trustDomain: ca.trustDomain },
  );
  const address = `127.0.0.1:${String(plane.xdsPort)}`;
  const token = await ca.tokens.mint({ namespace: 'bench', serviceAccount: 'sa' });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const Client = envelopeClientConstructor();
  const channels: grpc.Client[] = [];
  const sims: Sim[] = [];
  let sampleRoute: Buffer | undefined;
  for (let i = 0; i < n; i += 1) {
    if (i % 50 === 0)
      channels.push(
        new Client(address, credentials, {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.channel_id': i,
        }),
      );
    const client = channels[channels.length - 1] as unknown as {
      StreamAggregatedResources(m: grpc.Metadata): grpc.ClientDuplexStream<object, Buffer>;
    };
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const call = client.StreamAggregatedResources(md);
    const ip = `127.1.${String(Math.floor(i / 250) + 1)}.${String((i % 250) + 1)}`;
    const nodeMsg = {
      id: `sidecar~${ip}~c-${String(i)}.bench~bench.svc.cluster.local`,
      metadata: objectToStruct({
        NAMESPACE: 'bench',
        SERVICE_ACCOUNT: 'sa',
        WORKLOAD_NAME: `svc-${String(i % SERVICES)}`,
        APP_ADDRESS: '127.2.0.1',
      }),
    };
    const sim: Sim = {
      lastRoute: 0,
      routeVersion: '',
      connected: false,
      close: () => {
        call.cancel();
      },
    };
    call.on('data', (bytes: Buffer) => {
      const r = decodeEnvelope(bytes);
      sim.connected = true;
      if (r.type_url === TYPE_URLS.route && sampleRoute === undefined) sampleRoute = bytes;
      if (r.type_url === TYPE_URLS.route) {
        sim.lastRoute = performance.now();
        sim.routeVersion = r.version_info;
      }
      call.write({
        node: nodeMsg,
        type_url: r.type_url,
        response_nonce: r.nonce,
        version_info: r.version_info,
        resource_names: r.type_url === TYPE_URLS.route ? ['80'] : [],
      });
    });
    call.on('error', () => undefined);
    for (const type of [TYPE_URLS.cluster, TYPE_URLS.listener])
      call.write({ node: nodeMsg, type_url: type, resource_names: [] });
    call.write({ node: nodeMsg, type_url: TYPE_URLS.route, resource_names: ['80'] });
    sims.push(sim);
  }
  // Settle: every client has its routes and no push arrived for a second.
  const settleDeadline = Date.now() + 120_000;
  for (;;) {
    const last = Math.max(...sims.map((s) => s.lastRoute));
    if (sims.every((s) => s.routeVersion !== '') && performance.now() - last > 1000) break;
    if (Date.now() > settleDeadline) throw new Error('clients did not settle');
    await new Promise((r) => setTimeout(r, 200));
  }
  global.gc?.();
  const heapPer = (process.memoryUsage().heapUsed - heapBefore) / n;
  const rssPer = (process.memoryUsage().rss - rssBefore) / n;
  const versions = sims.map((s) => s.routeVersion);
  const t0 = performance.now();
  writeFileSync(join(configDir, 'vs.yaml'), meshYaml(80).vs);
  const deadline = Date.now() + 60_000;
  while (sims.some((s, i) => s.routeVersion === versions[i]) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const latencies = sims
    .filter((s, i) => s.routeVersion !== versions[i])
    .map((s) => s.lastRoute - t0)
    .sort((a, b) => a - b);
  // What each real proxy spends decoding the pushed route response (full decode, as the proxy does).
  const fullDecode = adsServiceDefinition()['StreamAggregatedResources']?.responseDeserialize;
  let decodeMs = NaN;
  if (sampleRoute !== undefined && fullDecode !== undefined) {
    for (let i = 0; i < 50; i += 1) fullDecode(sampleRoute);
    const d0 = performance.now();
    for (let i = 0; i < 500; i += 1) fullDecode(sampleRoute);
    decodeMs = (performance.now() - d0) / 500;
  }
  console.log(
    `N=${String(n).padStart(5)}  updated ${String(latencies.length)}/${String(n)}  p50 ${percentile(latencies, 50).toFixed(0)} ms  p99 ${percentile(latencies, 99).toFixed(0)} ms  max ${percentile(latencies, 100).toFixed(0)} ms` +
      `  | heap/proxy ${(heapPer / 1024).toFixed(0)} KiB  rss/proxy ${(rssPer / 1024).toFixed(0)} KiB` +
      `  | reference: compile one proxy ${compileMs.toFixed(2)} ms (× N = ${(compileMs * n).toFixed(0)} ms)` +
      `, full decode of one route response ${decodeMs.toFixed(2)} ms (client side)`,
  );
  for (const s of sims) s.close();
  for (const c of channels) c.close();
  await plane.close();
  rmSync(dir, { recursive: true, force: true });
}

for (const n of sizes) await run(n);
process.exit(0);
