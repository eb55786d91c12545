// The pieces of admission and audit that decide without a server: quota
// arithmetic and wording, label selectors, audit policy rules, and the
// injector's policy and patch (applied with the API server's own JSON patch).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { injectionPatch, reviewResponse, skipReason } from '../../inject/index.js';
import { auditLevel, readAuditPolicy } from '../audit.js';
import { jsonPatch } from '../patch.js';
import { requestInfo } from '../request-info.js';
import { findResource, type ResourceType } from '../resources.js';
import { formatQuantity, parseQuantity, usageOf } from './quota.js';
import { labelSelectorMatches } from './webhooks.js';

const POD = findResource('', 'v1', 'pods') as ResourceType;

test('quantities parse and print as resource.Quantity does', () => {
  const q = (s: string): string => {
    const p = parseQuantity(s);
    assert.ok(p !== undefined, s);
    return formatQuantity(p);
  };
  assert.equal(q('500m'), '500m');
  assert.equal(q('1'), '1');
  assert.equal(q('1000m'), '1');
  assert.equal(q('0.5'), '500m');
  assert.equal(q('1.5Gi'), '1536Mi');
  assert.equal(q('128Mi'), '128Mi');
  assert.equal(q('2000'), '2k');
  assert.equal(q('1e3'), '1k');
  assert.equal(parseQuantity('1.5.2'), undefined);
  assert.equal(parseQuantity('-1'), undefined);
  assert.equal(parseQuantity('12Xi'), undefined);
});

test('pod usage: containers summed, the largest init container, requests default to limits', () => {
  const pod = {
    spec: {
      containers: [
        { name: 'a', resources: { requests: { cpu: '250m', memory: '64Mi' } } },
        { name: 'b', resources: { limits: { cpu: '500m' } } },
      ],
      initContainers: [{ name: 'i', resources: { requests: { cpu: '1' } } }],
    },
  };
  const u = usageOf(POD, pod);
  const show = (k: string): string | undefined => {
    const v = u.get(k);
    return v === undefined ? undefined : formatQuantity(v);
  };
  assert.equal(show('pods'), '1');
  assert.equal(show('count/pods'), '1');
  assert.equal(show('requests.cpu'), '1'); // init container 1 > 750m
  assert.equal(show('cpu'), '1');
  assert.equal(show('requests.memory'), '64Mi');
  assert.equal(show('limits.cpu'), '500m');
  assert.equal(show('limits.memory'), undefined);
  assert.equal(usageOf(POD, { ...pod, status: { phase: 'Succeeded' } }).size, 0);
});

test('label selectors: matchLabels and every matchExpressions operator', () => {
  const labels = { env: 'prod', tier: 'web' };
  assert.equal(labelSelectorMatches(undefined, labels), true);
  assert.equal(labelSelectorMatches({ matchLabels: { env: 'prod' } }, labels), true);
  assert.equal(labelSelectorMatches({ matchLabels: { env: 'dev' } }, labels), false);
  const expr = (operator: string, key: string, values?: string[]): unknown => ({
    matchExpressions: [{ key, operator, ...(values === undefined ? {} : { values }) }],
  });
  assert.equal(labelSelectorMatches(expr('In', 'tier', ['web', 'db']), labels), true);
  assert.equal(labelSelectorMatches(expr('In', 'missing', ['x']), labels), false);
  assert.equal(labelSelectorMatches(expr('NotIn', 'tier', ['web']), labels), false);
  assert.equal(labelSelectorMatches(expr('NotIn', 'missing', ['x']), labels), true);
  assert.equal(labelSelectorMatches(expr('Exists', 'env'), labels), true);
  assert.equal(labelSelectorMatches(expr('DoesNotExist', 'env'), labels), false);
  assert.equal(labelSelectorMatches(expr('Bogus', 'env'), labels), false);
});

