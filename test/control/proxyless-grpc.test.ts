// An independent xDS client — @grpc/grpc-js-xds, gRPC's own implementation of
// the client side of xDS — resolves `xds:///echo.grpc.svc.cluster.local:50051`
// through a `palisade control` process and calls real gRPC servers on
// loopback: header-matched routing, an 80/20 weighted split measured over many
// calls, fault abort (grpcStatus) and delay, retries against a server that
// fails every other call, and a VirtualService change pushed while it runs.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { freePort, runPalisade, spawnPalisade, tempDir, waitFor } from '../helpers/index.js';
import {
  echoCall as call,
  echoCallMany as callMany,
  startEchoBackend,
  type EchoBackend as Backend,
  type EchoClient,
  EchoClientConstructor as Echo,
} from '../helpers/grpc-echo.js';

const HOST = 'echo.grpc.svc.cluster.local';
const TARGET = `xds:///${HOST}:50051`;

const virtualService = (defaultRoute: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: grpc }
spec:
  hosts: [${HOST}]
  http:
  - match: [{ headers: { x-route: { exact: v2 } } }]
    route: [{ destination: { host: ${HOST}, subset: v2 } }]
  - match: [{ headers: { x-fault: { exact: abort } } }]
    fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 100 } } }
    route: [{ destination: { host: ${HOST}, subset: v1 } }]
  - match: [{ headers: { x-fault: { exact: delay } } }]
    fault: { delay: { fixedDelay: 1s, percentage: { value: 100 } } }
    route: [{ destination: { host: ${HOST}, subset: v1 } }]
  - match: [{ headers: { x-route: { exact: flaky } } }]
    retries: { attempts: 3, retryOn: unavailable }
    route: [{ destination: { host: ${HOST}, subset: flaky } }]
  - match: [{ headers: { x-route: { exact: flaky-no-retry } } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: ${HOST}, subset: flaky } }]
${defaultRoute}
`;

const SPLIT_80_20 = `  - route:
    - { destination: { host: ${HOST}, subset: v1 }, weight: 80 }
    - { destination: { host: ${HOST}, subset: v2 }, weight: 20 }`;
const ALL_V2 = `  - route: [{ destination: { host: ${HOST}, subset: v2 } }]`;

function mesh(backends: readonly Backend[]): string {
  const entries = backends.map(
    (b) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${b.name}, namespace: grpc }
spec:
  address: 127.0.0.1
  labels: { app: echo, version: ${b.name.split('-')[0] ?? ''} }
  ports: { grpc: ${String(b.port)} }
`,
  );
  return `apiVersion: v1
kind: Namespace
metadata: { name: grpc }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: grpc }
spec:
  selector: { app: echo }
  ports: [{ name: grpc, port: 50051, targetPort: grpc }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: grpc }
spec:
  host: ${HOST}
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
  - { name: flaky, labels: { version: flaky } }
${entries.join('')}`;
}

