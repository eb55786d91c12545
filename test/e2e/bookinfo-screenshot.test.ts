// What a newcomer sees first (issue 16): the Bookinfo page through the
// ingress, in a real browser — Debian's headless Chromium driven by
// puppeteer-core (no downloaded browser). The page is styled by productpage's
// own stylesheet (no CDN), the sign-in fields are labelled, and reloading
// shows reviews v1 (no stars), v2 (black stars) and v3 (red stars), as
// Istio's Bookinfo does under default routing. The screenshot it takes goes to
// a temporary folder, or — with PALISADE_UPDATE_SCREENSHOTS=1 — to
// docs/images/bookinfo.png, shown in the README (so `npm test` leaves the work
// tree as it found it). Outside CI a missing
// chromium skips with how to install it; in CI it fails.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { freePort, REPO_ROOT, spawnPalisade, tempDir } from '../helpers/index.js';
import { bookinfoLock, findTool } from '../helpers/tools.js';

const chromium = findTool('chromium', 'apt-get install chromium');
const PRODUCTPAGE = 'http://127.12.0.1:8080/productpage';
// The one place the test reads the environment: whether to refresh the README's picture.
const UPDATE = process.env['PALISADE_UPDATE_SCREENSHOTS'] === '1';
const SCREENSHOT_DIR = UPDATE
  ? join(REPO_ROOT, 'docs', 'images')
  : join(tmpdir(), 'palisade-screenshots');
const SCREENSHOT = join(SCREENSHOT_DIR, 'bookinfo.png');
/** What the page shows, read in the browser. */
const FACTS = `({
  servedBy: /reviews-v[123]/.exec(document.body.innerText)?.[0] ?? 'none',
  stars: [...document.querySelectorAll('.stars')].map((e) => e.className),
  bar: getComputedStyle(document.querySelector('nav.bar') ?? document.body).backgroundColor,
  title: document.querySelector('h1')?.textContent ?? '',
})`;

test(
  'the Bookinfo page in headless Chromium: styled, labelled, all three reviews versions',
  { skip: chromium.skip, timeout: 300_000 },
  async (t) => {
    assert.ok(chromium.path !== undefined, 'CI=true: chromium must be installed (.ci/run does)');
    // Undone last-first: the browser, the mesh, the folder, then the lock.
    const cleanups: (() => unknown)[] = [];
    t.after(async () => {
      for (const undo of cleanups.reverse()) await undo();
    });
    const lock = await bookinfoLock();
    cleanups.push(() => lock.release());
    const dir = tempDir('palisade-screenshot-');
    cleanups.push(dir.cleanup);
    const [controlPort, caPort, adminBase] = [await freePort(), await freePort(), await freePort()];
    const mesh = await spawnPalisade(
      [
        'up',
        '-f',
        'examples/bookinfo',
        '--isolation',
        'loopback',
        '--state-dir',
        join(dir.path, 'state'),
        '--control-port',
        String(controlPort),
        '--ca-port',
        String(caPort),
        '--admin-base-port',
        String(adminBase),
      ],
      { ready: /Ctrl-C stops the mesh/, timeoutMs: 120_000, cwd: REPO_ROOT },
    );
    cleanups.push(() => mesh.stop(20_000));
    const browser = await puppeteer.launch({
      executablePath: chromium.path,
      headless: true,
      args: ['--no-sandbox', '--headless=new'],
      userDataDir: join(dir.path, 'chromium'),
    });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 760 });

    // The sign-in form: every field has a label.
    await page.goto('http://127.12.0.1:8080/login', { waitUntil: 'load' });
    // Browser-side code as text: the tests compile without the DOM lib.
    const unlabelled = (await page.evaluate(
      "[...document.querySelectorAll('input')].filter((i) => !i.labels || i.labels.length === 0).map((i) => i.name || i.id)",
    )) as string[];
    assert.deepEqual(unlabelled, []);

    // Default routing spreads reviews over v1, v2, v3; reload until each was seen (bounded).
    const seen = new Map<string, string>();
    for (let i = 0; i < 60 && seen.size < 3; i += 1) {
      const response = await page.goto(PRODUCTPAGE, { waitUntil: 'load' });
      assert.equal(response?.status(), 200);
      const facts = (await page.evaluate(FACTS)) as {
        servedBy: string;
        stars: string[];
        bar: string;
        title: string;
      };
      assert.equal(facts.title, 'The Comedy of Errors');
      assert.equal(facts.bar, 'rgb(36, 59, 83)', "productpage's stylesheet is applied");
      if (facts.servedBy === 'reviews-v1') assert.deepEqual(facts.stars, []);
      if (facts.servedBy === 'reviews-v2')
        assert.ok(facts.stars.length > 0 && facts.stars.every((c) => c.includes('stars-black')));
      if (facts.servedBy === 'reviews-v3') {
        assert.ok(facts.stars.length > 0 && facts.stars.every((c) => c.includes('stars-red')));
        if (!seen.has('reviews-v3')) {
          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await page.screenshot({ path: SCREENSHOT, fullPage: true });
        }
      }
      seen.set(facts.servedBy, facts.servedBy);
    }
    assert.deepEqual([...seen.keys()].sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
  },
);
