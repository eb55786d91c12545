/**
 * The kubectl session of issue 21's Must-show, as one scenario run against
 * any store (kubectl-session.test.ts: the embedded store;
 * kubectl-etcd-cluster.test.ts: a 3-member etcd cluster with a member killed
 * mid-run). The real kubectl from the machine, unmodified: discovery,
 * create/apply/server-side apply/replace/patch/delete, `get -w`, optimistic
 * concurrency, users from a client certificate, a static token, an OIDC
 * token and a service-account token from `kubectl create token`, RBAC with
 * Kubernetes' 403 wording, `auth can-i --list`, `auth whoami`,
 * impersonation, PodSecurity enforce and warn, the mesh validator as
 * admission, RBAC answers that agree with `palisade auth can-i` (one
 * engine), and durability across a restart of the server.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { issueClientCertificate, kubeconfig } from '../../src/apiserver/index.js';
import { createTlsCa, issueServerCertificate } from '../../src/identity/index.js';
import {
  runPalisade,
  runProcess,
  spawnPalisade,
  tempDir,
  waitFor,
  type PalisadeProcess,
} from '../helpers/index.js';

const which = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' });
export const kubectlBin = which.status === 0 ? which.stdout.trim() : undefined;
if (kubectlBin === undefined) {
  if (process.env.CI === 'true')
    throw new Error('kubectl is required in CI (apt-get install kubectl)');
  console.log(
    '# kubectl-session: skipped, no `kubectl` binary (install kubectl from your distribution)',
  );
}

export interface Session {
  server: PalisadeProcess;
  url: string;
  dir: string;
  kubectl: (
    args: readonly string[],
    opts?: { input?: string; kubeconfig?: string },
  ) => Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startServer(
  dir: string,
  host: string,
  extra: readonly string[] = [],
): Promise<{ server: PalisadeProcess; url: string }> {
  const server = await spawnPalisade(
    ['apiserver', '--data-dir', dir, '--listen', `${host}:0`, ...extra],
    {
      ready: /API server ready: (https:\/\/\S+)/,
      timeoutMs: 30_000,
    },
  );
  return { server, url: server.match[1] ?? '' };
}

function session(dir: string, server: PalisadeProcess, url: string): Session {
  const admin = join(dir, 'admin.kubeconfig');
  return {
    server,
    url,
    dir,
    kubectl: (args, opts = {}) =>
      runProcess(kubectlBin ?? 'kubectl', ['--kubeconfig', opts.kubeconfig ?? admin, ...args], {
        ...(opts.input === undefined ? {} : { input: opts.input }),
        env: { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, '.kube-cache') },
        timeoutMs: 30_000,
      }),
  };
}

export function ok(
  r: { code: number | null; stdout: string; stderr: string },
  what: string,
): string {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export interface ScenarioOptions {
  /** Loopback address the API server and the OIDC issuer bind. */
  readonly host: string;
  /** Store flags appended to `palisade apiserver` (e.g. `--store etcd --etcd-endpoints …`). */
  readonly storeArgs: readonly string[];
  /** A step run after the concurrency check (e.g. killing an etcd member with writes in flight). */
  readonly midRun?: { readonly name: string; run(s: Session): Promise<void> };
}

