// The control plane reads its config from the API (`palisade control
// --kubeconfig`): a real `palisade apiserver` process, the control plane's
// @kubernetes/client-node informers on it, and the real kubectl changing
// objects. Shown: kubectl's changes reach the snapshot (and the registry); a
// read-only user (a `view` binding) gets Kubernetes' 403 on an
// AuthorizationPolicy and the mesh keeps it; an object the API accepts but
// the mesh's validator refuses is reported with its API path and field while
// the last good snapshot keeps serving; the informers survive an API server
// restart; the CLI prints the API as its config source and fails with
// PAL_ERR_CONTROL_CONFIG_API when the server does not answer.
//
// Loopback 127.38.2.0/24 (this area's range), ports picked free.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startControlPlane, type ControlPlane } from '../../src/control/index.js';
import { initCaDirectory, loadCaDirectory } from '../../src/identity/index.js';
import { silentLogger } from '../../src/logging/index.js';
import {
  freePort,
  runPalisade,
  runProcess,
  spawnPalisade,
  tempDir,
  waitFor,
  type PalisadeProcess,
} from '../helpers/index.js';
import { findTool } from '../helpers/tools.js';

const HOST = '127.38.2.1';
const kubectlTool = findTool('kubectl', 'apt-get install kubectl');

const MESH = `apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: shop }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: 8080 }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: shop }
spec: {}
`;

// Accepted by the API server (it only checks core kinds' names), refused by
// the mesh: a port outside 1–65535.
const BAD_SERVICE = `apiVersion: v1
kind: Service
metadata: { name: broken, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 70000 }]
`;

