/**
 * The metrics endpoint scraped by a real Prometheus (Debian package
 * `prometheus`): the proxy's `/stats/prometheus` text must parse, and the
 * series must arrive with Istio's names, labels and bucket boundaries, as
 * Istio dashboards query them. Skips (saying why) only outside CI when the binary is absent.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { createMeshMetrics, requestLabels, tcpLabels } from '../../src/telemetry/index.js';
import { freePort, tempDir, waitFor } from '../helpers/index.js';
import { findTool } from '../helpers/tools.js';

// Outside CI a missing binary skips (saying how to install it); in CI it fails.
const prometheus = findTool('prometheus', 'apt-get install prometheus');
const prometheusBin = prometheus.path;

const leNumber = (le: string | undefined): number => (le === '+Inf' ? Infinity : Number(le));

interface QueryResult {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

test(
  'Prometheus scrapes /stats/prometheus and sees Istio series',
  { skip: prometheus.skip },
  async (t) => {
    assert.ok(prometheusBin !== undefined, 'CI=true: prometheus must be installed (.ci/run does)');
    const metrics = createMeshMetrics();
    const labels = requestLabels({
      reporter: 'destination',
      source: {
        workload: 'productpage-v1',
        namespace: 'default',
        principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
        app: 'productpage',
        version: 'v1',
      },
      destination: {
        workload: 'reviews-v2',
        namespace: 'default',
        principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
        app: 'reviews',
        version: 'v2',
        service: 'reviews.default.svc.cluster.local',
      },
      responseCode: 200,
      mutualTls: true,
    });
    for (let i = 0; i < 3; i += 1) {
      metrics.recordRequest(labels, { durationMs: 12, requestBytes: 0, responseBytes: 295 });
    }
    metrics.recordTcpOpen(tcpLabels({ reporter: 'source', source: {}, destination: {} }));

    const server = createServer((req, res) => {
      if (req.url !== '/stats/prometheus') {
        res.writeHead(404).end();
        return;
      }
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        }),
    );
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const dir = tempDir('palisade-prom-');
    t.after(() => {
      dir.cleanup();
    });
    const config = join(dir.path, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: palisade-proxy',
        '    metrics_path: /stats/prometheus',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    // freePort's port can be taken by another test's listener before Prometheus binds it
    // (seen once in a full run: "bind: address already in use"): then start again on another.
    let output = '';
    const start = async (): Promise<{ prom: ChildProcess; port: number }> => {
      const port = await freePort();
      const prom = spawn(
        prometheusBin,
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir.path, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prom.stdout.on('data', (c: Buffer) => (output += c.toString()));
      prom.stderr.on('data', (c: Buffer) => (output += c.toString()));
      return { prom, port };
    };
    let { prom, port } = await start();
    for (let attempt = 1; attempt < 3; attempt += 1) {
      const lost = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          resolve(false);
        }, 3000);
        prom.once('exit', () => {
          clearTimeout(timer);
          resolve(output.includes('address already in use'));
        });
      });
      if (!lost) break;
      output = '';
      ({ prom, port } = await start());
    }
    const exited = new Promise<void>((resolve) => {
      if (prom.exitCode !== null || prom.signalCode !== null) resolve();
      else
        prom.once('exit', () => {
          resolve();
        });
    });
    t.after(async () => {
      if (prom.exitCode === null && prom.signalCode === null) {
        prom.kill('SIGTERM');
        const timer = setTimeout(() => prom.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    });

    const query = async (q: string): Promise<QueryResult['data']['result']> => {
      const res = await fetch(
        `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`,
      );
      const body = (await res.json()) as QueryResult;
      return body.status === 'success' ? body.data.result : [];
    };

    let result: QueryResult['data']['result'];
    try {
      result =
        (await waitFor(
          async () => {
            const r = await query('istio_requests_total');
            return r.length > 0 ? r : undefined;
          },
          45_000,
          500,
        )) ?? [];
    } catch (e) {
      throw new Error(`${(e as Error).message}\nprometheus output:\n${output.slice(-4000)}`, {
        cause: e,
      });
    }
    assert.equal(result.length, 1);
    const series = result[0]!;
    assert.equal(series.value[1], '3');
    const { __name__, job, instance, ...istio } = series.metric;
    assert.equal(__name__, 'istio_requests_total');
    assert.equal(job, 'palisade-proxy');
    assert.equal(instance, target);
    // Prometheus drops empty label values: grpc_response_status="" is absent, as with Envoy.
    const { grpc_response_status: _grpc, ...expected } = labels;
    assert.deepEqual(istio, expected);

    const up = await query('up{job="palisade-proxy"}');
    assert.equal(up[0]?.value[1], '1', 'the scrape succeeded');
    const buckets = await query('istio_request_duration_milliseconds_bucket');
    assert.deepEqual(
      buckets.map((b) => b.metric.le).sort((a, b) => leNumber(a) - leNumber(b)),
      [
        '0.5',
        '1',
        '5',
        '10',
        '25',
        '50',
        '100',
        '250',
        '500',
        '1000',
        '2500',
        '5000',
        '10000',
        '30000',
        '60000',
        '300000',
        '600000',
        '1800000',
        '3600000',
        '+Inf',
      ],
    );
    const le25 = buckets.find((b) => b.metric.le === '25');
    assert.equal(le25?.value[1], '3');
    const tcp = await query('istio_tcp_connections_opened_total');
    assert.equal(tcp[0]?.metric.request_protocol, 'tcp');
    assert.equal(tcp[0].metric.connection_security_policy, 'unknown');
  },
);
