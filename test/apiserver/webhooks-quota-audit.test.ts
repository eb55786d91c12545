/**
 * The rest of the API server's chain, with the real kubectl: webhook token
 * authentication (TokenReview) and the Webhook authorization mode
 * (SubjectAccessReview) against an HTTPS webhook server the test runs with
 * its own CA; ResourceQuota refusing the (n+1)th pod with Kubernetes'
 * message; an external validating webhook refusing with its message, and
 * failurePolicy Fail vs Ignore with a webhook that is down; AlwaysPullImages;
 * sidecar injection by `palisade inject webhook` registered through a
 * MutatingWebhookConfiguration; the audit log's lines and levels.
 *
 * Loopback 127.37.0.0/16 (this area's range), port 0 everywhere.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { kubeconfig } from '../../src/apiserver/index.js';
import { createTlsCa, issueServerCertificate } from '../../src/identity/index.js';
import { runProcess, spawnPalisade, tempDir, waitFor } from '../helpers/index.js';

const which = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' });
const kubectlBin = which.status === 0 ? which.stdout.trim() : undefined;
if (kubectlBin === undefined) {
  if (process.env.CI === 'true')
    throw new Error('kubectl is required in CI (apt-get install kubectl)');
  console.log('# webhooks-quota-audit: skipped, no `kubectl` binary');
}

const HOST = '127.37.0.1';

type Json = Record<string, unknown>;

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function refused(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.notEqual(r.code, 0, `${what}: expected a refusal\n${r.stdout}`);
  return r.stderr;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return (server.address() as AddressInfo).port;
}

function close(server: Server): Promise<void> {
  return new Promise((r) => {
    server.close(() => {
      r();
    });
    server.closeAllConnections();
  });
}

test(
  'webhooks, quota, injection and audit through palisade apiserver',
  { skip: kubectlBin === undefined },
  async (t) => {
    const tmp = tempDir('palisade-apiserver-hooks-');
    t.after(tmp.cleanup);
    const dir = tmp.path;

    // The test's webhook server: TokenReview, SubjectAccessReview and AdmissionReview.
    const ca = await createTlsCa('webhook-test-ca');
    const cert = await issueServerCertificate(ca, { dnsNames: ['localhost'], ips: [HOST] });
    const caFile = join(dir, 'webhook-ca.crt');
    writeFileSync(caFile, ca.certPem);
    writeFileSync(join(dir, 'webhook.crt'), cert.certPem);
    writeFileSync(join(dir, 'webhook.key'), cert.keyPem);
    const calls = { authn: 0, authz: [] as Json[], validate: 0 };
    const hooks = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
        const path = (req.url ?? '').split('?')[0];
        res.setHeader('content-type', 'application/json');
        if (path === '/authn') {
          calls.authn++;
          const token = (body.spec as { token: string }).token;
          const status =
            token === 'carol-webhook-token-0123'
              ? {
                  authenticated: true,
                  user: { username: 'carol', uid: 'c-1', groups: ['webhook-team'] },
                }
              : { authenticated: false };
          res.end(JSON.stringify({ ...body, status }));
        } else if (path === '/authz') {
          const spec = body.spec as {
            user: string;
            resourceAttributes?: { verb: string; resource: string; namespace?: string };
          };
          calls.authz.push(spec);
          const ra = spec.resourceAttributes;
          let status: Json = { allowed: false };
          if (spec.user === 'dave' && ra?.namespace === 'authz' && ra.resource === 'configmaps') {
            if (ra.verb === 'list' || ra.verb === 'get') status = { allowed: true, reason: 'ok' };
            if (ra.verb === 'delete')
              status = { allowed: false, denied: true, reason: 'dave may not delete' };
          }
          res.end(JSON.stringify({ ...body, status }));
        } else if (path === '/validate') {
          calls.validate++;
          const request = body.request as { uid: string; object: Json };
          const labels = ((request.object.metadata as Json).labels ?? {}) as Json;
          const response =
            labels.reject === 'yes'
              ? {
                  uid: request.uid,
                  allowed: false,
                  status: { code: 403, message: 'pods labelled reject=yes are not welcome' },
                }
              : { uid: request.uid, allowed: true, warnings: ['checked by the test webhook'] };
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response,
            }),
          );
        } else if (path === '/slow') {
          // Never answers: the API server's timeoutSeconds must end the call.
        } else res.writeHead(404).end('{}');
      });
    });
    const hooksUrl = `https://${HOST}:${String(await listen(hooks))}`;
    t.after(() => close(hooks));
    const webhookConfig = (name: string, path: string): string => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          `- name: remote`,
          '  cluster:',
          `    server: ${hooksUrl}${path}`,
          '    certificate-authority: webhook-ca.crt',
          'users:',
          '- name: apiserver',
          '  user: {}',
          'contexts:',
          '- name: webhook',
          '  context: {cluster: remote, user: apiserver}',
          'current-context: webhook',
          '',
        ].join('\n'),
      );
      return file;
    };
    // A port nothing listens on: a webhook that is down.
    const downServer = createHttpsServer({ cert: cert.certPem, key: cert.keyPem });
    const downPort = await listen(downServer);
    await close(downServer);

    const tokens = join(dir, 'tokens.csv');
    writeFileSync(tokens, 'dave-token-0123456789,dave,uid-dave,""\n');
    const policy = join(dir, 'audit-policy.yaml');
    writeFileSync(
      policy,
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'omitStages: [RequestReceived]',
        'rules:',
        '- level: RequestResponse',
        '  namespaces: [audited]',
        '  resources: [{group: "", resources: [configmaps]}]',
        '- level: Metadata',
        '  verbs: [create]',
        '  resources: [{group: "", resources: [pods]}]',
        '- level: None',
        '',
      ].join('\n'),
    );
    const auditLog = join(dir, 'audit.log');
    const server = await spawnPalisade(
      [
        'apiserver',
        '--data-dir',
        dir,
        '--listen',
        `${HOST}:0`,
        '--token-auth-file',
        tokens,
        '--authentication-token-webhook-config-file',
        webhookConfig('authn', '/authn'),
        '--authentication-token-webhook-cache-ttl',
        '1m',
        '--authorization-mode',
        'RBAC,Webhook',
        '--authorization-webhook-config-file',
        webhookConfig('authz', '/authz'),
        '--authorization-webhook-cache-unauthorized-ttl',
        '0s',
        '--enable-admission-plugins',
        'AlwaysPullImages',
        '--audit-policy-file',
        policy,
        '--audit-log-path',
        auditLog,
      ],
      { ready: /API server ready: (https:\/\/\S+)/, timeoutMs: 30_000 },
    );
    t.after(() => server.stop());
    const url = server.match[1] ?? '';
    const admin = join(dir, 'admin.kubeconfig');
    const kubectl = (
      args: readonly string[],
      opts: { input?: string; kubeconfig?: string } = {},
    ): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      runProcess(kubectlBin ?? 'kubectl', ['--kubeconfig', opts.kubeconfig ?? admin, ...args], {
        ...(opts.input === undefined ? {} : { input: opts.input }),
        env: { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, '.kube-cache') },
        timeoutMs: 30_000,
      });
    const tokenConfig = (name: string, token: string): string => {
      const path = join(dir, `${name}.kubeconfig`);
      const serverCa = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
      writeFileSync(path, kubeconfig({ server: url, caPem: serverCa, user: name, token }));
      return path;
    };
    const apply = async (yaml: string): Promise<string> =>
      ok(await kubectl(['apply', '-f', '-'], { input: yaml }), `apply\n${yaml}`);
    const pod = (
      name: string,
      ns: string,
      extra: { labels?: Json; annotations?: Json; cpu?: string } = {},
    ): string =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace: ns,
          ...(extra.labels === undefined ? {} : { labels: extra.labels }),
          ...(extra.annotations === undefined ? {} : { annotations: extra.annotations }),
        },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/app:1',
              ...(extra.cpu === undefined ? {} : { resources: { requests: { cpu: extra.cpu } } }),
            },
          ],
        },
      });
    const create = (yaml: string): ReturnType<typeof kubectl> =>
      kubectl(['create', '-f', '-'], { input: yaml });

    await t.test('webhook token authentication: the user gets exactly its RBAC', async () => {
      ok(await kubectl(['create', 'namespace', 'team']), 'create ns');
      ok(
        await kubectl([
          '-n',
          'team',
          'create',
          'rolebinding',
          'team-view',
          '--clusterrole=view',
          '--group=webhook-team',
        ]),
        'rolebinding',
      );
      const carol = tokenConfig('carol', 'carol-webhook-token-0123');
      const who = ok(await kubectl(['auth', 'whoami'], { kubeconfig: carol }), 'whoami');
      assert.match(who, /Username\s+carol/);
      assert.match(who, /UID\s+c-1/);
      assert.match(who, /Groups\s+\[webhook-team system:authenticated\]/);
      assert.equal(
        ok(
          await kubectl(['-n', 'team', 'auth', 'can-i', 'list', 'pods'], { kubeconfig: carol }),
          'can-i',
        ).trim(),
        'yes',
      );
      const no = await kubectl(['-n', 'team', 'auth', 'can-i', 'create', 'pods'], {
        kubeconfig: carol,
      });
      assert.equal(no.stdout.trim(), 'no');
      assert.match(
        refused(
          await kubectl(['-n', 'default', 'get', 'configmaps'], { kubeconfig: carol }),
          'get',
        ),
        /Error from server \(Forbidden\): configmaps is forbidden: User "carol" cannot list resource "configmaps" in API group "" in the namespace "default"/,
      );
      // Four requests, one TokenReview: the answer is cached for the TTL.
      assert.equal(calls.authn, 1);
      const stranger = tokenConfig('stranger', 'not-a-known-token-0000');
      assert.match(
        refused(await kubectl(['get', 'namespaces'], { kubeconfig: stranger }), 'stranger'),
        /Unauthorized/,
      );
      assert.equal(calls.authn, 2);
    });

    await t.test('Webhook authorization after RBAC: allow, explicit deny, no opinion', async () => {
      ok(await kubectl(['create', 'namespace', 'authz']), 'create ns');
      ok(await kubectl(['-n', 'authz', 'create', 'configmap', 'x', '--from-literal=a=b']), 'cm');
      const dave = tokenConfig('dave', 'dave-token-0123456789');
      assert.match(
        ok(await kubectl(['-n', 'authz', 'get', 'configmaps'], { kubeconfig: dave }), 'dave get'),
        /^x\s+1\s/m,
      );
      assert.match(
        refused(
          await kubectl(['-n', 'authz', 'delete', 'configmap', 'x'], { kubeconfig: dave }),
          'delete',
        ),
        /Error from server \(Forbidden\): configmaps "x" is forbidden: User "dave" cannot delete resource "configmaps" in API group "" in the namespace "authz": dave may not delete/,
      );
      assert.match(
        refused(await kubectl(['-n', 'authz', 'get', 'secrets'], { kubeconfig: dave }), 'secrets'),
        /secrets is forbidden: User "dave" cannot list resource "secrets" in API group "" in the namespace "authz"$/m,
      );
      // The same chain answers SelfSubjectAccessReview (kubectl auth can-i).
      assert.equal(
        ok(
          await kubectl(['-n', 'authz', 'auth', 'can-i', 'get', 'configmaps', '--as', 'dave']),
          'can-i',
        ).trim(),
        'yes',
      );
      const sar = calls.authz.find(
        (s) => (s.resourceAttributes as Json | undefined)?.verb === 'delete',
      );
      assert.deepEqual(sar, {
        resourceAttributes: {
          namespace: 'authz',
          verb: 'delete',
          group: '',
          resource: 'configmaps',
          name: 'x',
        },
        user: 'dave',
        groups: ['system:authenticated'],
        uid: 'uid-dave',
      });
      // The rules list says it is incomplete: the webhook's grants cannot be listed.
      const list = await kubectl(['-n', 'authz', 'auth', 'can-i', '--list'], { kubeconfig: dave });
      ok(list, 'can-i --list');
      assert.match(
        list.stderr,
        /incomplete.*webhook authorizer does not support user rule resolution/i,
      );
      // An RBAC allow never reaches the webhook: the admin's requests did not.
      assert.ok(calls.authz.every((s) => s.user !== 'admin'));
    });

    await t.test(
      'ResourceQuota: counts and cpu, the (n+1)th pod refused as Kubernetes words it',
      async () => {
        ok(await kubectl(['create', 'namespace', 'quota']), 'ns');
        await apply(
          'apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: compute, namespace: quota}\nspec:\n  hard: {pods: "2", requests.cpu: "1"}\n',
        );
        assert.match(
          refused(await create(pod('nocpu', 'quota')), 'no requests'),
          /pods "nocpu" is forbidden: failed quota: compute: must specify requests\.cpu for: app/,
        );
        ok(await create(pod('p1', 'quota', { cpu: '500m' })), 'p1');
        ok(await create(pod('p2', 'quota', { cpu: '500m' })), 'p2');
        assert.match(
          refused(await create(pod('p3', 'quota', { cpu: '100m' })), 'p3'),
          /Error from server \(Forbidden\): error when creating "STDIN": pods "p3" is forbidden: exceeded quota: compute, requested: pods=1,requests\.cpu=100m, used: pods=2,requests\.cpu=1, limited: pods=2,requests\.cpu=1/,
        );
        const used = (): Promise<Json> =>
          kubectl(['-n', 'quota', 'get', 'quota', 'compute', '-o', 'json']).then(
            (r) => (JSON.parse(ok(r, 'get quota')) as { status: { used: Json } }).status.used,
          );
        assert.deepEqual(await used(), { pods: '2', 'requests.cpu': '1' });
        ok(await kubectl(['-n', 'quota', 'delete', 'pod', 'p1']), 'delete p1');
        assert.deepEqual(await used(), { pods: '1', 'requests.cpu': '500m' });
        ok(await create(pod('p3', 'quota', { cpu: '100m' })), 'p3 after the delete');
        // One unit left and two concurrent creates: the quota's status is the commit point, one wins.
        ok(await kubectl(['-n', 'quota', 'delete', 'pod', 'p2']), 'delete p2');
        const race = await Promise.all([
          create(pod('c1', 'quota', { cpu: '100m' })),
          create(pod('c2', 'quota', { cpu: '100m' })),
        ]);
        assert.deepEqual(
          race.map((r) => r.code === 0).sort(),
          [false, true],
          race.map((r) => r.stdout + r.stderr).join('\n'),
        );
        assert.match(
          race.find((r) => r.code !== 0)?.stderr ?? '',
          /exceeded quota: compute, requested: pods=1/,
        );
        assert.deepEqual(await used(), { pods: '2', 'requests.cpu': '200m' });
        // AlwaysPullImages (enabled on this server) rewrote the pull policy.
        const p3 = JSON.parse(
          ok(await kubectl(['-n', 'quota', 'get', 'pod', 'p3', '-o', 'json']), 'get p3'),
        ) as { spec: { containers: { imagePullPolicy: string }[] } };
        assert.equal(p3.spec.containers[0]?.imagePullPolicy, 'Always');
      },
    );

    await t.test(
      'validating webhook: refusal with its message; Fail vs Ignore when down',
      async () => {
        ok(await kubectl(['create', 'namespace', 'hooks']), 'ns');
        ok(await kubectl(['label', 'namespace', 'hooks', 'webhook=on']), 'label');
        ok(await kubectl(['create', 'namespace', 'plain']), 'ns plain');
        const caBundle = Buffer.from(ca.certPem).toString('base64');
        const config = (failurePolicy: string): string =>
          JSON.stringify({
            apiVersion: 'admissionregistration.k8s.io/v1',
            kind: 'ValidatingWebhookConfiguration',
            metadata: { name: 'test-validation' },
            webhooks: [
              {
                name: 'reject.palisade.test',
                clientConfig: { url: `${hooksUrl}/validate`, caBundle },
                rules: [
                  {
                    operations: ['CREATE'],
                    apiGroups: [''],
                    apiVersions: ['v1'],
                    resources: ['pods'],
                  },
                ],
                namespaceSelector: { matchLabels: { webhook: 'on' } },
                sideEffects: 'None',
                admissionReviewVersions: ['v1'],
                timeoutSeconds: 5,
              },
              {
                name: 'down.palisade.test',
                clientConfig: { url: `https://${HOST}:${String(downPort)}/validate`, caBundle },
                rules: [
                  {
                    operations: ['CREATE'],
                    apiGroups: [''],
                    apiVersions: ['v1'],
                    resources: ['*'],
                  },
                ],
                objectSelector: {
                  matchExpressions: [{ key: 'probe', operator: 'In', values: ['down'] }],
                },
                failurePolicy,
                sideEffects: 'None',
                admissionReviewVersions: ['v1'],
                timeoutSeconds: 2,
              },
              {
                name: 'slow.palisade.test',
                clientConfig: { url: `${hooksUrl}/slow`, caBundle },
                rules: [
                  {
                    operations: ['CREATE'],
                    apiGroups: [''],
                    apiVersions: ['v1'],
                    resources: ['pods'],
                  },
                ],
                objectSelector: { matchLabels: { probe: 'slow' } },
                sideEffects: 'None',
                admissionReviewVersions: ['v1'],
                timeoutSeconds: 1,
              },
            ],
          });
        // Edge validation with field paths.
        assert.match(
          refused(
            await create(
              JSON.stringify({
                apiVersion: 'admissionregistration.k8s.io/v1',
                kind: 'ValidatingWebhookConfiguration',
                metadata: { name: 'broken' },
                webhooks: [
                  {
                    name: 'short.name',
                    clientConfig: { url: 'https://x/' },
                    admissionReviewVersions: ['v1'],
                  },
                ],
              }),
            ),
            'invalid config',
          ),
          /webhooks\[0\]\.name: Invalid value: "short\.name".*webhooks\[0\]\.sideEffects: Required value/s,
        );
        await apply(config('Fail'));
        const denied = refused(
          await create(pod('bad', 'hooks', { labels: { reject: 'yes' } })),
          'bad',
        );
        assert.match(
          denied,
          /pods "bad" is forbidden|admission webhook "reject\.palisade\.test" denied the request: pods labelled reject=yes are not welcome/,
        );
        assert.match(
          denied,
          /admission webhook "reject\.palisade\.test" denied the request: pods labelled reject=yes are not welcome/,
        );
        const good = await create(pod('good', 'hooks'));
        ok(good, 'good');
        assert.match(good.stderr, /Warning: checked by the test webhook/);
        // The namespaceSelector leaves other namespaces alone.
        const before = calls.validate;
        ok(await create(pod('bad', 'plain', { labels: { reject: 'yes' } })), 'plain namespace');
        assert.equal(calls.validate, before);
        // failurePolicy Fail: the request fails with the call's error, worded as Kubernetes words it.
        assert.match(
          refused(await create(pod('probe', 'plain', { labels: { probe: 'down' } })), 'down+Fail'),
          new RegExp(
            `Internal error occurred: failed calling webhook "down\\.palisade\\.test": failed to call webhook: Post "https://${HOST.replace(/\./g, '\\.')}:${String(downPort)}/validate\\?timeout=2s": dial tcp ${HOST.replace(/\./g, '\\.')}:${String(downPort)}: connect: connection refused`,
          ),
        );
        // timeoutSeconds bounds the call; the default failurePolicy is Fail.
        assert.match(
          refused(await create(pod('slow', 'plain', { labels: { probe: 'slow' } })), 'slow'),
          /Internal error occurred: failed calling webhook "slow\.palisade\.test": failed to call webhook: Post "https:\/\/[^"]+\/slow\?timeout=1s": context deadline exceeded/,
        );
        await apply(config('Ignore'));
        ok(await create(pod('probe', 'plain', { labels: { probe: 'down' } })), 'down+Ignore');
        ok(
          await kubectl(['delete', 'validatingwebhookconfiguration', 'test-validation']),
          'cleanup',
        );
      },
    );

    await t.test('sidecar injection by palisade inject webhook', async () => {
      const injector = await spawnPalisade(
        [
          'inject',
          'webhook',
          '--listen',
          `${HOST}:0`,
          '--tls-cert',
          join(dir, 'webhook.crt'),
          '--tls-key',
          join(dir, 'webhook.key'),
          '--image',
          'registry.example/palisade:test',
        ],
        { ready: /Injector ready: (https:\/\/\S+)/, timeoutMs: 30_000 },
      );
      t.after(() => injector.stop());
      const caBundle = Buffer.from(ca.certPem).toString('base64');
      // Istio's registration: by namespace label, opt-out by the pod's label.
      await apply(
        JSON.stringify({
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name: 'palisade-sidecar-injector' },
          webhooks: [
            {
              name: 'namespace.sidecar-injector.istio.io',
              clientConfig: { url: injector.match[1], caBundle },
              rules: [
                {
                  operations: ['CREATE'],
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods'],
                },
              ],
              namespaceSelector: { matchLabels: { 'istio-injection': 'enabled' } },
              objectSelector: {
                matchExpressions: [
                  { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] },
                ],
              },
              failurePolicy: 'Fail',
              sideEffects: 'None',
              admissionReviewVersions: ['v1'],
            },
          ],
        }),
      );
      ok(await kubectl(['create', 'namespace', 'mesh']), 'ns');
      ok(await kubectl(['label', 'namespace', 'mesh', 'istio-injection=enabled']), 'label');
      ok(await create(pod('web', 'mesh', { labels: { app: 'web', version: 'v1' } })), 'web');
      const web = JSON.parse(
        ok(await kubectl(['-n', 'mesh', 'get', 'pod', 'web', '-o', 'json']), 'get web'),
      ) as {
        metadata: { labels: Json; annotations: Json };
        spec: {
          containers: { name: string; image: string; imagePullPolicy: string }[];
          initContainers: { name: string; command: string[]; args: string[] }[];
          volumes: { name: string }[];
        };
      };
      assert.deepEqual(
        web.spec.containers.map((c) => c.name),
        ['app', 'istio-proxy'],
      );
      assert.equal(web.spec.containers[1]?.image, 'registry.example/palisade:test');
      assert.deepEqual(
        web.spec.initContainers.map((c) => c.name),
        ['istio-init'],
      );
      assert.deepEqual(web.spec.initContainers[0]?.command, ['palisade']);
      assert.deepEqual(web.spec.initContainers[0].args.slice(0, 7), [
        'proxy-init',
        '-p',
        '15001',
        '-z',
        '15006',
        '-u',
        '1337',
      ]);
      assert.deepEqual(JSON.parse(String(web.metadata.annotations['sidecar.istio.io/status'])), {
        initContainers: ['istio-init'],
        containers: ['istio-proxy'],
        volumes: ['istio-envoy', 'istio-data', 'istio-token', 'istiod-ca-cert'],
        imagePullSecrets: null,
        revision: 'default',
      });
      assert.equal(web.metadata.labels['security.istio.io/tlsMode'], 'istio');
      assert.equal(web.metadata.labels['service.istio.io/canonical-name'], 'web');
      assert.equal(web.metadata.labels['service.istio.io/canonical-revision'], 'v1');
      // Mutating before validating, AlwaysPullImages before the webhook: the app container's policy.
      assert.equal(web.spec.containers[0]?.imagePullPolicy, 'Always');
      const containersOf = async (name: string, ns: string): Promise<string[]> =>
        (
          JSON.parse(ok(await kubectl(['-n', ns, 'get', 'pod', name, '-o', 'json']), name)) as {
            spec: { containers: { name: string }[] };
          }
        ).spec.containers.map((c) => c.name);
      // The annotation opts out (the injector's own policy).
      ok(
        await create(pod('batch', 'mesh', { annotations: { 'sidecar.istio.io/inject': 'false' } })),
        'opt-out',
      );
      assert.deepEqual(await containersOf('batch', 'mesh'), ['app']);
      // An unlabelled namespace is never sent to the injector.
      ok(await create(pod('web', 'plain')), 'plain');
      assert.deepEqual(await containersOf('web', 'plain'), ['app']);
    });

    await t.test('audit log: levels, stages, annotations', async () => {
      ok(await kubectl(['create', 'namespace', 'audited']), 'ns');
      ok(
        await kubectl([
          'label',
          'namespace',
          'audited',
          'pod-security.kubernetes.io/audit=restricted',
        ]),
        'label',
      );
      ok(
        await kubectl(['-n', 'audited', 'create', 'configmap', 'cfg', '--from-literal=k=v']),
        'cm',
      );
      ok(await kubectl(['-n', 'audited', 'get', 'configmap', 'cfg']), 'get cm');
      refused(
        await kubectl(['-n', 'audited', 'create', 'configmap', 'x', '--as', 'dave']),
        'as dave',
      );
      ok(await create(pod('loud', 'audited')), 'pod');
      ok(await kubectl(['-n', 'default', 'get', 'configmaps']), 'unaudited');
      const found = await waitFor(() => {
        const lines = readFileSync(auditLog, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Json);
        return lines.some((e) => (e.objectRef as Json | undefined)?.name === 'loud')
          ? lines
          : undefined;
      });
      const events = found ?? [];
      for (const e of events) {
        assert.equal(e.apiVersion, 'audit.k8s.io/v1');
        assert.equal(e.kind, 'Event');
        assert.equal(e.stage, 'ResponseComplete', 'RequestReceived is omitted by the policy');
        assert.notEqual((e.objectRef as Json | undefined)?.namespace, 'default', 'level None');
      }
      const ref = (e: Json): Json => (e.objectRef ?? {}) as Json;
      const created = events.find((e) => e.verb === 'create' && ref(e).name === 'cfg');
      assert.ok(created !== undefined, JSON.stringify(events, null, 1));
      assert.equal(created.level, 'RequestResponse');
      assert.match(String(created.auditID), /^[0-9a-f-]{36}$/);
      assert.equal(
        created.requestURI,
        '/api/v1/namespaces/audited/configmaps?fieldManager=kubectl-create&fieldValidation=Strict',
      );
      assert.deepEqual(created.user, {
        username: 'admin',
        groups: ['system:masters', 'system:authenticated'],
      });
      assert.deepEqual(created.sourceIPs, ['127.0.0.1']);
      assert.match(String(created.userAgent), /^kubectl/);
      assert.deepEqual(ref(created), {
        resource: 'configmaps',
        namespace: 'audited',
        name: 'cfg',
        apiGroup: '',
        apiVersion: 'v1',
      });
      assert.deepEqual(created.responseStatus, { metadata: {}, code: 201 });
      assert.deepEqual((created.requestObject as { data: Json }).data, { k: 'v' });
      assert.match(
        String(((created.responseObject as Json).metadata as Json).uid),
        /^[0-9a-f-]{36}$/,
      );
      assert.equal((created.annotations as Json)['authorization.k8s.io/decision'], 'allow');
      assert.match(
        String(created.requestReceivedTimestamp),
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
      );
      assert.match(String(created.stageTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.ok(events.some((e) => e.verb === 'get' && ref(e).name === 'cfg'));
      // Refused before its body was read: the objectRef has no name, as in Kubernetes.
      const forbidden = events.find(
        (e) => (e.impersonatedUser as Json | undefined)?.username === 'dave',
      );
      assert.ok(forbidden !== undefined);
      assert.equal((forbidden.impersonatedUser as Json).username, 'dave');
      assert.equal((forbidden.responseStatus as Json).code, 403);
      assert.equal((forbidden.annotations as Json)['authorization.k8s.io/decision'], 'forbid');
      const podEvent = events.find((e) => ref(e).name === 'loud');
      assert.ok(podEvent !== undefined);
      assert.equal(podEvent.level, 'Metadata');
      assert.equal(podEvent.requestObject, undefined);
      assert.equal(podEvent.responseObject, undefined);
      const ann = podEvent.annotations as Json;
      assert.equal(ann['pod-security.kubernetes.io/enforce-policy'], 'privileged:latest');
      assert.match(
        String(ann['pod-security.kubernetes.io/audit-violations']),
        /^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/,
      );
    });
  },
);
