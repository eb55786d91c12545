// `palisade apply` / `delete` when the mesh's config lives in its API server
// (`palisade up --apiserver`): the same per-proxy ACK report and analyzer
// output as with a config directory, the change goes through the API server
// (authenticated by the mesh's admin kubeconfig, validated by its admission),
// kubectl with that kubeconfig applies Bookinfo's samples, and a read-only
// user (a `view` binding) gets 403 on an AuthorizationPolicy. Real processes:
// `palisade apiserver`, `palisade control --kubeconfig`, one sidecar, kubectl.
// Loopback 127.38.3.0/24 (this area's range).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { debugAccessAt } from '../../src/cli/commands/debug-access.js';
import { callDebug, type SyncStatusReply } from '../../src/control/index.js';
import { REPO_ROOT, runPalisade, runProcess, spawnPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';
import { findTool } from '../helpers/tools.js';

const HOST = '127.38.3.1';
const kubectlTool = findTool('kubectl', 'apt-get install kubectl');

const MESH = `apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: productpage, namespace: default }
spec: { serviceAccount: productpage, labels: { app: productpage }, command: node, ports: [{ name: http, port: 9080 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: reviews, namespace: default }
spec: { serviceAccount: reviews, labels: { app: reviews, version: v1 }, command: node, ports: [{ name: http, port: 9080 }] }
`;

const TO_NOWHERE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviewz } }] }]
`;

const DENY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-delete, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  action: DENY
  rules: [{ to: [{ operation: { methods: [DELETE] } }] }]
`;