test(
  'palisade control --kubeconfig: informers on the API server feed the snapshot',
  { skip: kubectlTool.skip, timeout: 180_000 },
  async (t) => {
    const kubectlBin = kubectlTool.path;
    assert.ok(kubectlBin !== undefined, 'kubectl is required (CI)');
    const tmp = tempDir('palisade-k21-apisource-');
    t.after(tmp.cleanup);
    const dir = tmp.path;
    const apiDir = join(dir, 'api');
    const tokens = join(dir, 'tokens.csv');
    writeFileSync(tokens, 'viewer-token-0123456789,viewer,uid-viewer,"qa"\n');
    const port = await freePort(HOST);
    let api: PalisadeProcess | undefined;
    const startApi = async (): Promise<void> => {
      api = await spawnPalisade(
        [
          'apiserver',
          '--data-dir',
          apiDir,
          '--listen',
          `${HOST}:${String(port)}`,
          '--token-auth-file',
          tokens,
        ],
        { ready: /API server ready: https:\/\/\S+/, timeoutMs: 30_000 },
      );
    };
    await startApi();
    t.after(async () => {
      await api?.stop();
    });
    const admin = join(apiDir, 'admin.kubeconfig');
    // The viewer's kubeconfig: the admin's cluster, a static token as the user.
    const viewer = join(dir, 'viewer.kubeconfig');
    const viewerConfig = parseYaml(readFileSync(admin, 'utf8')) as {
      users: { user: Record<string, string> }[];
    };
    for (const u of viewerConfig.users) u.user = { token: 'viewer-token-0123456789' };
    writeFileSync(viewer, stringifyYaml(viewerConfig));
    const kubectl = (
      args: readonly string[],
      opts: { input?: string; asViewer?: boolean } = {},
    ): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      runProcess(kubectlBin, ['--kubeconfig', opts.asViewer === true ? viewer : admin, ...args], {
        ...(opts.input === undefined ? {} : { input: opts.input }),
        env: { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, '.kube-cache') },
        timeoutMs: 30_000,
      });
    const ok = async (args: readonly string[], input?: string): Promise<string> => {
      const r = await kubectl(args, input === undefined ? {} : { input });
      assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };

    const caDir = join(dir, 'ca');
    await initCaDirectory(caDir, { trustDomain: 'cluster.local' });
    const plane: ControlPlane = await startControlPlane({
      kubeconfig: admin,
      ca: await loadCaDirectory(caDir),
      logger: silentLogger(),
      host: HOST,
      port: 0,
      caPort: 0,
      xdsPlaintext: true,
      debounceMs: 20,
    });
    t.after(() => plane.close());
    const has = (key: string): boolean => plane.config.current.objects.has(key);
    assert.equal(plane.config.origin, `https://${HOST}:${String(port)}`);
    // The bootstrap objects the server creates are read (and validate) too.
    assert.ok(has('Namespace//default'), [...plane.config.current.objects.keys()].join(' '));
    assert.equal(plane.config.current.version, 1);

    await t.test('kubectl apply reaches the snapshot and the registry', async () => {
      await ok(['apply', '-f', '-'], MESH);
      await waitFor(() => has('AuthorizationPolicy/shop/deny-all') && has('Workload/shop/web'));
      // Each accepted change is a new version (apply waits for it).
      assert.ok(plane.config.current.version >= 2, String(plane.config.current.version));
      const file = plane.config.current.objects.get('AuthorizationPolicy/shop/deny-all')?.file;
      assert.equal(
        file,
        `https://${HOST}:${String(port)}/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/deny-all`,
      );
      await waitFor(() =>
        plane.registry().services.some((s) => s.hostname === 'web.shop.svc.cluster.local'),
      );
    });

    await t.test('a read-only user (view) gets 403 on an AuthorizationPolicy', async () => {
      await ok([
        'create',
        'clusterrolebinding',
        'viewer',
        '--clusterrole',
        'view',
        '--user',
        'viewer',
      ]);
      const seen = await kubectl(['-n', 'shop', 'get', 'authorizationpolicies'], {
        asViewer: true,
      });
      assert.equal(seen.code, 0, seen.stderr);
      assert.match(seen.stdout, /deny-all/);
      const del = await kubectl(['-n', 'shop', 'delete', 'authorizationpolicy', 'deny-all'], {
        asViewer: true,
      });
      assert.notEqual(del.code, 0);
      assert.match(
        del.stderr,
        /Error from server \(Forbidden\): authorizationpolicies\.security\.istio\.io "deny-all" is forbidden: User "viewer" cannot delete resource "authorizationpolicies" in API group "security\.istio\.io" in the namespace "shop"/,
      );
      const version = plane.config.current.version;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(has('AuthorizationPolicy/shop/deny-all'));
      assert.equal(plane.config.current.version, version, 'nothing changed');
    });

    await t.test(
      'an object the mesh refuses is reported; the last good snapshot serves',
      async () => {
        const before = plane.config.current;
        await ok(['apply', '-f', '-'], BAD_SERVICE);
        await waitFor(() => plane.config.problems.length > 0);
        const [problem] = plane.config.problems;
        assert.equal(
          problem?.file,
          `https://${HOST}:${String(port)}/api/v1/namespaces/shop/services/broken`,
        );
        assert.equal(problem.object, 'Service shop/broken');
        assert.match(problem.issues[0]?.path ?? '', /^spec\.ports\[0\]\.port/);
        assert.equal(plane.config.current, before, 'the last good snapshot keeps serving');
        assert.ok(!has('Service/shop/broken'));
        await ok(['-n', 'shop', 'delete', 'service', 'broken']);
        await waitFor(() => plane.config.problems.length === 0);
        assert.ok(plane.config.current.version > before.version);
      },
    );

    await t.test('the informers resume after an API server restart', async () => {
      const t0 = Date.now();
      await api?.stop();
      await new Promise((r) => setTimeout(r, 500));
      await startApi();
      t.diagnostic(`API server restarted in ${String(Date.now() - t0)} ms`);
      await ok(['-n', 'shop', 'delete', 'authorizationpolicy', 'deny-all']);
      await waitFor(() => !has('AuthorizationPolicy/shop/deny-all'), 20_000);
      assert.ok(has('Workload/shop/web'));
    });

    await t.test('palisade control --kubeconfig (CLI)', async () => {
      const control = await spawnPalisade(
        [
          'control',
          '--kubeconfig',
          admin,
          '--listen',
          `${HOST}:0`,
          '--xds-insecure',
          '--ca-dir',
          caDir,
          '--debug-token-file',
          join(dir, 'debug-token'),
        ],
        { ready: /Control plane ready: .*\n/, timeoutMs: 30_000 },
      );
      try {
        assert.match(
          control.match[0],
          new RegExp(
            `config https://${HOST.replaceAll('.', '\\.')}:${String(port)} \\(\\d+ objects\\)`,
          ),
        );
      } finally {
        await control.stop();
      }
      const dead = join(dir, 'dead.kubeconfig');
      const deadPort = await freePort(HOST);
      writeFileSync(
        dead,
        readFileSync(admin, 'utf8').replace(
          `${HOST}:${String(port)}`,
          `${HOST}:${String(deadPort)}`,
        ),
      );
      const r = await runPalisade(
        [
          'control',
          '--kubeconfig',
          dead,
          '--listen',
          `${HOST}:0`,
          '--ca-dir',
          caDir,
          '--debug-token-file',
          join(dir, 'debug-token'),
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /PAL_ERR_CONTROL_CONFIG_API/);
      assert.match(
        r.stderr,
        new RegExp(
          `cannot read the API at https://${HOST.replaceAll('.', '\\.')}:${String(deadPort)}`,
        ),
      );
    });
  },
);
