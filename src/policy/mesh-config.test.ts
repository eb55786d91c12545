// MeshConfig's policy fields from the shapes users hold (istio.io MeshConfig reference).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../api/index.js';
import { parsePolicyMeshConfig } from './mesh-config.js';

test('MeshConfig as the object, the istio ConfigMap and an IstioOperator', () => {
  const want = {
    extensionProviders: [],
    trustDomain: 'td2',
    trustDomainAliases: ['td1'],
    numTrustedProxies: 2,
  };
  const body =
    'trustDomain: td2\ntrustDomainAliases: [td1]\ndefaultConfig:\n  gatewayTopology:\n    numTrustedProxies: 2\n';
  assert.deepEqual(parsePolicyMeshConfig(body, 'm.yaml'), want);
  const cm = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: |\n${body
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}`;
  assert.deepEqual(parsePolicyMeshConfig(cm, 'cm.yaml'), want);
  const iop = `apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    trustDomain: td2\n    trustDomainAliases: [td1]\n    defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}\n    accessLogFile: /dev/stdout\n`;
  assert.deepEqual(parsePolicyMeshConfig(iop, 'iop.yaml'), want);
  assert.deepEqual(parsePolicyMeshConfig('{}', 'e.yaml'), {
    extensionProviders: [],
    trustDomainAliases: [],
  });
});

test('a policy field of the wrong type names the file and the field', () => {
  assert.throws(
    () =>
      parsePolicyMeshConfig(
        'kind: ConfigMap\ndata:\n  mesh: "trustDomainAliases: td1\\ndefaultConfig: {gatewayTopology: {numTrustedProxies: -1}}"\n',
        'cm.yaml',
      ),
    (err: unknown) =>
      err instanceof ValidationError &&
      err.message.includes('cm.yaml') &&
      err.issues.map((i) => i.path).join() ===
        'data.mesh.trustDomainAliases,data.mesh.defaultConfig.gatewayTopology.numTrustedProxies',
  );
});

// meshConfig.pathNormalization.normalization (istio.io MeshConfig reference,
// ProxyPathNormalization.NormalizationType: DEFAULT is BASE).
test('pathNormalization: each level, DEFAULT as BASE, an unknown level named with its path', () => {
  for (const level of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'])
    assert.equal(
      parsePolicyMeshConfig(`pathNormalization: {normalization: ${level}}\n`, 'm.yaml')
        .pathNormalization,
      level,
    );
  assert.equal(
    parsePolicyMeshConfig('pathNormalization: {normalization: DEFAULT}\n', 'm.yaml')
      .pathNormalization,
    'BASE',
  );
  assert.equal(
    parsePolicyMeshConfig('pathNormalization: {}\n', 'm.yaml').pathNormalization,
    'BASE',
  );
  assert.equal(parsePolicyMeshConfig('{}', 'm.yaml').pathNormalization, undefined);
  const iop =
    'kind: IstioOperator\nspec:\n  meshConfig:\n    pathNormalization:\n      normalization: MERGE_SLASHES\n';
  assert.equal(parsePolicyMeshConfig(iop, 'iop.yaml').pathNormalization, 'MERGE_SLASHES');
  for (const bad of ['{normalization: merge_slashes}', '{normalization: 3}', 'BASE'])
    assert.throws(
      () => parsePolicyMeshConfig(`pathNormalization: ${bad}\n`, 'bad.yaml'),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.message.includes('bad.yaml') &&
        err.issues.some((i) => i.path.startsWith('pathNormalization')),
    );
});

// istio.io MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider; Istio's
// extauthz builder rejects a port outside [1, 65535], a pathPrefix without a leading `/`
// and duplicate provider names.
test('extensionProviders: envoyExtAuthzHttp and envoyExtAuthzGrpc defaulted as Istio, other kinds kept by name, bad fields named', () => {
  const m = parsePolicyMeshConfig(
    `extensionProviders:
  - name: http
    envoyExtAuthzHttp:
      service: ext-authz.foo.svc.cluster.local
      port: "8000"
      includeRequestHeadersInCheck: [X-Ext-Authz]
  - name: grpc
    envoyExtAuthzGrpc: { service: ext-authz.foo.svc.cluster.local, port: 9000 }
  - name: otel
    opentelemetry: { service: otel.foo.svc.cluster.local, port: 4317 }
`,
    'm.yaml',
  );
  assert.deepEqual(m.extensionProviders, [
    {
      name: 'http',
      envoyExtAuthzHttp: {
        service: 'ext-authz.foo.svc.cluster.local',
        port: 8000,
        timeoutMs: 600_000,
        pathPrefix: '',
        failOpen: false,
        statusOnError: 403,
        includeRequestHeadersInCheck: ['x-ext-authz'],
        headersToUpstreamOnAllow: [],
        headersToDownstreamOnDeny: [],
      },
    },
    {
      name: 'grpc',
      envoyExtAuthzGrpc: {
        service: 'ext-authz.foo.svc.cluster.local',
        port: 9000,
        timeoutMs: 600_000,
        failOpen: false,
        statusOnError: 403,
      },
    },
    { name: 'otel', unsupported: 'opentelemetry' },
  ]);
  assert.throws(
    () =>
      parsePolicyMeshConfig(
        `extensionProviders:
  - name: a
    envoyExtAuthzHttp: { service: s, port: 70000, pathPrefix: check }
  - name: a
    envoyExtAuthzHttp: { service: s, port: 1 }
  - name: g
    envoyExtAuthzGrpc: { service: s, port: 1, pathPrefix: /x }
`,
        'm.yaml',
      ),
    (e: unknown) => {
      const text = JSON.stringify(e) + String(e);
      return (
        text.includes('extensionProviders[0].envoyExtAuthzHttp.port') &&
        text.includes('extensionProviders[0].envoyExtAuthzHttp.pathPrefix') &&
        text.includes('extensionProviders[1].name') &&
        text.includes('extensionProviders[2].envoyExtAuthzGrpc.pathPrefix')
      );
    },
  );
});