export async function kubectlScenario(t: TestContext, opts: ScenarioOptions): Promise<void> {
  const tmp = tempDir('palisade-apiserver-');
  t.after(tmp.cleanup);
  const dir = tmp.path;
  const tokens = join(dir, 'tokens.csv');
  writeFileSync(
    tokens,
    'alice-token-0123456789,alice,uid-alice,"devs"\nbob-token-0123456789,bob,uid-bob,"viewers,qa"\n',
  );
  // An OIDC issuer run by the test: HTTPS discovery and JWKS, an ES256 signing key.
  const issuerCa = await createTlsCa('oidc-test-ca');
  const issuerCert = await issueServerCertificate(issuerCa, {
    dnsNames: ['localhost'],
    ips: [opts.host],
  });
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let issuerUrl = '';
  const issuer = createHttpsServer(
    { cert: issuerCert.certPem, key: issuerCert.keyPem },
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration')
        res.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/keys` }));
      else if (req.url === '/keys') res.end(JSON.stringify({ keys: [jwk] }));
      else res.writeHead(404).end('{}');
    },
  );
  await new Promise<void>((r) => issuer.listen(0, opts.host, r));
  t.after(
    () =>
      new Promise<void>((r) =>
        issuer.close(() => {
          r();
        }),
      ),
  );
  issuerUrl = `https://${opts.host}:${String((issuer.address() as AddressInfo).port)}`;
  const issuerCaFile = join(dir, 'oidc-ca.crt');
  writeFileSync(issuerCaFile, issuerCa.certPem);
  const oidcToken = (claims: Record<string, unknown>, aud = 'palisade'): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuerUrl)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);
  const serverArgs = [
    '--token-auth-file',
    tokens,
    '--oidc-issuer-url',
    issuerUrl,
    '--oidc-client-id',
    'palisade',
    '--oidc-username-claim',
    'email',
    '--oidc-groups-claim',
    'groups',
    '--oidc-groups-prefix',
    'oidc:',
    '--oidc-ca-file',
    issuerCaFile,
  ];
  serverArgs.push(...opts.storeArgs);
  let { server, url } = await startServer(dir, opts.host, serverArgs);
  t.after(() => server.stop());
  let s = session(dir, server, url);
  const tokenConfig = (name: string, token: string): string => {
    const path = join(dir, `${name}.kubeconfig`);
    const ca = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
    writeFileSync(path, kubeconfig({ server: url, caPem: ca, user: name, token }));
    return path;
  };

  await t.test('admin.kubeconfig is cluster-admin by client certificate', async () => {
    const who = ok(await s.kubectl(['auth', 'whoami']), 'whoami');
    assert.match(who, /Username\s+admin/);
    assert.match(who, /Groups\s+\[system:masters system:authenticated\]/);
    const ns = ok(await s.kubectl(['get', 'namespaces']), 'get ns');
    assert.match(ns, /^NAME\s+STATUS\s+AGE/m);
    assert.match(ns, /^default\s+Active/m);
  });

  await t.test('create, apply, server-side apply, replace, patch, delete', async () => {
    ok(await s.kubectl(['create', 'namespace', 'app']), 'create ns');
    const cm =
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: app\ndata:\n  color: blue\n';
    assert.match(
      ok(await s.kubectl(['apply', '-f', '-'], { input: cm }), 'apply'),
      /configmap\/settings created/,
    );
    assert.match(
      ok(await s.kubectl(['apply', '-f', '-'], { input: cm }), 'apply again'),
      /configmap\/settings unchanged/,
    );
    const got = JSON.parse(
      ok(await s.kubectl(['-n', 'app', 'get', 'cm', 'settings', '-o', 'json']), 'get -o json'),
    ) as {
      metadata: {
        uid: string;
        resourceVersion: string;
        creationTimestamp: string;
        generation: number;
      };
    };
    assert.match(got.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(got.metadata.resourceVersion, /^\d+$/);
    assert.match(got.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(got.metadata.generation, 1);
    ok(
      await s.kubectl(['apply', '--server-side', '-f', '-'], {
        input: cm.replace('blue', 'green'),
      }),
      'server-side apply',
    );
    assert.equal(
      ok(
        await s.kubectl(['-n', 'app', 'get', 'cm', 'settings', '-o', 'jsonpath={.data.color}']),
        'get',
      ),
      'green',
    );
    ok(
      await s.kubectl([
        '-n',
        'app',
        'patch',
        'cm',
        'settings',
        '--type',
        'merge',
        '-p',
        '{"data":{"size":"xl"}}',
      ]),
      'merge patch',
    );
    ok(
      await s.kubectl([
        '-n',
        'app',
        'patch',
        'cm',
        'settings',
        '--type',
        'json',
        '-p',
        '[{"op":"remove","path":"/data/color"}]',
      ]),
      'json patch',
    );
    assert.equal(
      ok(await s.kubectl(['-n', 'app', 'get', 'cm', 'settings', '-o', 'jsonpath={.data}']), 'get'),
      '{"size":"xl"}',
    );
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: app\nspec:\n  containers:\n  - name: main\n    image: nginx\n';
    ok(await s.kubectl(['create', '-f', '-'], { input: pod }), 'create pod');
    ok(
      await s.kubectl([
        '-n',
        'app',
        'patch',
        'pod',
        'web',
        '-p',
        '{"spec":{"containers":[{"name":"main","image":"nginx:1.27"}]}}',
      ]),
      'strategic patch',
    );
    const spec = JSON.parse(
      ok(await s.kubectl(['-n', 'app', 'get', 'pod', 'web', '-o', 'jsonpath={.spec}']), 'get pod'),
    ) as {
      containers: { name: string; image: string }[];
      serviceAccountName: string;
    };
    assert.deepEqual(
      spec.containers.map((c) => [c.name, c.image]),
      [['main', 'nginx:1.27']],
    );
    assert.equal(
      spec.serviceAccountName,
      'default',
      'ServiceAccount admission defaults the service account',
    );
    ok(
      await s.kubectl(['replace', '-f', '-'], { input: pod.replace('nginx', 'nginx:1.28') }),
      'replace',
    );
    assert.match(
      ok(await s.kubectl(['-n', 'app', 'get', 'pods']), 'get pods'),
      /^web\s+0\/1\s+Pending\s+0\s+\S+$/m,
    );
    assert.match(
      ok(await s.kubectl(['-n', 'app', 'delete', 'pod', 'web']), 'delete'),
      /pod "web" deleted/,
    );
    const missing = await s.kubectl(['-n', 'app', 'get', 'pod', 'web']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Error from server \(NotFound\): pods "web" not found/);
  });

  await t.test('get -w sees create, update and delete', async () => {
    const child = spawn(
      kubectlBin ?? 'kubectl',
      [
        '--kubeconfig',
        join(dir, 'admin.kubeconfig'),
        '-n',
        'app',
        'get',
        'cm',
        '-w',
        '--output-watch-events',
      ],
      {
        env: { ...process.env, HOME: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => /settings/.test(out), 15_000);
      ok(
        await s.kubectl(['-n', 'app', 'create', 'configmap', 'watched', '--from-literal=a=1']),
        'create',
      );
      ok(await s.kubectl(['-n', 'app', 'label', 'configmap', 'watched', 'x=y']), 'label');
      ok(await s.kubectl(['-n', 'app', 'delete', 'configmap', 'watched']), 'delete');
      await waitFor(() => /DELETED\s+watched/.test(out), 15_000);
      const events = out
        .split('\n')
        .filter((l) => /\swatched\s/.test(l))
        .map((l) => l.split(/\s+/)[0]);
      assert.deepEqual(events, ['ADDED', 'MODIFIED', 'DELETED']);
    } finally {
      child.kill();
    }
  });

  await t.test('two concurrent updates of one object: one wins, one gets 409', async () => {
    const current = ok(
      await s.kubectl(['-n', 'app', 'get', 'cm', 'settings', '-o', 'json']),
      'get',
    );
    const a = current.replace('"xl"', '"a"');
    const b = current.replace('"xl"', '"b"');
    const [ra, rb] = await Promise.all([
      s.kubectl(['replace', '-f', '-'], { input: a }),
      s.kubectl(['replace', '-f', '-'], { input: b }),
    ]);
    const results = [ra, rb];
    assert.equal(results.filter((r) => r.code === 0).length, 1, `${ra.stderr}${rb.stderr}`);
    const loser = results.find((r) => r.code !== 0);
    assert.match(
      loser?.stderr ?? '',
      /Error from server \(Conflict\): error when replacing "STDIN": Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again/,
    );
  });

  if (opts.midRun !== undefined) {
    const mid = opts.midRun;
    await t.test(mid.name, () => mid.run(s));
  }

  await t.test(
    'static-token users get exactly what RBAC grants, with Kubernetes 403 wording',
    async () => {
      const alice = tokenConfig('alice', 'alice-token-0123456789');
      const bob = tokenConfig('bob', 'bob-token-0123456789');
      ok(
        await s.kubectl([
          '-n',
          'app',
          'create',
          'rolebinding',
          'devs-edit',
          '--clusterrole=edit',
          '--group=devs',
        ]),
        'bind devs',
      );
      ok(
        await s.kubectl([
          'create',
          'clusterrolebinding',
          'viewers-view',
          '--clusterrole=view',
          '--group=viewers',
        ]),
        'bind viewers',
      );
      assert.match(
        ok(await s.kubectl(['auth', 'whoami'], { kubeconfig: bob }), 'whoami bob'),
        /Groups\s+\[viewers qa system:authenticated\]/,
      );
      assert.equal(
        ok(
          await s.kubectl(['-n', 'app', 'auth', 'can-i', 'create', 'pods'], {
            kubeconfig: alice,
          }),
          'can-i',
        ).trim(),
        'yes',
      );
      const no = await s.kubectl(['-n', 'default', 'auth', 'can-i', 'create', 'pods'], {
        kubeconfig: alice,
      });
      assert.equal(no.stdout.trim(), 'no');
      const list = ok(
        await s.kubectl(['-n', 'app', 'auth', 'can-i', '--list'], { kubeconfig: alice }),
        'can-i --list',
      );
      assert.match(
        list,
        /^pods\s+\[\]\s+\[\]\s+\[create delete deletecollection patch update get list watch\]$/m,
      );
      assert.match(list, /^\*\.networking\.istio\.io\s+\[\]\s+\[\]\s+\[create/m);
      const bobList = ok(
        await s.kubectl(['-n', 'app', 'auth', 'can-i', '--list'], { kubeconfig: bob }),
        'bob --list',
      );
      assert.match(bobList, /^pods\s+\[\]\s+\[\]\s+\[get list watch\]$/m);
      assert.doesNotMatch(bobList, /^secrets/m, 'view does not read secrets');
      const denied = await s.kubectl(['-n', 'app', 'create', 'configmap', 'nope'], {
        kubeconfig: bob,
      });
      assert.match(
        denied.stderr,
        /configmaps is forbidden: User "bob" cannot create resource "configmaps" in API group "" in the namespace "app"/,
      );
      const deniedGet = await s.kubectl(['get', 'clusterroles', 'admin'], { kubeconfig: alice });
      assert.match(
        deniedGet.stderr,
        /clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "alice" cannot get resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope/,
      );
      const bad = await s.kubectl(['get', 'ns'], {
        kubeconfig: tokenConfig('mallory', 'not-a-token'),
      });
      assert.match(bad.stderr, /You must be logged in to the server \(Unauthorized\)/);
    },
  );

  await t.test('OIDC ID tokens from an issuer the test runs: user, groups, RBAC', async () => {
    ok(
      await s.kubectl([
        '-n',
        'app',
        'create',
        'rolebinding',
        'oidc-ops',
        '--clusterrole=edit',
        '--group=oidc:ops',
      ]),
      'bind',
    );
    const dana = tokenConfig(
      'dana',
      await oidcToken({
        sub: 'u-1',
        email: 'dana@example.com',
        email_verified: true,
        groups: ['ops'],
      }),
    );
    const who = ok(await s.kubectl(['auth', 'whoami'], { kubeconfig: dana }), 'whoami');
    assert.match(who, /Username\s+dana@example.com/);
    assert.match(who, /Groups\s+\[oidc:ops system:authenticated\]/);
    const list = ok(
      await s.kubectl(['-n', 'app', 'auth', 'can-i', '--list'], { kubeconfig: dana }),
      'can-i --list',
    );
    assert.match(
      list,
      /^pods\s+\[\]\s+\[\]\s+\[create delete deletecollection patch update get list watch\]$/m,
    );
    assert.equal(
      (
        await s.kubectl(['-n', 'default', 'auth', 'can-i', 'create', 'pods'], {
          kubeconfig: dana,
        })
      ).stdout.trim(),
      'no',
    );
    const wrongAud = tokenConfig(
      'eve',
      await oidcToken({ email: 'eve@example.com', groups: ['ops'] }, 'someone-else'),
    );
    assert.match((await s.kubectl(['get', 'ns'], { kubeconfig: wrongAud })).stderr, /Unauthorized/);
    const unverified = tokenConfig(
      'fay',
      await oidcToken({ email: 'fay@example.com', email_verified: false }),
    );
    assert.match(
      (await s.kubectl(['get', 'ns'], { kubeconfig: unverified })).stderr,
      /Unauthorized/,
    );
  });

  await t.test('impersonation is checked with the impersonate verb', async () => {
    const alice = join(dir, 'alice.kubeconfig');
    const asAlice = ok(
      await s.kubectl(['auth', 'whoami', '--as', 'alice', '--as-group', 'devs']),
      'admin --as',
    );
    assert.match(asAlice, /Username\s+alice/);
    assert.equal(
      ok(
        await s.kubectl([
          '-n',
          'app',
          'auth',
          'can-i',
          'delete',
          'pods',
          '--as',
          'alice',
          '--as-group',
          'devs',
        ]),
        'can-i --as',
      ).trim(),
      'yes',
    );
    const denied = await s.kubectl(['get', 'pods', '-n', 'app', '--as', 'bob'], {
      kubeconfig: alice,
    });
    assert.match(
      denied.stderr,
      /users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope/,
    );
  });

  await t.test(
    'client-certificate user and service-account token from kubectl create token',
    async () => {
      const ca = {
        certPem: readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8'),
        keyPem: readFileSync(join(dir, 'pki', 'ca.key'), 'utf8'),
      };
      const carol = await issueClientCertificate(ca, { user: 'carol', groups: ['viewers'] });
      const carolConfig = join(dir, 'carol.kubeconfig');
      writeFileSync(
        carolConfig,
        kubeconfig({ server: url, caPem: ca.certPem, user: 'carol', client: carol }),
      );
      assert.match(
        ok(await s.kubectl(['auth', 'whoami'], { kubeconfig: carolConfig }), 'carol'),
        /Username\s+carol/,
      );
      assert.equal(
        ok(
          await s.kubectl(['-n', 'app', 'auth', 'can-i', 'list', 'pods'], {
            kubeconfig: carolConfig,
          }),
          'carol can-i',
        ).trim(),
        'yes',
      );
      ok(await s.kubectl(['-n', 'app', 'create', 'serviceaccount', 'robot']), 'create sa');
      ok(
        await s.kubectl([
          '-n',
          'app',
          'create',
          'rolebinding',
          'robot-view',
          '--clusterrole=view',
          '--serviceaccount=app:robot',
        ]),
        'bind sa',
      );
      const token = ok(
        await s.kubectl(['-n', 'app', 'create', 'token', 'robot']),
        'create token',
      ).trim();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      const robot = tokenConfig('robot', token);
      const who = ok(await s.kubectl(['auth', 'whoami'], { kubeconfig: robot }), 'robot whoami');
      assert.match(who, /Username\s+system:serviceaccount:app:robot/);
      assert.match(
        who,
        /Groups\s+\[system:serviceaccounts system:serviceaccounts:app system:authenticated\]/,
      );
      assert.equal(
        ok(
          await s.kubectl(['-n', 'app', 'auth', 'can-i', 'get', 'configmaps'], {
            kubeconfig: robot,
          }),
          'robot can-i',
        ).trim(),
        'yes',
      );
      ok(await s.kubectl(['-n', 'app', 'delete', 'serviceaccount', 'robot']), 'delete sa');
      const after = await s.kubectl(['-n', 'app', 'get', 'cm'], { kubeconfig: robot });
      assert.match(after.stderr, /Unauthorized/, 'a token dies with its service account');
    },
  );

  await t.test(
    'PodSecurity: enforce refuses with Kubernetes message; warn returns Warning lines',
    async () => {
      ok(await s.kubectl(['create', 'namespace', 'locked']), 'ns');
      ok(
        await s.kubectl([
          'label',
          'namespace',
          'locked',
          'pod-security.kubernetes.io/enforce=restricted',
        ]),
        'label',
      );
      const priv = (ns: string): string =>
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: priv\n  namespace: ${ns}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext:\n      privileged: true\n`;
      const refused = await s.kubectl(['apply', '-f', '-'], { input: priv('locked') });
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        /pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged \(container "c" must not set securityContext.privileged=true\), allowPrivilegeEscalation != false/,
      );
      ok(await s.kubectl(['create', 'namespace', 'watched']), 'ns');
      ok(
        await s.kubectl([
          'label',
          'namespace',
          'watched',
          'pod-security.kubernetes.io/warn=baseline',
        ]),
        'label',
      );
      const warned = await s.kubectl(['apply', '-f', '-'], { input: priv('watched') });
      assert.equal(warned.code, 0, warned.stderr);
      assert.match(
        warned.stderr,
        /^Warning: would violate PodSecurity "baseline:latest": privileged \(container "c" must not set securityContext.privileged=true\)$/m,
      );
    },
  );

  await t.test('sidecar injection by palisade inject webhook in a labelled namespace', async () => {
    // The injector serves with the test issuer's certificate (SANs: localhost and the host).
    const certFile = join(dir, 'injector.crt');
    const keyFile = join(dir, 'injector.key');
    writeFileSync(certFile, issuerCert.certPem);
    writeFileSync(keyFile, issuerCert.keyPem);
    const injector = await spawnPalisade(
      [
        'inject',
        'webhook',
        '--listen',
        `${opts.host}:0`,
        '--tls-cert',
        certFile,
        '--tls-key',
        keyFile,
      ],
      { ready: /Injector ready: (https:\/\/\S+)/, timeoutMs: 30_000 },
    );
    try {
      const webhook = {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'palisade-sidecar-injector' },
        webhooks: [
          {
            name: 'namespace.sidecar-injector.istio.io',
            clientConfig: {
              url: injector.match[1],
              caBundle: Buffer.from(issuerCa.certPem).toString('base64'),
            },
            rules: [
              { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] },
            ],
            namespaceSelector: { matchLabels: { 'istio-injection': 'enabled' } },
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
          },
        ],
      };
      ok(await s.kubectl(['apply', '-f', '-'], { input: JSON.stringify(webhook) }), 'webhook');
      ok(await s.kubectl(['create', 'namespace', 'mesh']), 'ns');
      ok(await s.kubectl(['label', 'namespace', 'mesh', 'istio-injection=enabled']), 'label');
      const pod = (ns: string): string =>
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: ${ns}\n  labels: {app: web}\nspec:\n  containers:\n  - name: main\n    image: nginx\n`;
      ok(await s.kubectl(['create', '-f', '-'], { input: pod('mesh') }), 'create injected pod');
      ok(await s.kubectl(['create', '-f', '-'], { input: pod('app') }), 'create plain pod');
      const names = async (ns: string): Promise<string[]> => {
        const spec = JSON.parse(
          ok(await s.kubectl(['-n', ns, 'get', 'pod', 'web', '-o', 'jsonpath={.spec}']), 'get'),
        ) as { containers: { name: string }[]; initContainers?: { name: string }[] };
        return [...(spec.initContainers ?? []), ...spec.containers].map((c) => c.name);
      };
      assert.deepEqual(await names('mesh'), ['istio-init', 'main', 'istio-proxy']);
      assert.deepEqual(await names('app'), ['main'], 'an unlabelled namespace is not injected');
      ok(
        await s.kubectl(['delete', 'mutatingwebhookconfiguration', 'palisade-sidecar-injector']),
        'rm',
      );
    } finally {
      await injector.stop();
    }
  });

  await t.test(
    "Palisade's validator refuses an invalid VirtualService with the field path",
    async () => {
      const vs =
        'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: bad\n  namespace: app\nspec:\n  hosts: ["reviews"]\n  http:\n  - route:\n    - destination:\n        host: reviews\n      weight: -5\n';
      const r = await s.kubectl(['apply', '-f', '-'], { input: vs });
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /VirtualService "bad" is invalid: spec\.http\[0\]\.route\[0\]\.weight/,
      );
    },
  );

  await t.test(
    'RBAC answers agree with palisade auth can-i on the same objects (6 subjects x 23 checks)',
    async () => {
      const rbac = ok(
        await s.kubectl([
          'get',
          'clusterroles,clusterrolebindings,roles,rolebindings',
          '-A',
          '-o',
          'yaml',
        ]),
        'get rbac',
      );
      const file = join(dir, 'rbac.yaml');
      writeFileSync(file, rbac);
      // [verb, apiGroup, resource, subresource, namespace ('' = cluster scope), nonResourceURL]
      const checks: [string, string, string, string, string, string][] = [
        ['create', '', 'pods', '', 'app', ''],
        ['create', '', 'pods', '', 'default', ''],
        ['get', '', 'secrets', '', 'app', ''],
        ['list', 'networking.istio.io', 'virtualservices', '', 'app', ''],
        ['list', 'security.istio.io', 'authorizationpolicies', '', 'default', ''],
        ['delete', 'rbac.authorization.k8s.io', 'rolebindings', '', 'app', ''],
        ['get', '', 'pods', 'log', 'app', ''],
        ['create', '', 'pods', 'exec', 'app', ''],
        ['create', '', 'pods', 'eviction', 'app', ''],
        ['update', '', 'pods', 'status', 'app', ''],
        ['get', 'apps', 'deployments', 'scale', 'app', ''],
        ['watch', '', 'configmaps', '', 'app', ''],
        ['deletecollection', '', 'configmaps', '', 'app', ''],
        ['impersonate', '', 'serviceaccounts', '', 'app', ''],
        ['create', '', 'serviceaccounts', 'token', 'app', ''],
        ['list', '', 'namespaces', '', '', ''],
        ['create', '', 'namespaces', '', '', ''],
        ['list', '', 'nodes', '', '', ''],
        ['create', 'authentication.k8s.io', 'tokenreviews', '', '', ''],
        ['get', '', '', '', '', '/healthz'],
        ['get', '', '', '', '', '/version'],
        ['get', '', '', '', '', '/metrics'],
        ['get', '', '', '', '', '/api'],
      ];
      // Impersonated and SubjectAccessReview users get system:authenticated as Kubernetes adds it.
      const subjects: [string, string[]][] = [
        ['alice', ['devs']],
        ['bob', ['viewers', 'qa']],
        ['carol', ['viewers']],
        ['dana@example.com', ['oidc:ops']],
        [
          'system:serviceaccount:app:robot',
          ['system:serviceaccounts', 'system:serviceaccounts:app'],
        ],
        ['mallory', []],
      ];
      const requests = subjects.flatMap(([user, groups]) =>
        checks.map(([verb, apiGroup, resource, subresource, namespace, nonResourceURL]) => ({
          user,
          groups: [...groups, 'system:authenticated'],
          verb,
          apiGroup,
          resource,
          subresource,
          namespace,
          nonResourceURL,
        })),
      );
      const reqFile = join(dir, 'requests.json');
      writeFileSync(reqFile, JSON.stringify(requests));
      const offline = await runPalisade([
        'auth',
        'can-i',
        '--requests',
        reqFile,
        '-f',
        file,
        '-o',
        'json',
      ]);
      const answers = (JSON.parse(offline.stdout) as { allowed: boolean }[]).map((a) => a.allowed);
      // The live server, one SubjectAccessReview per request (one kubectl call creates them all).
      const reviews = requests.map((r) => ({
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: r.user,
          groups: r.groups,
          ...(r.nonResourceURL === ''
            ? {
                resourceAttributes: {
                  verb: r.verb,
                  group: r.apiGroup,
                  resource: r.resource,
                  subresource: r.subresource,
                  namespace: r.namespace,
                },
              }
            : { nonResourceAttributes: { verb: r.verb, path: r.nonResourceURL } }),
        },
      }));
      const created = ok(
        await s.kubectl(['create', '-f', '-', '-o', 'jsonpath={.status.allowed}{"\\n"}'], {
          input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: reviews }),
        }),
        'create SubjectAccessReviews',
      );
      const live = created
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l === 'true');
      assert.equal(live.length, requests.length, created);
      const differ = requests
        .map((r, i) => ({ r, offline: answers[i], live: live[i] }))
        .filter((d) => d.offline !== d.live);
      assert.deepEqual(differ, [], 'live SubjectAccessReview and palisade auth can-i agree');
      assert.ok(answers.filter(Boolean).length > 20 && answers.filter((a) => !a).length > 20);
      // And kubectl auth can-i --as (impersonation, SelfSubjectAccessReview) on a sample.
      const sample = requests.filter((_, i) => i % 7 === 0);
      const viaCanI = await Promise.all(
        sample.map(async (r) => {
          const target =
            r.nonResourceURL !== ''
              ? [r.nonResourceURL]
              : [
                  r.apiGroup === '' ? r.resource : `${r.resource}.${r.apiGroup}`,
                  ...(r.subresource === '' ? [] : ['--subresource', r.subresource]),
                  ...(r.namespace === '' ? ['-A'] : ['-n', r.namespace]),
                ];
          const groups = r.groups
            .filter((g) => g !== 'system:authenticated')
            .flatMap((g) => ['--as-group', g]);
          const out = await s.kubectl([
            'auth',
            'can-i',
            r.verb,
            ...target,
            '--as',
            r.user,
            ...groups,
          ]);
          return out.stdout.trim() === 'yes';
        }),
      );
      assert.deepEqual(
        viaCanI,
        sample.map((r) => answers[requests.indexOf(r)]),
      );
    },
  );

  await t.test('objects survive a restart of the server', async () => {
    await server.stop();
    ({ server, url } = await startServer(dir, opts.host, serverArgs));
    s = session(dir, server, url);
    assert.equal(
      ok(
        await s.kubectl(['-n', 'app', 'get', 'cm', 'settings', '-o', 'jsonpath={.metadata.name}']),
        'get',
      ).trim(),
      'settings',
    );
    assert.match(ok(await s.kubectl(['get', 'ns']), 'ns'), /^locked\s+Active/m);
  });
}