test(
  'apply and delete go through the API server; kubectl applies samples; view gets 403',
  { skip: kubectlTool.skip, timeout: 240_000 },
  async (t) => {
    const kubectlBin = kubectlTool.path;
    assert.ok(kubectlBin !== undefined, 'kubectl is required (CI)');
    const dirs = await meshDirs(t);
    const apiDir = join(dirs.path, 'api');
    const tokens = join(dirs.path, 'tokens.csv');
    writeFileSync(tokens, 'viewer-token-0123456789,viewer,uid-viewer,"qa"\n');
    const api = await spawnPalisade(
      ['apiserver', '--data-dir', apiDir, '--listen', `${HOST}:0`, '--token-auth-file', tokens],
      { ready: /API server ready: (https:\/\/\S+)/, timeoutMs: 30_000 },
    );
    t.after(() => api.stop());
    const state = join(dirs.path, 'state');
    mkdirSync(state);
    const kubeconfig = join(state, 'kubeconfig');
    copyFileSync(join(apiDir, 'admin.kubeconfig'), kubeconfig);
    const viewer = join(dirs.path, 'viewer.kubeconfig');
    const vc = parseYaml(readFileSync(kubeconfig, 'utf8')) as { users: { user: unknown }[] };
    for (const u of vc.users) u.user = { token: 'viewer-token-0123456789' };
    writeFileSync(viewer, stringifyYaml(vc));
    const kubectl = (args: readonly string[], config = kubeconfig, input?: string) =>
      runProcess(kubectlBin, ['--kubeconfig', config, ...args], {
        ...(input === undefined ? {} : { input }),
        env: { ...process.env, HOME: dirs.path, KUBECACHEDIR: join(dirs.path, '.kube-cache') },
        timeoutMs: 30_000,
      });
    const loaded = await kubectl(['apply', '-f', '-'], kubeconfig, MESH);
    assert.equal(loaded.code, 0, loaded.stderr);

    const control = await startControlPlane({ kubeconfig }, dirs.caDir);
    t.after(() => control.stop());
    const sidecar = await startSidecar(control, {
      namespace: 'default',
      name: 'productpage',
      instanceIp: '127.38.3.2',
      appIp: '127.38.3.3',
      dir: dirs.path,
    });
    t.after(() => sidecar.stop());
    await waitFor(
      async () =>
        (
          await callDebug<SyncStatusReply>(
            control.xds,
            'SyncStatus',
            {},
            debugAccessAt(control.stateDir, control.stateDir, false),
          )
        ).proxies.some((p) =>
          // Connected and every type it was sent answered: the control plane has settled.
          Object.values(p.types).every((row) => row.sent !== null && row.acked === row.sent),
        ),
      60_000,
      200,
    );
    writeFileSync(
      join(state, 'mesh.json'),
      JSON.stringify({
        name: 'test',
        configDir: dirs.configDir,
        control: control.xds,
        stateDir: control.stateDir,
        apiServer: { url: api.match[1], kubeconfig },
      }),
    );
    const file = (name: string, text: string): string => {
      const path = join(dirs.path, name);
      writeFileSync(path, text);
      return path;
    };

    await t.test('palisade apply: created, the proxy ACKs, the object is in the API', async () => {
      const r = await runPalisade(['apply', '-f', file('deny.yaml', DENY), '--state-dir', state]);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}\ncontrol plane:\n${control.output()}`);
      assert.match(r.stdout, /^AuthorizationPolicy default\/deny-delete created$/m);
      assert.match(r.stdout, /^ {2}ACKed {3}productpage-0\.default$/m);
      assert.match(r.stdout, /every proxy ACKed the change \(1\)/);
      const got = await kubectl(['get', 'authorizationpolicy', 'deny-delete', '-o', 'json']);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual((JSON.parse(got.stdout) as { spec: unknown }).spec, {
        selector: { matchLabels: { app: 'productpage' } },
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }],
      });
      const again = await runPalisade([
        'apply',
        '-f',
        join(dirs.path, 'deny.yaml'),
        '--state-dir',
        state,
      ]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /^AuthorizationPolicy default\/deny-delete unchanged$/m);
    });

    await t.test('a read-only user gets 403 on an AuthorizationPolicy', async () => {
      const bind = await kubectl([
        'create',
        'clusterrolebinding',
        'viewer',
        '--clusterrole',
        'view',
        '--user',
        'viewer',
      ]);
      assert.equal(bind.code, 0, bind.stderr);
      const r = await kubectl(['apply', '-f', join(dirs.path, 'deny.yaml')], viewer);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /authorizationpolicies\.security\.istio\.io "deny-delete" is forbidden: User "viewer" cannot (patch|update) resource "authorizationpolicies" in API group "security\.istio\.io" in the namespace "default"/,
      );
    });

    await t.test('the analyzer finding and --strict, as with a config directory', async () => {
      const typo = file('typo.yaml', TO_NOWHERE);
      const strict = await runPalisade(['apply', '-f', typo, '--state-dir', state, '--strict']);
      assert.equal(strict.code, 1, strict.stdout + strict.stderr);
      assert.match(
        strict.stderr,
        /refused \(--strict\): palisade analyze finds 1 new problem[^\n]*\n {2}Error \[PAL0101\] \(VirtualService default\/reviews\) Referenced host not found: "reviewz"\nnothing applied/,
      );
      const none = await kubectl(['get', 'virtualservices', '-o', 'name']);
      assert.equal(none.stdout.trim(), '');
    });

    await t.test('kubectl applies a Bookinfo sample; palisade delete removes it', async () => {
      const sample = join(REPO_ROOT, 'examples/bookinfo/samples/virtual-service-all-v1.yaml');
      const r = await kubectl(['apply', '-f', sample]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /virtualservice\.networking\.istio\.io\/reviews created/);
      const del = await runPalisade(['delete', '-f', sample, '--state-dir', state]);
      assert.match(
        del.stdout,
        /^VirtualService default\/reviews deleted$/m,
        del.stdout + del.stderr,
      );
      assert.match(del.stdout, /^ {2}ACKed {3}productpage-0\.default$/m, del.stdout + del.stderr);
      const gone = await runPalisade(['delete', '-f', file('d2.yaml', DENY), '--state-dir', state]);
      assert.equal(gone.code, 0, gone.stdout + gone.stderr);
      const missing = await runPalisade([
        'delete',
        '-f',
        join(dirs.path, 'd2.yaml'),
        '--state-dir',
        state,
      ]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /AuthorizationPolicy default\/deny-delete not found/);
    });
  },
);