const count = (m: Map<string, number>, prefix: string): number =>
  [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

test(
  '@grpc/grpc-js-xds resolves and routes through palisade control: match, weighted split, faults, retries, pushes',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir();
    t.after(dir.cleanup);
    const backends = await Promise.all([
      startEchoBackend('v1-a'),
      startEchoBackend('v1-b'),
      startEchoBackend('v2-a'),
      startEchoBackend('flaky-a', { flaky: true }),
    ]);
    t.after(async () => {
      await Promise.all(backends.map((b) => b.close()));
    });
    const byName = new Map(backends.map((b) => [b.name, b]));
    const configDir = join(dir.path, 'config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), mesh(backends));
    writeFileSync(join(configDir, 'virtual-service.yaml'), virtualService(SPLIT_80_20));
    const port = await freePort();
    const address = `127.0.0.1:${String(port)}`;
    const env = { PALISADE_STATE_DIR: join(dir.path, 'state') };

    // Without the opt-in a proxyless client (no token) is refused: it resolves nothing.
    const strict = await spawnPalisade(
      // grpc-js-xds bootstraps offer only insecure/google_default channel credentials: plaintext xDS.
      [
        'control',
        '--config-dir',
        configDir,
        '--listen',
        address,
        '--ca-listen',
        '127.0.0.1:0',
        '--xds-insecure',
      ],
      { ready: /Control plane ready/, env },
    );
    const bootstrap = {
      xds_servers: [
        { server_uri: address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
      ],
      node: {
        id: 'sidecar~127.0.0.1~client-0.grpc~grpc.svc.cluster.local',
        metadata: { GENERATOR: 'grpc', NAMESPACE: 'grpc', LABELS: { app: 'client' } },
        locality: {},
      },
    };
    process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify(bootstrap);
    const xds = await import('@grpc/grpc-js-xds');
    xds.register();
    {
      const refused = new Echo(TARGET, grpc.credentials.createInsecure()) as unknown as EchoClient;
      const r = await call(refused, {}, 1500);
      refused.close();
      assert.notEqual(r.code, grpc.status.OK, 'an unauthenticated proxyless client got routes');
      assert.match(
        strict.output(),
        /missing bearer service-account token.*"msg":"xDS stream refused"/,
      );
    }
    await strict.stop();

    const plane = await spawnPalisade(
      [
        'control',
        '--config-dir',
        configDir,
        '--listen',
        address,
        '--ca-listen',
        '127.0.0.1:0',
        '--allow-unauthenticated-proxyless',
        '--xds-insecure',
      ],
      { ready: /Control plane ready/, env },
    );
    // grpc-js-xds keeps one xDS client per bootstrap; it reconnects (with backoff) to the new plane.
    const client = new Echo(TARGET, grpc.credentials.createInsecure()) as unknown as EchoClient;
    // The client goes first: while it watches resources, grpc-js-xds keeps re-subscribing
    // (with 15 s resource timers that hold the event loop) to a plane that is gone.
    t.after(async () => {
      client.close();
      await plane.stop();
    });
    await waitFor(async () => (await call(client, {}, 2000)).code === grpc.status.OK, 30_000, 200);

    await t.test('plain routing: a header match sends every call to subset v2', async () => {
      const counts = await callMany(client, 40, { 'x-route': 'v2' });
      assert.deepEqual([...counts], [['v2-a', 40]]);
    });

    await t.test(
      'weighted split 80/20 measured over 600 calls, round robin within v1',
      async () => {
        const counts = await callMany(client, 600);
        const v1 = count(counts, 'v1-');
        const v2 = count(counts, 'v2-');
        assert.equal(v1 + v2, 600, `every call answered: ${JSON.stringify([...counts])}`);
        // Binomial sd at n=600, p=0.8 is 1.6 %; ±6 % is beyond 3.5 sd.
        const share = v1 / 600;
        assert.ok(share > 0.74 && share < 0.86, `v1 share ${share.toFixed(3)} not ~0.80`);
        assert.ok(
          (counts.get('v1-a') ?? 0) > 100 && (counts.get('v1-b') ?? 0) > 100,
          'both v1 endpoints used',
        );
      },
    );

    await t.test(
      'fault abort: grpcStatus UNAVAILABLE, the backend never sees the call',
      async () => {
        const before = (byName.get('v1-a')?.calls ?? 0) + (byName.get('v1-b')?.calls ?? 0);
        const counts = await callMany(client, 20, { 'x-fault': 'abort' });
        assert.deepEqual([...counts], [[`status:${String(grpc.status.UNAVAILABLE)}`, 20]]);
        const after = (byName.get('v1-a')?.calls ?? 0) + (byName.get('v1-b')?.calls ?? 0);
        assert.equal(after, before);
      },
    );

    await t.test(
      'fault delay: 1 s added; a 300 ms deadline expires, a 5 s one succeeds',
      async () => {
        const slow = await call(client, { 'x-fault': 'delay' }, 5000);
        assert.equal(slow.code, grpc.status.OK);
        assert.ok(slow.ms >= 950, `delayed call took ${String(slow.ms)} ms`);
        const expired = await call(client, { 'x-fault': 'delay' }, 300);
        assert.equal(expired.code, grpc.status.DEADLINE_EXCEEDED);
      },
    );

    await t.test(
      'retries: unavailable retried up to 3 times; attempts 0 surfaces the failures',
      async () => {
        const flaky = byName.get('flaky-a');
        assert.ok(flaky !== undefined);
        const before = flaky.calls;
        // One at a time, so "every other call fails" is per attempt, not racy.
        for (let i = 0; i < 20; i += 1) {
          const r = await call(client, { 'x-route': 'flaky' });
          assert.equal(
            r.code,
            grpc.status.OK,
            `call ${String(i)} failed with ${String(r.code)} despite retries`,
          );
        }
        assert.ok(
          flaky.calls - before >= 30,
          `retries reached the server: ${String(flaky.calls - before)} attempts`,
        );
        let failed = 0;
        for (let i = 0; i < 20; i += 1) {
          const r = await call(client, { 'x-route': 'flaky-no-retry' });
          if (r.code === grpc.status.UNAVAILABLE) failed += 1;
        }
        assert.ok(failed >= 8, `without retries ${String(failed)}/20 calls failed`);
      },
    );

    await t.test(
      'a VirtualService change reaches the running client; proxy-status shows it SYNCED',
      async () => {
        writeFileSync(join(configDir, 'virtual-service.yaml'), virtualService(ALL_V2));
        await waitFor(
          async () => {
            const counts = await callMany(client, 20);
            return counts.get('v2-a') === 20;
          },
          20_000,
          200,
        );
        const status = await runPalisade([
          'proxy-status',
          '--control',
          address,
          '--xds-insecure',
          '--state-dir',
          join(dir.path, 'state'),
        ]);
        assert.equal(status.code, 0, status.stderr);
        const line = status.stdout.split('\n').find((l) => l.includes('client-0.grpc'));
        assert.ok(line !== undefined, status.stdout);
        assert.match(line, /SYNCED/);
        const listeners = await runPalisade([
          'proxy-config',
          'listener',
          'client-0',
          '--control',
          address,
          '--xds-insecure',
          '--state-dir',
          join(dir.path, 'state'),
          '-o',
          'json',
        ]);
        assert.equal(listeners.code, 0, listeners.stderr);
        assert.match(listeners.stdout, new RegExp(`"name": "${HOST}:50051"`));
      },
    );
  },
);
