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

const HOST = 'echo.grpc.svc.cluster.local';
const TARGET = `xds:///${HOST}:50051`;

interface EchoReply {
  readonly server: string;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};

const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: '/palisade.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

interface Backend {
  readonly name: string;
  readonly port: number;
  calls: number;
  close(): Promise<void>;
}

/** A gRPC server answering `{server: name}`; `flaky` fails every other call with UNAVAILABLE. */
async function startBackend(name: string, flaky = false): Promise<Backend> {
  const server = new grpc.Server();
  const backend = {
    name,
    port: 0,
    calls: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      }),
  };
  server.addService(ECHO_SERVICE, {
    Echo(_call: grpc.ServerUnaryCall<unknown, EchoReply>, done: grpc.sendUnaryData<EchoReply>) {
      backend.calls += 1;
      if (flaky && backend.calls % 2 === 1) {
        done({ code: grpc.status.UNAVAILABLE, details: `${name} is flaky` });
        return;
      }
      done(null, { server: name });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => {
      if (error === null) resolve(p);
      else reject(error);
    });
  });
  return Object.assign(backend, { port });
}

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

type EchoClient = grpc.Client & {
  Echo(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
};

/** One unary call: the reply's server, or the status code it failed with. */
function call(
  client: EchoClient,
  headers: Record<string, string> = {},
  deadlineMs = 5000,
): Promise<{ server?: string; code: grpc.status; ms: number }> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  const started = Date.now();
  return new Promise((resolve) => {
    client.Echo({}, metadata, { deadline: Date.now() + deadlineMs }, (error, reply) => {
      const ms = Date.now() - started;
      if (error !== null) resolve({ code: error.code, ms });
      else
        resolve({
          code: grpc.status.OK,
          ms,
          ...(reply === undefined ? {} : { server: reply.server }),
        });
    });
  });
}

async function callMany(
  client: EchoClient,
  n: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  // Bounded: n calls, 20 at a time.
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, () => call(client, headers)),
    );
    for (const r of batch) {
      const key = r.server ?? `status:${String(r.code)}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
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
      startBackend('v1-a'),
      startBackend('v1-b'),
      startBackend('v2-a'),
      startBackend('flaky-a', true),
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
      ['control', '--config-dir', configDir, '--listen', address, '--ca-listen', '127.0.0.1:0'],
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
    const Echo = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
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
        const status = await runPalisade(['proxy-status', '--control', address]);
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
          '-o',
          'json',
        ]);
        assert.equal(listeners.code, 0, listeners.stderr);
        assert.match(listeners.stdout, new RegExp(`"name": "${HOST}:50051"`));
      },
    );
  },
);