test('audit policy: first matching rule, None by default, field paths on bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-audit-'));
  try {
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'omitStages: [RequestReceived]',
        'rules:',
        '- level: None',
        '  users: [system:kube-proxy]',
        '- level: RequestResponse',
        '  resources: [{group: "", resources: ["pods/*"]}]',
        '- level: Metadata',
        '  resources: [{group: "", resources: [services]}]',
        '- level: Request',
        '  userGroups: [devs]',
        '  namespaces: [app]',
        '- level: Metadata',
        '  nonResourceURLs: ["/healthz*"]',
        '  omitStages: [ResponseStarted]',
      ].join('\n'),
    );
    const policy = readAuditPolicy(file);
    const info = (method: string, path: string): ReturnType<typeof requestInfo> =>
      requestInfo(method, path, new URLSearchParams());
    const dev = { name: 'ann', groups: ['devs'] };
    assert.deepEqual(auditLevel(policy, dev, info('GET', '/api/v1/namespaces/app/pods/p/log')), {
      level: 'RequestResponse',
      omitStages: ['RequestReceived'],
    });
    assert.equal(
      auditLevel(policy, dev, info('GET', '/api/v1/namespaces/app/pods')).level,
      'RequestResponse',
    );
    // `services` is the resource alone, not its subresources (kube's ruleMatchesResource).
    assert.equal(
      auditLevel(policy, dev, info('GET', '/api/v1/namespaces/app/services/s')).level,
      'Metadata',
    );
    assert.equal(
      auditLevel(policy, dev, info('PUT', '/api/v1/namespaces/app/services/s/status')).level,
      'Request',
    );
    assert.equal(
      auditLevel(policy, dev, info('POST', '/api/v1/namespaces/app/configmaps')).level,
      'Request',
    );
    assert.equal(
      auditLevel(policy, dev, info('POST', '/api/v1/namespaces/other/configmaps')).level,
      'None',
    );
    assert.deepEqual(auditLevel(policy, undefined, info('GET', '/healthz/ready')), {
      level: 'Metadata',
      omitStages: ['RequestReceived', 'ResponseStarted'],
    });
    assert.equal(
      auditLevel(
        policy,
        { name: 'system:kube-proxy', groups: ['devs'] },
        info('GET', '/api/v1/namespaces/app/pods'),
      ).level,
      'None',
    );
    writeFileSync(file, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n');
    assert.throws(() => readAuditPolicy(file), /rules\[0\]\.level: Unsupported value: "Loud"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('injection policy: opt-out by label or annotation, the label winning; host network; already injected', () => {
  const pod = (
    meta: Record<string, unknown>,
    spec: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    metadata: { name: 'p', ...meta },
    spec: { containers: [{ name: 'app', image: 'x' }], ...spec },
  });
  assert.equal(skipReason(pod({}), 'app'), undefined);
  assert.match(
    String(skipReason(pod({ annotations: { 'sidecar.istio.io/inject': 'false' } }), 'app')),
    /=false/,
  );
  assert.equal(
    skipReason(
      pod({
        labels: { 'sidecar.istio.io/inject': 'true' },
        annotations: { 'sidecar.istio.io/inject': 'false' },
      }),
      'app',
    ),
    undefined,
  );
  assert.equal(skipReason(pod({}, { hostNetwork: true }), 'app'), 'hostNetwork');
  assert.match(String(skipReason(pod({}), 'kube-system')), /ignored/);
  assert.equal(
    skipReason(pod({ annotations: { 'sidecar.istio.io/status': '{}' } }), 'app'),
    'already injected',
  );
});

test('the injection patch applies to a pod with existing init containers, volumes and annotations', () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web',
      labels: { app: 'web' },
      annotations: { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/8' },
    },
    spec: {
      initContainers: [{ name: 'migrate', image: 'm' }],
      containers: [{ name: 'app', image: 'a' }],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
  const out = jsonPatch(
    pod,
    injectionPatch(pod, 'app', { image: 'img', discoveryAddress: 'cp:15012' }),
  ) as {
    metadata: { annotations: Record<string, string>; labels: Record<string, string> };
    spec: {
      initContainers: { name: string; args: string[] }[];
      containers: { name: string }[];
      volumes: { name: string }[];
    };
  };
  assert.deepEqual(
    out.spec.initContainers.map((c) => c.name),
    ['istio-init', 'migrate'],
  );
  assert.deepEqual(
    out.spec.containers.map((c) => c.name),
    ['app', 'istio-proxy'],
  );
  assert.deepEqual(
    out.spec.volumes.map((v) => v.name),
    ['data', 'istio-envoy', 'istio-data', 'istio-token', 'istiod-ca-cert'],
  );
  const args = out.spec.initContainers[0]?.args ?? [];
  assert.equal(args[args.indexOf('-x') + 1], '10.0.0.0/8');
  assert.equal(out.metadata.annotations['kubectl.kubernetes.io/default-container'], 'app');
  assert.equal(out.metadata.labels['service.istio.io/canonical-revision'], 'latest');
  // The AdmissionReview answer: uid echoed, base64 JSONPatch; non-pods and updates untouched.
  const review = (operation: string, kind = 'Pod'): unknown => ({
    request: {
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind },
      operation,
      namespace: 'app',
      object: pod,
    },
  });
  const r = reviewResponse(review('CREATE'), { image: 'img', discoveryAddress: 'cp:15012' });
  const response = r.response as {
    uid: string;
    allowed: boolean;
    patchType: string;
    patch: string;
  };
  assert.equal(response.uid, 'u-1');
  assert.equal(response.patchType, 'JSONPatch');
  assert.equal(
    (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown[]).length,
    5,
  );
  assert.deepEqual(
    reviewResponse(review('UPDATE'), { image: 'i', discoveryAddress: 'c' }).response,
    {
      uid: 'u-1',
      allowed: true,
    },
  );
  assert.deepEqual(
    reviewResponse(review('CREATE', 'Service'), { image: 'i', discoveryAddress: 'c' }).response,
    {
      uid: 'u-1',
      allowed: true,
    },
  );
});
