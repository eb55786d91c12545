// The dashboard of issue 20 on a real Bookinfo mesh, in a real browser
// (Debian's headless Chromium driven by puppeteer-core, no downloaded
// browser), and its CLI twins `palisade top` and `palisade tap`. One
// `palisade up` (under the shared Bookinfo lock) serves every check:
//   1. `up` prints `Dashboard: http://127.0.0.1:PORT/` and records it in mesh.json;
//   2. under traffic, `palisade top` and `palisade tap reviews-v2` report it;
//   3. the service graph shows ingress → productpage → reviews v1/v2/v3 →
//      ratings with non-zero rates and an mTLS lock on every edge;
//   4. after `palisade apply` of a DENY policy, the denied edge reviews → ratings
//      carries errors and the security view lists the denials with the policy name;
//   5. the proxies view lists every proxy SYNCED; the live view streams requests;
//   6. with tracing (`up --tracing`, when this tree has it): one /productpage
//      trace's waterfall shows spans from at least four proxies.
// Screenshots go to a temporary folder, or with PALISADE_UPDATE_SCREENSHOTS=1
// to docs/images/ (shown in README.md and docs/observability.md).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import puppeteer from 'puppeteer-core';
import {
  freePort,
  freePortRun,
  REPO_ROOT,
  runPalisade,
  spawnPalisade,
  tempDir,
} from '../helpers/index.js';
import { bookinfoLock, findTool } from '../helpers/tools.js';

const chromium = findTool('chromium', 'apt-get install chromium');
const PRODUCTPAGE = 'http://127.12.0.1:8080/productpage';
const DENY_POLICY = join(
  REPO_ROOT,
  'test',
  'fixtures',
  'dashboard',
  'deny-reviews-to-ratings.yaml',
);
// The one place the test reads the environment: whether to refresh the docs' pictures.
const UPDATE = process.env['PALISADE_UPDATE_SCREENSHOTS'] === '1';
const SCREENSHOT_DIR = UPDATE
  ? join(REPO_ROOT, 'docs', 'images')
  : join(tmpdir(), 'palisade-screenshots');

/** What the graph view shows, read from the SVG in the browser (the tests compile without the DOM lib). */
const GRAPH_FACTS = `[...document.querySelectorAll('#graph g.edge')].map((g) => ({
  source: g.dataset.source, target: g.dataset.target, rps: Number(g.dataset.rps),
  errorRate: Number(g.dataset.errorRate), lock: g.querySelector('.lock') !== null,
  warning: g.querySelector('.plaintext-warning') !== null, label: g.querySelector('.edge-label')?.textContent ?? '',
}))`;

interface EdgeFact {
  source: string;
  target: string;
  rps: number;
  errorRate: number;
  lock: boolean;
  warning: boolean;
  label: string;
}

