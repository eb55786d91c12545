// Active health checking (Cluster health_checks, Envoy's HealthCheck) through
// a real `palisade proxy` process fed by the test ADS server, against two
// plain upstreams whose /healthz the test flips: the checker's requests as
// Envoy sends them, an unhealthy host taken out of rotation and put back
// after healthy_threshold passes, a dead host out after unhealthy_threshold
// network failures, Envoy's panic mode when most hosts are unhealthy, and a
// NACK for what is not implemented.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  duration,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
} from './ads-server.js';

const WEB = clusterName('web');

function healthCheck(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    health_checks: [
      {
        timeout: duration(500),
        interval: duration(100),
        unhealthy_threshold: { value: 2 },
        healthy_threshold: { value: 2 },
        http_health_check: { path: '/healthz', expected_statuses: [{ start: 200, end: 204 }] },
        ...extra,
      },
    ],
  };
}

/** Who answered `n` requests, counted. */
async function spread(via: readonly string[], n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i += 1) {
    const r = await curl([...via, `http://web/work/${String(i)}`]);
    const who = r.status === 200 ? (r.headers['x-upstream'] ?? '?') : `status ${String(r.status)}`;
    counts[who] = (counts[who] ?? 0) + 1;
  }
  return counts;
}

test('active health checks through a palisade proxy process', async (t) => {
  const status = { a: 200, b: 200 };
  const upstream = async (name: 'a' | 'b') => {
    const server = await startUpstream(name, (req, res) => {
      if (req.url === '/healthz') res.writeHead(status[name]).end();
      else res.end(`${name} ${req.url}`);
    });
    t.after(() => server.close());
    return server;
  };
  const a = await upstream('a');
  const b = await upstream('b');
  const ads = await startTestAdsServer(t);
  const resources = outboundResources(
    [{ name: WEB, endpoints: [{ port: a.port }, { port: b.port }], extra: healthCheck() }],
    [virtualHost('web', [{ match: { prefix: '/' }, route: { cluster: WEB } }])],
  );
  feed(ads, resources, 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = proxy.via;

  await t.test('the checker asks /healthz as Envoy does, and both hosts serve', async () => {
    await waitFor(() => b.seen.some((r) => r.url === '/healthz'), 20_000);
    const check = b.seen.find((r) => r.url === '/healthz');
    assert.ok(check !== undefined);
    assert.equal(check.headers['user-agent'], 'Envoy/HC');
    assert.equal(check.headers.host, WEB, 'Host is the cluster name');
    await waitFor(async () => Object.keys(await spread(via, 6)).length === 2, 10_000);
  });

  await t.test(
    'an unexpected status takes a host out at once; healthy_threshold passes put it back',
    async () => {
      status.b = 503;
      await waitFor(async () => {
        const counts = await spread(via, 6);
        return counts['a'] === 6;
      }, 10_000);
      assert.deepEqual(await spread(via, 10), { a: 10 }, 'an unhealthy host got traffic');
      status.b = 204; // outside [200, 204): still unexpected
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(await spread(via, 6), { a: 6 });
      status.b = 203;
      await waitFor(async () => (await spread(via, 6))['b'] !== undefined, 10_000);
    },
  );

  await t.test('most hosts unhealthy: Envoy panic mode uses them all', async () => {
    status.a = 500;
    status.b = 500;
    await new Promise((resolve) => setTimeout(resolve, 800));
    await waitFor(async () => Object.keys(await spread(via, 8)).length === 2, 10_000);
    status.a = 200;
    status.b = 200;
  });

  await t.test('a dead host is out after unhealthy_threshold failed connections', async () => {
    await waitFor(async () => Object.keys(await spread(via, 6)).length === 2, 10_000);
    await b.close();
    // With one of two hosts down the other gets everything once the checker notices (no retries
    // configured here, so a request sent to the dead host before that fails).
    await waitFor(async () => (await spread(via, 6))['a'] === 6, 10_000);
    assert.deepEqual(await spread(via, 10), { a: 10 });
  });

  await t.test('unimplemented health check kinds are NACKed', async () => {
    feed(
      ads,
      outboundResources(
        [
          {
            name: WEB,
            endpoints: [{ port: a.port }],
            extra: {
              health_checks: [
                { timeout: duration(500), interval: duration(100), grpc_health_check: {} },
              ],
            },
          },
        ],
        [virtualHost('web', [{ match: { prefix: '/' }, route: { cluster: WEB } }])],
      ),
      'v2',
    );
    await waitFor(() =>
      ads.requests.some(
        (r) =>
          r.type_url === TYPE_URLS.cluster &&
          /grpc_health_check|only http_health_check/.test(r.error_detail?.message ?? ''),
      ),
    );
  });
});
