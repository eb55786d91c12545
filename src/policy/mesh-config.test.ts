// MeshConfig's policy fields from the shapes users hold (istio.io MeshConfig reference).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../api/index.js';
import { parsePolicyMeshConfig } from './mesh-config.js';

test('MeshConfig as the object, the istio ConfigMap and an IstioOperator', () => {
  const want = { trustDomain: 'td2', trustDomainAliases: ['td1'], numTrustedProxies: 2 };
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
  assert.deepEqual(parsePolicyMeshConfig('{}', 'e.yaml'), { trustDomainAliases: [] });
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
