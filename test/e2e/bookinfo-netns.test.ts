// Bookinfo with `palisade up --isolation netns`: every replica and gateway in
// its own network namespace on a bridge (pod CIDR 10.233.20.0/24, service
// CIDR 10.233.97.0/24: this test's own ranges), then
// - mesh.json names each replica's namespace and pod IP (the CLI contract);
// - `palisade exec` runs commands inside a pod with its exit status, and the
//   pod resolves Service names to their ClusterIPs through its sidecar's DNS
//   proxy (its /etc/hosts has none);
// - bypass from an attacker namespace the test puts on the same bridge: no
//   pod address and port answers as an app without its sidecar, plaintext to
//   a pod IP:9080 under STRICT reaches no app;
// - traffic through capture (needs the proxy's virtualInbound/virtualOutbound
//   listeners): the ingress page with reviews and ratings, curl and a Node
//   fetch with no proxy settings inside a pod reach other Services by name
//   with mTLS (the destination sidecar's metrics name the client's SPIFFE id),
//   and a connection to another pod's IP is captured too;
// - a Service applied while up runs gets a ClusterIP and a name; an egress
//   NetworkPolicy (reviews → ratings:9080 only) refuses reviews → details at
//   reviews' own sidecar, and leaves other pods' egress alone;
// - after SIGKILL of `up` its namespaces remain, a new `up` removes them, and
//   after a clean stop nothing of the mesh is left.
// Takes no Bookinfo lock: its addresses (10.233.20.x) and ports (free ones)
// do not overlap the loopback Bookinfo tests'.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  freePort,
  REPO_ROOT,
  runPalisade,
  runProcess,
  spawnPalisade,
  tempDir,
  waitFor,
} from '../helpers/index.js';
import { findTool } from '../helpers/tools.js';
import { meshTag, teardownRecord } from '../../src/runtime/netns/index.js';

const POD_CIDR = '10.233.20.0/24';
const SERVICE_CIDR = '10.233.97.0/24';
const HOST_IP = '10.233.20.1';
const ATTACKER_IP = '10.233.20.250';
const ATTACKER = `n19a-attacker-${String(process.pid)}`;

/** Applied while `up` runs: a second Service in front of the ratings pods (no clusterIP). */
const RATINGS_ALIAS = `
apiVersion: v1
kind: Service
metadata: { name: ratings-alias, namespace: default }
spec:
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }]
`;

/** reviews may open connections to ratings on 9080 only (Kubernetes NetworkPolicy egress). */
const REVIEWS_EGRESS = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: reviews-egress, namespace: default }
spec:
  podSelector: { matchLabels: { app: reviews } }
  policyTypes: [Egress]
  egress:
    - to: [{ podSelector: { matchLabels: { app: ratings } } }]
      ports: [{ port: 9080 }]
`;

const curlTool = findTool('curl', 'apt-get install curl');
const ipTool = findTool('ip', 'apt-get install iproute2');
const notRoot =
  process.getuid?.() !== 0 && process.env['CI'] !== 'true'
    ? 'needs root (network namespaces)'
    : false;
if (notRoot !== false) console.log(`# skipped: ${notRoot}`);
const skip = curlTool.skip || ipTool.skip || notRoot;

interface MeshJson {
  isolation: string;
  control: string;
  ingress: { urls: string[] };
  pods: { name: string; netns: string; podIP: string }[];
  apps: { name: string; netns?: string; podIP?: string; address: string }[];
  proxies: { name: string; adminUrl: string }[];
}

/** Names of our namespaces and links still present (tag = the mesh's bridge tag). */
function leftovers(tag: string): string[] {
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  const links = spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout;
  const rules = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout;
  return [
    ...ns.split('\n').filter((l) => l.startsWith(`pal-${tag}-`)),
    ...links.split('\n').filter((l) => l.startsWith(`pal${tag}`)),
    ...rules.split('\n').filter((l) => l.includes('PALISADE_')),
  ];
}

