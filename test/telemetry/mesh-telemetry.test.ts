// What a user of `palisade up --prometheus --tracing` sees after Bookinfo
// traffic, checked through the real peers: Prometheus (Debian package,
// started by `up`) scraping every proxy, with every Istio workload label
// filled on both reporters thanks to the peer metadata exchange; the
// Grafana dashboards' queries run against it; one /productpage request's
// trace in the receiver with spans from the ingress, productpage (in and
// out), reviews and ratings proxies; and a plaintext client forging
// `x-envoy-peer-metadata` reported as `unknown`.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  REPO_ROOT,
  runPalisade,
  runProcess,
  spawnPalisade,
  tempDir,
  freePort,
  freePortRun,
  waitFor,
} from '../helpers/index.js';
import { bookinfoLock, findTool } from '../helpers/tools.js';

const prometheus = findTool('prometheus', 'apt-get install prometheus');
const DETAILS_INBOUND = 'http://127.10.1.1:9080/details/0';

// The mesh binds fixed loopback addresses: one Bookinfo test at a time.
const lock = prometheus.skip === false ? await bookinfoLock() : undefined;
after(() => lock?.release());

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

interface Span {
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  workload: string;
  kind: string;
  attributes: Record<string, unknown>;
}

test(
  'up --prometheus --tracing: labelled metrics in Prometheus, dashboards, a trace across four proxies, no forged identity',
  { timeout: 240_000, skip: prometheus.skip },
  async (t) => {
    const dir = tempDir('palisade-t20-');
    t.after(dir.cleanup);
    const state = join(dir.path, 'state');
    // Admin ports below the ephemeral range (freePortRun says why).
    const [controlPort, caPort, adminBase] = [
      await freePort(),
      await freePort(),
      await freePortRun(32),
    ];
    const mesh = await spawnPalisade(
      [
        'up',
        '-f',
        'examples/bookinfo',
        '--isolation',
        'loopback',
        '--state-dir',
        state,
        '--control-port',
        String(controlPort),
        '--ca-port',
        String(caPort),
        '--admin-base-port',
        String(adminBase),
        '--prometheus',
        '--tracing',
      ],
      { ready: /Ctrl-C stops the mesh/, timeoutMs: 120_000, cwd: REPO_ROOT },
    );
    t.after(async () => {
      assert.equal(await mesh.stop(20_000), 0, 'palisade up exits 0 on SIGTERM');
    });
    const output = mesh.output();
    const promUrl = /^Prometheus: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(output)?.[1];
    const tracesUrl = /^Traces: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(output)?.[1];
    const ingress = /^Ingress: (\S+)\/productpage/m.exec(output)?.[1];
    assert.ok(promUrl !== undefined && tracesUrl !== undefined && ingress !== undefined, output);
    const info = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as {
      prometheusUrl: string;
      tracesUrl: string;
      proxies: { name: string; adminUrl: string }[];
    };
    assert.equal(info.prometheusUrl, promUrl);
    assert.equal(info.tracesUrl, tracesUrl);

    const curl = (args: string[]): Promise<{ code: number | null; stdout: string }> =>
      runProcess('curl', ['-sS', '--max-time', '10', ...args], { timeoutMs: 15_000 });
    const caArgs = ingress.startsWith('https:') ? ['--cacert', join(state, 'ingress-ca.pem')] : [];
    for (let i = 0; i < 12; i += 1) {
      const r = await curl([
        ...caArgs,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${ingress}/productpage`,
      ]);
      assert.equal(r.stdout, '200');
    }

    const query = async (q: string): Promise<{ status: string; result: Series[] }> => {
      const res = await fetch(`${promUrl}api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; data?: { result: Series[] } };
      return { status: body.status, result: body.data?.result ?? [] };
    };

    await t.test('Prometheus scrapes every proxy', async () => {
      const up = await waitFor(
        async () => {
          const r = await query('up{job="envoy-stats"}');
          return r.result.length === info.proxies.length &&
            r.result.every((s) => s.value[1] === '1')
            ? r.result
            : undefined;
        },
        30_000,
        500,
      );
      assert.equal(up?.length, info.proxies.length);
    });

    await t.test('Prometheus scrapes the control plane (pilot_xds, pushes, CSRs)', async () => {
      // Every proxy of the mesh holds one xDS stream; each was pushed config and signed a CSR.
      const connected = await waitFor(
        async () => {
          const r = await query('sum(pilot_xds{job="palisade-control"})');
          return Number(r.result[0]?.value[1] ?? '0') >= info.proxies.length ? r.result : undefined;
        },
        30_000,
        500,
      );
      assert.ok(connected);
      const pushes = await query('sum(pilot_xds_pushes{job="palisade-control",type="lds"})');
      assert.ok(Number(pushes.result[0]?.value[1] ?? '0') >= info.proxies.length);
      const issued = await query('citadel_server_success_cert_issue_count{job="palisade-control"}');
      assert.ok(Number(issued.result[0]?.value[1] ?? '0') >= info.proxies.length);
    });

    await t.test('both reporters name every workload of the mesh traffic', async () => {
      const q =
        'sum(rate(istio_requests_total{reporter="destination"}[1m])) by (source_workload, destination_workload)';
      // Every edge the traffic makes: ingress → productpage → details, reviews → ratings.
      const edges = await waitFor(
        async () => {
          const r = await query(q);
          const pairs = r.result.map(
            (s) => `${s.metric.source_workload} → ${s.metric.destination_workload}`,
          );
          // rate() needs two scrapes after the traffic for every edge: wait for all of them.
          return (pairs.includes('reviews-v2 → ratings-v1') ||
            pairs.includes('reviews-v3 → ratings-v1')) &&
            pairs.includes('istio-ingressgateway → productpage-v1') &&
            pairs.includes('productpage-v1 → details-v1') &&
            pairs.some((p) => /^productpage-v1 → reviews-v[123]$/.test(p))
            ? pairs
            : undefined;
        },
        45_000,
        1_000,
      );
      assert.ok(edges !== undefined);
      for (const e of ['istio-ingressgateway → productpage-v1', 'productpage-v1 → details-v1'])
        assert.ok(edges.includes(e), `${e} in ${edges.join(', ')}`);
      assert.ok(
        edges.some((e) => /^productpage-v1 → reviews-v[123]$/.test(e)),
        edges.join(', '),
      );
      assert.ok(!edges.some((e) => e.includes('unknown')), edges.join(', '));
      const source = await waitFor(
        async () => {
          const r = await query(
            'sum(rate(istio_requests_total{reporter="source"}[1m])) by (source_workload, destination_workload, destination_version, destination_principal)',
          );
          return r.result.some((s) => s.metric.destination_workload === 'ratings-v1')
            ? r
            : undefined;
        },
        30_000,
        1_000,
      );
      assert.ok(source !== undefined);
      // ingress → productpage → details, reviews (one or more versions) → ratings.
      assert.ok(source.result.length >= 4, JSON.stringify(source.result.map((s) => s.metric)));
      for (const s of source.result) {
        assert.notEqual(s.metric.destination_workload, 'unknown', JSON.stringify(s.metric));
        assert.notEqual(s.metric.destination_principal, 'unknown', JSON.stringify(s.metric));
      }
      const labels = await query(
        'istio_requests_total{reporter="destination", source_workload="productpage-v1", destination_workload="details-v1"}',
      );
      const m = labels.result[0]?.metric ?? {};
      assert.equal(m.source_app, 'productpage');
      assert.equal(m.source_version, 'v1');
      assert.equal(m.source_workload_namespace, 'default');
      assert.equal(m.source_canonical_service, 'productpage');
      assert.equal(m.source_cluster, 'Kubernetes');
      assert.match(
        m.source_principal ?? '',
        /^spiffe:\/\/[^/]+\/ns\/default\/sa\/bookinfo-productpage$/,
      );
      assert.equal(m.destination_app, 'details');
      assert.equal(m.connection_security_policy, 'mutual_tls');
    });

    await t.test('every query of the Grafana dashboards parses and returns series', async () => {
      const files = readdirSync(join(REPO_ROOT, 'examples', 'grafana')).filter((f) =>
        f.endsWith('.json'),
      );
      assert.equal(files.length, 3);
      const vars: Record<string, string> = {
        __rate_interval: '1m',
        service: 'reviews.default.svc.cluster.local',
        namespace: 'default',
        workload: 'productpage-v1',
      };
      const substitute = (e: string): string =>
        e.replace(/\$(\w+)/g, (whole, name: string) => vars[name] ?? whole);
      let count = 0;
      for (const file of files) {
        const d = JSON.parse(
          readFileSync(join(REPO_ROOT, 'examples', 'grafana', file), 'utf8'),
        ) as {
          panels: { title: string; targets: { expr: string }[] }[];
          templating: { list: { type: string; query: string }[] };
        };
        const exprs = d.panels.flatMap((p) => p.targets.map((x) => [p.title, x.expr] as const));
        // Grafana's label_values(metric, label) is the set of values of `label` in `metric`.
        for (const v of d.templating.list.filter((x) => x.type === 'query')) {
          const lv = /^label_values\((.*), (\w+)\)$/.exec(v.query);
          assert.ok(lv !== null, v.query);
          exprs.push([`variable ${v.query}`, `group by (${lv[2] ?? ''}) (${lv[1] ?? ''})`]);
        }
        for (const [title, expr] of exprs) {
          const r = await query(substitute(expr));
          assert.equal(r.status, 'success', `${file} "${title}": ${expr}`);
          assert.ok(
            r.result.length > 0,
            `${file} "${title}" returned no series: ${substitute(expr)}`,
          );
          count += 1;
        }
      }
      assert.ok(count >= 20, `${String(count)} queries`);
    });

    await t.test('one /productpage request is one trace across four proxies', async () => {
      const r = await curl([
        ...caArgs,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${ingress}/productpage`,
      ]);
      assert.equal(r.stdout, '200');
      const found = await waitFor(
        async () => {
          const list = (await (
            await fetch(`${tracesUrl}api/traces?service=istio-ingressgateway&limit=50`)
          ).json()) as { traces: { traceId: string; services: string[]; rootService: string }[] };
          for (const s of list.traces) {
            if (!s.services.some((x) => x.startsWith('ratings-'))) continue;
            const detail = (await (await fetch(`${tracesUrl}api/traces/${s.traceId}`)).json()) as {
              spans: Span[];
            };
            // The exporters flush every 5 s: wait until all the proxies' spans are in.
            if (detail.spans.length >= 7) return { summary: s, spans: detail.spans };
          }
          return undefined;
        },
        45_000,
        1_000,
      );
      assert.ok(found !== undefined, 'a trace reaching ratings');
      const { summary, spans } = found;
      assert.match(summary.rootService, /^istio-ingressgateway\./);
      const services = new Set(spans.map((s) => s.workload));
      for (const w of ['istio-ingressgateway', 'productpage-v1', 'ratings-v1'])
        assert.ok(services.has(w), `${w} in ${[...services].join(', ')}`);
      assert.ok([...services].some((w) => /^reviews-v[23]$/.test(w)));
      const productpage = spans.filter((s) => s.workload === 'productpage-v1');
      assert.ok(
        productpage.some((s) => s.kind === 'server'),
        'productpage inbound server span',
      );
      assert.ok(
        productpage.some((s) => s.kind === 'client'),
        'productpage outbound client spans',
      );
      // One tree: every span but the ingress root has its parent in the trace.
      const ids = new Set(spans.map((s) => s.spanId));
      const orphans = spans.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
      assert.equal(orphans.length, 1, JSON.stringify(orphans));
      assert.equal(orphans[0]?.workload, 'istio-ingressgateway');
      const ratings = spans.find((s) => s.workload === 'ratings-v1' && s.kind === 'server');
      assert.match(String(ratings?.attributes['peer.principal']), /\/sa\/bookinfo-reviews$/);
    });

    await t.test('a plaintext client forging peer metadata is reported unknown', async () => {
      const claim = Buffer.from(
        JSON.stringify({
          NAME: 'productpage-v1-0',
          NAMESPACE: 'default',
          WORKLOAD_NAME: 'productpage-v1',
          SERVICE_ACCOUNT: 'bookinfo-productpage',
          LABELS: { app: 'productpage', version: 'v1' },
        }),
      ).toString('base64');
      const permissive = join(dir.path, 'permissive.yaml');
      writeFileSync(
        permissive,
        'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: default }\nspec: { mtls: { mode: PERMISSIVE } }\n',
      );
      const applied = await runPalisade(['apply', '-f', permissive, '--state-dir', state], {
        cwd: REPO_ROOT,
      });
      assert.equal(applied.code, 0, applied.stderr);
      for (let i = 0; i < 3; i += 1) {
        const r = await curl([
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-H',
          `x-envoy-peer-metadata: ${claim}`,
          '-H',
          'x-envoy-peer-metadata-id: sidecar~127.10.2.1~productpage-v1-0.default~default.svc.cluster.local',
          DETAILS_INBOUND,
        ]);
        assert.equal(r.stdout, '200');
      }
      const admin = info.proxies.find((p) => p.name === 'details-v1-0-sidecar')?.adminUrl;
      assert.ok(admin !== undefined);
      const text = await (await fetch(`${admin}/stats/prometheus`)).text();
      const plaintext = text
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('istio_requests_total{') &&
            l.includes('reporter="destination"') &&
            l.includes('connection_security_policy="none"'),
        );
      assert.equal(plaintext.length, 1, plaintext.join('\n'));
      assert.match(plaintext[0] ?? '', /source_workload="unknown"/);
      assert.match(plaintext[0] ?? '', /source_principal="unknown"/);
      assert.match(plaintext[0] ?? '', /source_app="unknown"/);
      assert.match(plaintext[0] ?? '', /\} 3$/);
    });
  },
);