test(
  'the dashboard on Bookinfo: graph with rates and mTLS locks, a DENY in the security view, proxies, live requests, traces; top and tap',
  { skip: chromium.skip, timeout: 480_000 },
  async (t) => {
    assert.ok(chromium.path !== undefined, 'CI=true: chromium must be installed (.ci/run does)');
    const cleanups: (() => unknown)[] = [];
    t.after(async () => {
      for (const undo of cleanups.reverse()) await undo();
    });
    const lock = await bookinfoLock();
    cleanups.push(() => lock.release());
    const dir = tempDir('palisade-dashboard-');
    cleanups.push(dir.cleanup);
    const stateDir = join(dir.path, 'state');
    const help = await runPalisade(['up', '--help']);
    const tracing = /--tracing/.test(help.stdout + help.stderr);
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
        stateDir,
        '--control-port',
        String(controlPort),
        '--ca-port',
        String(caPort),
        '--admin-base-port',
        String(adminBase),
        '--dashboard-port',
        '0',
        ...(tracing ? ['--tracing'] : []),
      ],
      { ready: /Ctrl-C stops the mesh/, timeoutMs: 120_000, cwd: REPO_ROOT },
    );
    cleanups.push(() => mesh.stop(20_000));

    // 1. The CLI contract: a loopback Dashboard line, also in mesh.json.
    const url = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(mesh.output())?.[1];
    assert.ok(url !== undefined, `no Dashboard line in:\n${mesh.output()}`);
    const meshJson = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as {
      dashboardUrl?: string;
    };
    assert.equal(meshJson.dashboardUrl, url);

    // Background traffic through the ingress until the test stops it.
    const traffic = { on: true };
    let sent = 0;
    const pump = (async () => {
      while (traffic.on) {
        const r = await fetch(PRODUCTPAGE).catch(() => undefined);
        await r?.arrayBuffer();
        sent += 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    cleanups.push(async () => {
      traffic.on = false;
      await pump;
    });

    // 2. CLI twins under traffic.
    const [top, tap] = await Promise.all([
      runPalisade(['top', '--state-dir', stateDir, '--window-ms', '3000', '-o', 'json'], {
        timeoutMs: 120_000,
      }),
      runPalisade(
        [
          'tap',
          'reviews-v2',
          '--state-dir',
          stateDir,
          '--max',
          '4',
          '--duration-ms',
          '60000',
          '-o',
          'json',
        ],
        { timeoutMs: 120_000 },
      ),
    ]);
    assert.equal(top.code, 0, top.stderr);
    const stats = Object.fromEntries(
      (
        JSON.parse(top.stdout) as {
          workloads: {
            workload: string;
            rps: number;
            successRate: number | null;
            mtlsRate: number | null;
          }[];
        }
      ).workloads.map((w) => [w.workload, w]),
    );
    assert.ok((stats['productpage-v1']?.rps ?? 0) > 0, top.stdout);
    assert.equal(stats['productpage-v1']?.successRate, 1);
    assert.equal(stats['productpage-v1'].mtlsRate, 1);
    assert.ok((stats['ratings-v1']?.rps ?? 0) > 0, top.stdout);
    assert.equal(tap.code, 0, tap.stderr);
    const tapped = tap.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            direction: string;
            method: string;
            path: string;
            status: number;
            sourcePrincipal: string | null;
            destination: string;
          },
      );
    assert.equal(tapped.length, 4, tap.stdout);
    const inbound = tapped.find((e) => e.direction === 'inbound');
    assert.ok(inbound !== undefined, tap.stdout);
    assert.equal(inbound.method, 'GET');
    assert.match(inbound.path, /^\/reviews\//);
    assert.equal(
      inbound.sourcePrincipal,
      'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    );
    assert.ok(
      tapped.some(
        (e) =>
          e.direction === 'outbound' &&
          e.destination.endsWith('|ratings.default.svc.cluster.local'),
      ),
      tap.stdout,
    );

    // 3. The service graph in the browser.
    const browser = await puppeteer.launch({
      executablePath: chromium.path,
      headless: true,
      args: ['--no-sandbox', '--headless=new'],
      userDataDir: join(dir.path, 'chromium'),
    });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    await page.goto(`${url}#graph`, { waitUntil: 'load' });
    const want = [
      ['istio-ingressgateway.istio-system', 'productpage-v1.default'],
      ['productpage-v1.default', 'reviews-v1.default'],
      ['productpage-v1.default', 'reviews-v2.default'],
      ['productpage-v1.default', 'reviews-v3.default'],
      ['productpage-v1.default', 'details-v1.default'],
      ['reviews-v2.default', 'ratings-v1.default'],
      ['reviews-v3.default', 'ratings-v1.default'],
    ];
    let edges: EdgeFact[] = [];
    for (let i = 0; i < 40; i += 1) {
      edges = (await page.evaluate(GRAPH_FACTS)) as EdgeFact[];
      if (want.every(([s, d]) => edges.some((e) => e.source === s && e.target === d && e.rps > 0)))
        break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    for (const [s, d] of want) {
      const e = edges.find((x) => x.source === s && x.target === d);
      assert.ok(e !== undefined, `no edge ${String(s)} → ${String(d)} in ${JSON.stringify(edges)}`);
      assert.ok(e.rps > 0, `${String(s)} → ${String(d)}: rps ${String(e.rps)}`);
      assert.ok(e.lock && !e.warning, `${String(s)} → ${String(d)} carries mTLS: a lock`);
      assert.match(e.label, /rps .* err .*p50 [\d.]+ \/ p99 [\d.]+ ms/);
    }
    // The JSON contract behind it.
    const graph = (await (await fetch(`${url}api/graph`)).json()) as {
      nodes: { id: string; workload: string; namespace: string; version: string }[];
      edges: {
        source: string;
        target: string;
        rps: number;
        errorRate: number;
        p50Ms: number;
        p99Ms: number;
        mtls: boolean;
      }[];
    };
    const v3 = graph.nodes.find((n) => n.id === 'reviews-v3.default');
    assert.deepEqual([v3?.workload, v3?.namespace, v3?.version], ['reviews-v3', 'default', 'v3']);
    assert.ok(graph.edges.every((e) => typeof e.p50Ms === 'number' && typeof e.mtls === 'boolean'));
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-graph.png') });

    // 4. A DENY policy: the denied edge and the denial with its policy name.
    // apply writes nothing when the control plane does not answer in time (a loaded machine): retry, bounded.
    let applied = await runPalisade(['apply', '-f', DENY_POLICY, '--state-dir', stateDir], {
      timeoutMs: 120_000,
    });
    for (let i = 0; i < 3 && /PAL_ERR_CONTROL_UNREACHABLE/.test(applied.stderr); i += 1)
      applied = await runPalisade(['apply', '-f', DENY_POLICY, '--state-dir', stateDir], {
        timeoutMs: 120_000,
      });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    await page.goto(`${url}#security`, { waitUntil: 'load' });
    let denies: { policy: string; text: string }[] = [];
    for (let i = 0; i < 40 && denies.length === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await page.reload({ waitUntil: 'load' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      denies = (await page.evaluate(
        "[...document.querySelectorAll('#denies tr.deny-row')].map((r) => ({ policy: r.dataset.policy, text: r.innerText }))",
      )) as { policy: string; text: string }[];
    }
    assert.ok(denies.length > 0, 'the security view lists the denials');
    const deny = denies.find((d) => d.policy === 'default/deny-reviews-to-ratings');
    assert.ok(deny !== undefined, JSON.stringify(denies));
    assert.match(deny.text, /reviews-v[123]\.default/);
    assert.match(
      deny.text,
      /rbac_access_denied_matched_policy\[ns\[default\]-policy\[deny-reviews-to-ratings\]\]/,
    );
    // The "who may call me" matrix (check authz's engine) agrees: reviews may not call ratings.
    const cell = (await page.evaluate(
      'document.querySelector(\'#matrix tr[data-workload="ratings-v1.default"] td[data-source="reviews-v2.default"]\')?.className ?? \'\'',
    )) as string;
    assert.equal(cell, 'deny');
    const policiesCell = (await page.evaluate(
      "document.querySelector('#identities tr[data-workload=\"ratings-v1.default\"]')?.innerText ?? ''",
    )) as string;
    assert.match(policiesCell, /DENY default\/deny-reviews-to-ratings/);
    assert.match(policiesCell, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-ratings/);
    assert.match(policiesCell, /9080: STRICT/);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-security.png') });
    // The denied edge in the graph: reviews → ratings now answers 403.
    let denied: { errorRate: number } | undefined;
    for (let i = 0; i < 30 && !(denied !== undefined && denied.errorRate > 0); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const g = (await (await fetch(`${url}api/graph`)).json()) as {
        edges: { source: string; target: string; errorRate: number; deniedRps: number }[];
      };
      denied = g.edges.find(
        (e) =>
          /^reviews-v[23]\.default$/.test(e.source) &&
          e.target === 'ratings-v1.default' &&
          e.deniedRps > 0,
      );
    }
    assert.ok(denied !== undefined && denied.errorRate > 0, 'the denied edge shows errors');

    // 5. Proxies: every proxy SYNCED; live requests stream through the tap.
    await page.goto(`${url}#proxies`, { waitUntil: 'load' });
    await page.waitForFunction("document.querySelectorAll('#proxies tbody tr').length >= 8", {
      timeout: 60_000,
    });
    const lds = (await page.evaluate(
      "[...document.querySelectorAll('#proxies tbody tr')].map((r) => r.children[2].textContent)",
    )) as string[];
    assert.ok(
      lds.every((c) => c.startsWith('SYNCED')),
      JSON.stringify(lds),
    );
    await page.goto(`${url}#live`, { waitUntil: 'load' });
    await page.waitForFunction("document.querySelectorAll('#tap-workload option').length > 0", {
      timeout: 60_000,
    });
    await page.select('#tap-workload', 'productpage-v1.default');
    await page.click('#tap-start');
    await page.waitForFunction("document.querySelectorAll('#tap tr.tap-row').length >= 3", {
      timeout: 60_000,
    });
    const live = (await page.evaluate("document.querySelector('#tap tbody').innerText")) as string;
    assert.match(live, /GET\s+\/productpage/);

    // 6. Traces (issue 20's trace receiver, `up --tracing`).
    if (!tracing) {
      t.diagnostic(
        'tracing: this tree has no `palisade up --tracing` yet; the waterfall check did not run',
      );
      return;
    }
    // The page lists the newest 50 traces and the background traffic keeps adding more, so the
    // trace is picked from the rows the page shows, searching again until one spans four proxies.
    await page.goto(`${url}#traces`, { waitUntil: 'load' });
    let traceId: string | undefined;
    for (let i = 0; i < 40 && traceId === undefined; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await page.click('#trace-search button[type="submit"]');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const shown = (await page.evaluate(
        "[...document.querySelectorAll('#traces tbody tr')].map((r) => ({ id: r.dataset.trace, services: r.children[4].textContent }))",
      )) as { id: string; services: string }[];
      traceId = shown.find((r) => r.services.split(', ').length >= 4)?.id;
    }
    assert.ok(traceId !== undefined, 'the traces view lists a trace across at least four proxies');
    const listed = (await (await fetch(`${url}api/traces/${traceId}`)).json()) as {
      traceId?: string;
    };
    assert.equal(listed.traceId, traceId, 'the listed trace is served by the trace receiver');
    await page.click(`#traces tr[data-trace="${traceId}"]`);
    await page.waitForSelector('#waterfall .span-row', { timeout: 60_000 });
    const services = (await page.evaluate(
      "[...new Set([...document.querySelectorAll('#waterfall .span-row')].map((r) => r.dataset.service))]",
    )) as string[];
    assert.ok(services.length >= 4, JSON.stringify(services));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-trace.png'), fullPage: true });
    t.diagnostic(`${String(sent)} requests sent`);
  },
);