test(
  'Bookinfo in network namespaces: contract, exec, no bypass, capture, teardown',
  { skip, timeout: 600_000 },
  async (t) => {
    const dir = tempDir('palisade-netns-');
    const state = join(dir.path, 'state');
    const tag = meshTag(state);
    t.after(() => {
      // Whatever a failed run left (normally nothing: asserted below), then the directory.
      teardownRecord({
        pid: 0,
        stateDir: state,
        bridge: `pal${tag}br`,
        hostIp: HOST_IP,
        podCidr: POD_CIDR,
        netns: spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
          .stdout.split('\n')
          .map((l) => l.split(' ')[0] ?? '')
          .filter((n) => n.startsWith(`pal-${tag}-`)),
        veths: [],
        hostPids: [],
        shareDir: `/run/palisade/${tag}`,
      });
      dir.cleanup();
    });
    const up = async (): ReturnType<typeof spawnPalisade> => {
      const [controlPort, caPort] = [await freePort(), await freePort()];
      return spawnPalisade(
        [
          'up',
          '-f',
          'examples/bookinfo',
          '--isolation',
          'netns',
          // Prometheus is not what this test checks; left on, it takes 9090 from a concurrent test.
          '--no-prometheus',
          // Traces from pods: the receiver listens on the bridge address the pods reach.
          '--tracing',
          '--pod-cidr',
          POD_CIDR,
          '--service-cidr',
          SERVICE_CIDR,
          '--state-dir',
          state,
          '--control-port',
          String(controlPort),
          '--ca-port',
          String(caPort),
          '--timeout-ms',
          '240000',
        ],
        { ready: /Ctrl-C stops the mesh/, timeoutMs: 300_000, cwd: REPO_ROOT },
      );
    };
    const started = Date.now();
    let mesh = await up();
    const startMs = Date.now() - started;
    t.after(async () => {
      await mesh.stop(60_000);
    });
    const output = mesh.output();
    assert.match(output, /^Isolation: network namespaces \(--isolation netns\)$/m);
    const info = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as MeshJson;
    assert.equal((info.pods[0]?.netns ?? '').split('-')[1], tag);
    assert.equal(info.isolation, 'netns');
    assert.equal(info.control.split(':')[0], HOST_IP, 'pods reach the control plane on the bridge');
    const byName = new Map(info.pods.map((p) => [p.name, p]));
    for (const name of [
      'productpage-v1-0',
      'details-v1-0',
      'reviews-v3-0',
      'istio-ingressgateway',
    ]) {
      const pod = byName.get(name);
      assert.ok(pod !== undefined, `mesh.json lists pod ${name}`);
      assert.match(pod.podIP, /^10\.233\.20\.\d+$/);
      assert.ok(
        spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(pod.netns),
        `namespace ${pod.netns} exists`,
      );
    }
    const app = info.apps.find((a) => a.name === 'productpage-v1-0');
    assert.equal(app?.podIP, byName.get('productpage-v1-0')?.podIP, 'apps name their pod IP');
    const details = byName.get('details-v1-0');
    const productpage = byName.get('productpage-v1-0');
    assert.ok(details !== undefined && productpage !== undefined);

    await t.test('palisade exec runs in the pod with its exit status and names', async () => {
      const ipAddr = await runPalisade([
        'exec',
        '--state-dir',
        state,
        'details-v1-0',
        '--',
        'ip',
        '-br',
        'addr',
      ]);
      assert.equal(ipAddr.code, 0, ipAddr.stderr);
      assert.match(
        ipAddr.stdout,
        new RegExp(`eth0@\\S+\\s+UP\\s+${details.podIP.replaceAll('.', '\\.')}/24`),
      );
      const status = await runPalisade([
        'exec',
        '--state-dir',
        state,
        'details-v1',
        '--',
        'sh',
        '-c',
        'exit 7',
      ]);
      assert.equal(
        status.code,
        7,
        'exec exits with the command status (details-v1 = its first replica)',
      );
      const hosts = await runPalisade([
        'exec',
        '--state-dir',
        state,
        'productpage-v1-0',
        '--',
        'getent',
        'hosts',
        'reviews',
      ]);
      assert.equal(hosts.code, 0, hosts.stderr);
      assert.match(
        hosts.stdout,
        /^10\.233\.97\.\d+\s+reviews\b/m,
        'Service names resolve to ClusterIPs',
      );
      // ...through the sidecar's DNS proxy: the pod's hosts file has no Service names.
      const etcHosts = await runPalisade([
        'exec',
        '--state-dir',
        state,
        'productpage-v1-0',
        '--',
        'cat',
        '/etc/hosts',
      ]);
      assert.doesNotMatch(etcHosts.stdout, /reviews/);
    });

    await t.test(
      'from an attacker namespace on the bridge no app answers without its sidecar',
      async (t2) => {
        spawnSync('ip', ['netns', 'add', ATTACKER]);
        const veth = `n19aatk${String(process.pid % 10000)}`;
        t2.after(() => {
          spawnSync('ip', ['netns', 'del', ATTACKER]);
          spawnSync('ip', ['link', 'del', veth]);
        });
        const ok = (args: string[]): void => {
          const r = spawnSync('ip', args, { encoding: 'utf8' });
          assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
        };
        ok(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ATTACKER]);
        ok(['link', 'set', veth, 'master', `pal${tag}br`, 'up']);
        ok(['-n', ATTACKER, 'addr', 'add', `${ATTACKER_IP}/24`, 'dev', 'eth0']);
        ok(['-n', ATTACKER, 'link', 'set', 'eth0', 'up']);
        // Every pod IP, the app port and every port a sidecar or the admin uses.
        const ports = [9080, 15000, 15001, 15006, 15020, 15021, 15090, 8080];
        for (const pod of info.pods.filter((p) => !p.name.startsWith('istio-')))
          for (const port of ports) {
            const r = await runProcess(
              'ip',
              [
                'netns',
                'exec',
                ATTACKER,
                'curl',
                '-sS',
                '-m',
                '3',
                '-o',
                '/dev/null',
                '-w',
                '%{http_code}',
                `http://${pod.podIP}:${String(port)}/`,
              ],
              { timeoutMs: 10_000 },
            );
            // Refused or reset (000), or a sidecar's denial: never an app's answer.
            assert.ok(
              ['000', '403', '503'].includes(r.stdout.trim()),
              `${pod.name} ${pod.podIP}:${String(port)} answered ${r.stdout.trim()} to plaintext from the bridge`,
            );
          }
        const plain = await runProcess(
          'ip',
          [
            'netns',
            'exec',
            ATTACKER,
            'curl',
            '-sS',
            '-m',
            '3',
            `http://${details.podIP}:9080/details/0`,
          ],
          { timeoutMs: 10_000 },
        );
        assert.doesNotMatch(
          plain.stdout,
          /"author"/,
          'plaintext to details:9080 under STRICT reaches no app',
        );
      },
    );

    // From here on traffic goes through capture: the proxy's REDIRECT listeners (issue 19, proxy half).
    await t.test(
      'ingress, and unmodified clients inside a pod reach Services by name with mTLS',
      async () => {
        const ingress = info.ingress.urls.find((u) => u.startsWith('http:'));
        assert.ok(ingress !== undefined);
        await waitFor(
          async () => {
            const r = await runProcess('curl', ['-sS', '-m', '10', `${ingress}/productpage`], {
              timeoutMs: 15_000,
            });
            return r.stdout.includes('Reviews served by') ? r : undefined;
          },
          60_000,
          1000,
        );
        const curl = await runPalisade([
          'exec',
          '--state-dir',
          state,
          'productpage-v1-0',
          '--',
          'curl',
          '-sS',
          '-m',
          '10',
          'http://details:9080/details/0',
        ]);
        assert.equal(curl.code, 0, curl.stderr);
        assert.match(curl.stdout, /"author"/, 'curl by name from inside a pod');
        const fetchScript =
          "fetch('http://reviews:9080/reviews/0').then(async (r) => { console.log(r.status, await r.text()); })";
        const node = await runPalisade([
          'exec',
          '--state-dir',
          state,
          'productpage-v1-0',
          '--',
          process.execPath,
          '-e',
          fetchScript,
        ]);
        assert.equal(node.code, 0, node.stderr);
        assert.match(node.stdout, /^200 .*"reviews"/, 'Node fetch with no proxy settings');
        // A slow client (a loaded pod): its request starts 400 ms after connecting. Protocol
        // detection waits for it (no timeout, Istio's default), so it is still routed by Host to
        // reviews. With a 100 ms bound it was relayed as bytes to the first service on port
        // 9080 — details answered reviews' path (found as the delay-fault flake of issue 19).
        const slowScript = [
          "const s = require('node:net').connect(9080, 'reviews');",
          "let got = '';",
          "s.on('data', (d) => { got += d; });",
          "s.on('close', () => { console.log(got); });",
          "setTimeout(() => s.write('GET /reviews/0 HTTP/1.1\\r\\nHost: reviews:9080\\r\\nConnection: close\\r\\n\\r\\n'), 400);",
        ].join(' ');
        const slow = await runPalisade([
          'exec',
          '--state-dir',
          state,
          'productpage-v1-0',
          '--',
          process.execPath,
          '-e',
          slowScript,
        ]);
        assert.equal(slow.code, 0, slow.stderr);
        assert.match(slow.stdout, /^HTTP\/1\.1 200 /, `slow client: ${slow.stdout}`);
        assert.match(
          slow.stdout,
          /"podname":"reviews-v[123]-0"/,
          'the slow request reached reviews',
        );
        // A connection to another pod's IP is captured as well (no way around the sidecar).
        const direct = await runPalisade([
          'exec',
          '--state-dir',
          state,
          'productpage-v1-0',
          '--',
          'curl',
          '-sS',
          '-m',
          '10',
          `http://${details.podIP}:9080/details/0`,
        ]);
        assert.equal(direct.code, 0, direct.stderr);
        const admin = info.proxies.find((p) => p.name === 'details-v1-0-sidecar')?.adminUrl ?? '';
        const metrics = await runProcess('curl', ['-sS', '-m', '10', `${admin}/stats/prometheus`], {
          timeoutMs: 15_000,
        });
        const line = metrics.stdout
          .split('\n')
          .find(
            (l) =>
              l.startsWith('istio_requests_total{') &&
              l.includes('reporter="destination"') &&
              l.includes(
                'source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"',
              ),
          );
        assert.ok(
          line !== undefined,
          `details' sidecar saw productpage's SPIFFE id:\n${metrics.stdout.slice(0, 2000)}`,
        );
        assert.match(line, /connection_security_policy="mutual_tls"/);
      },
    );

    await t.test(
      '--tracing: the pods export spans to the host, one trace across four proxies',
      async () => {
        const tracesUrl = /^Traces: (http:\/\/\S+\/)$/m.exec(mesh.output())?.[1] ?? '';
        assert.ok(tracesUrl.startsWith(`http://${HOST_IP}:`), mesh.output());
        const ingress = info.ingress.urls.find((u) => u.startsWith('http:')) ?? '';
        const REQUIRED = ['istio-ingressgateway', 'productpage-v1', 'ratings-v1'];
        // reviews-v1 calls no ratings: one more page per try until a trace reaches ratings.
        const page = async (): Promise<void> => {
          const r = await runProcess(
            'curl',
            ['-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', `${ingress}/productpage`],
            { timeoutMs: 15_000 },
          );
          assert.equal(r.stdout, '200', r.stderr);
        };
        const workloads = await waitFor(
          async () => {
            await page();
            const list = (await (
              await fetch(`${tracesUrl}api/traces?service=istio-ingressgateway&limit=50`)
            ).json()) as { traces: { traceId: string; services: string[] }[] };
            for (const summary of list.traces) {
              if (!summary.services.some((x) => x.startsWith('ratings-'))) continue;
              const detail = (await (
                await fetch(`${tracesUrl}api/traces/${summary.traceId}`)
              ).json()) as { spans: { workload: string }[] };
              const seen = new Set(detail.spans.map((x) => x.workload));
              // Each proxy exports its own spans, and the outer ones end (and leave) last:
              // wait for the named workloads, not for any four.
              if (seen.size >= 4 && REQUIRED.every((w) => seen.has(w))) return seen;
            }
            return undefined;
          },
          45_000,
          1_000,
        );
        for (const w of REQUIRED)
          assert.ok(workloads?.has(w), `${w} in ${[...(workloads ?? [])].join(', ')}`);
      },
    );

    await t.test(
      'an applied Service gets a ClusterIP and a name; egress NetworkPolicy holds at the source',
      async () => {
        const exec = (pod: string, ...cmd: string[]) =>
          runPalisade(['exec', '--state-dir', state, pod, '--', ...cmd]);
        const apply = async (yaml: string, name: string): Promise<void> => {
          const file = join(dir.path, name);
          writeFileSync(file, yaml);
          const r = await runPalisade(['apply', '--state-dir', state, '-f', file]);
          assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
        };
        // A new Service while up runs: a ClusterIP from the service CIDR, resolvable in every
        // sidecar pod through its DNS proxy, and reachable (mTLS to the ratings pods).
        await apply(RATINGS_ALIAS, 'ratings-alias.yaml');
        const resolved = await waitFor(
          async () => {
            const r = await exec('productpage-v1-0', 'getent', 'ahostsv4', 'ratings-alias');
            return r.code === 0 ? r : undefined;
          },
          20_000,
          500,
        );
        assert.match(resolved?.stdout ?? '', /^10\.233\.97\.\d+\s/m);
        const alias = await exec(
          'productpage-v1-0',
          'curl',
          '-sS',
          '-m',
          '10',
          'http://ratings-alias:9080/ratings/0',
        );
        assert.match(alias.stdout, /"ratings"/, alias.stderr);

        // reviews may reach only ratings:9080: details is refused at reviews' own sidecar.
        await apply(REVIEWS_EGRESS, 'reviews-egress.yaml');
        const denied = await waitFor(
          async () => {
            const r = await exec(
              'reviews-v2-0',
              'curl',
              '-sS',
              '-m',
              '5',
              'http://details:9080/details/0',
            );
            return r.code !== 0 ? r : undefined;
          },
          20_000,
          500,
        );
        assert.ok(
          [7, 56].includes(denied?.code ?? 0),
          `${denied?.stdout ?? ''}${denied?.stderr ?? ''}`,
        );
        assert.doesNotMatch(denied?.stdout ?? '', /"author"/);
        const ratings = await exec(
          'reviews-v2-0',
          'curl',
          '-sS',
          '-m',
          '10',
          'http://ratings:9080/ratings/0',
        );
        assert.match(ratings.stdout, /"ratings"/, ratings.stderr);
        // Pods not selected keep their egress: productpage still reaches details.
        const open = await exec(
          'productpage-v1-0',
          'curl',
          '-sS',
          '-m',
          '10',
          'http://details:9080/details/0',
        );
        assert.match(open.stdout, /"author"/, open.stderr);
      },
    );

    // Leftovers: SIGKILL `up`, its pods stay; a new `up` removes them; a clean stop leaves nothing.
    const upPid = mesh.child.pid ?? 0;
    process.kill(upPid, 'SIGKILL');
    await mesh.stop(1000);
    assert.ok(leftovers(tag).length > 0, 'a SIGKILLed up leaves its namespaces (to the next up)');
    const restarted = Date.now();
    mesh = await up();
    const restartMs = Date.now() - restarted;
    const stopped = Date.now();
    const code = await mesh.stop(60_000);
    assert.equal(
      code,
      0,
      `palisade up exits 0 on SIGTERM (exit ${String(code)}, signal ${String(mesh.child.signalCode)}, after ${String(Date.now() - stopped)} ms):\n${mesh.output().slice(-4000)}`,
    );
    const stopMs = Date.now() - stopped;
    assert.deepEqual(leftovers(tag), [], 'no namespace, veth, bridge or rule is left');
    assert.equal(
      spawnSync('sh', ['-c', `ls /etc/netns | grep -c '^pal-${tag}-' || true`], {
        encoding: 'utf8',
      }).stdout.trim(),
      '0',
    );
    // Start-up/tear-down of this run, for docs/runtime.md (not asserted: timing depends on the machine).
    console.log(
      `# netns Bookinfo: start ${String(startMs)} ms, restart after SIGKILL ${String(restartMs)} ms, stop ${String(stopMs)} ms`,
    );
  },
);
