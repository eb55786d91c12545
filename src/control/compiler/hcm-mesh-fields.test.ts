// meshConfig.pathNormalization and upgrade types on every HttpConnectionManager, as
// Istio's pilot builds them (pilot/pkg/networking/core/listener_builder.go,
// buildHTTPConnectionManager): path_with_escaped_slashes_action KEEP_UNCHANGED, then
//   NONE → normalize_path false; BASE/DEFAULT → normalize_path true;
//   MERGE_SLASHES → and merge_slashes; DECODE_AND_MERGE_SLASHES → and UNESCAPE_AND_FORWARD;
// and `upgrade_configs: [{upgrade_type: websocket}]` ("Allow websocket upgrades").
// Each HCM goes through the Envoy protos (the ADS codec) and the proxy's own
// validation, and the proxy must read the level back from the decoded form.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readManifests } from '../../api/index.js';
import type { PathNormalization } from '../../policy/index.js';
import { validateResource } from '../../proxy/index.js';
import {
  compileHcmUpgrades,
  compileRequestHeadPolicy,
  compileRouteUpgrades,
  upgradeAllowedBy,
} from '../../proxy/request-head.js';
import { TYPE_URLS } from '../../xds/index.js';
import { adsServiceDefinition } from '../../xds/protos.js';
import { REPO_ROOT } from '../../../test/helpers/index.js';
import { createSnapshot, validateManifests } from '../config/config-snapshot.js';
import { buildRegistry } from '../registry/service-registry.js';
import { compileProxy } from './compile-proxy.js';
import { GATEWAY_LABELS, type ProxyNode } from './proxy-node.js';

/** Whether the HCM and route (raw, as decoded) allow an upgrade type, as the proxy compiles them. */
const upgradeAllowed = (type: string, hcm: R | undefined, route: R | undefined): boolean =>
  upgradeAllowedBy(
    type,
    compileHcmUpgrades(hcm?.['upgrade_configs']),
    compileRouteUpgrades(route?.['upgrade_configs']),
  );

type R = Record<string, unknown>;
const rec = (v: unknown): R => (typeof v === 'object' && v !== null ? (v as R) : {});

function compiled(level: PathNormalization | undefined): Map<string, R> {
  const validated = validateManifests(
    readManifests([join(REPO_ROOT, 'examples', 'bookinfo')]).filter(
      (m) => !m.file.includes('/samples/'),
    ),
  );
  assert.ok(validated.ok);
  const snapshot = createSnapshot(1, validated.objects);
  const registry = buildRegistry(snapshot, [
    {
      id: 'ratings-v1-0',
      address: '127.40.3.1',
      namespace: 'default',
      labels: { app: 'ratings', version: 'v1' },
      serviceAccount: 'bookinfo-ratings',
      workload: 'ratings-v1-0',
      portNames: { http: 9080 },
      healthy: true,
    },
  ]);
  const ratings = registry.workloads.find((w) => w.name === 'ratings-v1');
  assert.ok(ratings);
  const inputs = {
    snapshot,
    registry,
    trustDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    ...(level === undefined ? {} : { pathNormalization: level }),
    mesh: { outboundTrafficPolicy: 'ALLOW_ANY' as const },
    trustBundlePem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
    credentials: new Map<string, R>(),
  };
  const proxies: ProxyNode[] = [
    {
      id: 'ratings-v1-0',
      type: 'sidecar',
      ip: '127.40.3.1',
      appAddress: '127.40.4.1',
      namespace: 'default',
      serviceAccount: 'bookinfo-ratings',
      labels: ratings.labels,
      workload: ratings,
    },
    {
      id: 'gw',
      type: 'ingress',
      ip: '127.40.0.1',
      appAddress: '127.0.0.1',
      namespace: 'istio-system',
      serviceAccount: 'istio-ingressgateway-service-account',
      labels: GATEWAY_LABELS.ingress,
      workload: undefined,
    },
  ];
  const codec = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(codec);
  // Every HCM by `<proxy>/<listener>/<chain>`, in the form the proxy decodes it.
  const hcms = new Map<string, R>();
  for (const proxy of proxies)
    for (const [name, listener] of compileProxy(inputs, proxy).listener) {
      const bytes = codec.responseSerialize({
        version_info: '1',
        type_url: TYPE_URLS.listener,
        nonce: '1',
        resources: [listener],
      });
      const back: R | undefined = (codec.responseDeserialize(bytes) as { resources: R[] })
        .resources[0];
      assert.ok(back);
      assert.deepEqual(validateResource('listener', back), [], name);
      for (const chain of (back['filter_chains'] as R[] | undefined) ?? [])
        for (const filter of (chain['filters'] as R[] | undefined) ?? [])
          if (filter['name'] === 'envoy.filters.network.http_connection_manager')
            hcms.set(`${proxy.id}/${name}/${String(chain['name'])}`, rec(filter['typed_config']));
    }
  return hcms;
}

const LEVELS: [PathNormalization | undefined, R][] = [
  [undefined, { normalize_path: { value: true } }],
  [
    'NONE',
    { normalize_path: { value: false }, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' },
  ],
  ['BASE', { normalize_path: { value: true }, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }],
  [
    'MERGE_SLASHES',
    {
      normalize_path: { value: true },
      merge_slashes: true,
      path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
    },
  ],
  [
    'DECODE_AND_MERGE_SLASHES',
    {
      normalize_path: { value: true },
      merge_slashes: true,
      path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD',
    },
  ],
];

for (const [level, want] of LEVELS)
  test(`pathNormalization ${level ?? '(unset: BASE)'}: every HCM carries Istio's fields and the proxy reads them back`, () => {
    const hcms = compiled(level);
    // The sidecar's inbound and outbound (per port and catch-all) HCMs and the gateway's.
    const names = [...hcms.keys()];
    assert.ok(
      names.some((n) => n.startsWith('ratings-v1-0/inbound|9080/')),
      names.join(),
    );
    assert.ok(names.some((n) => n.startsWith('ratings-v1-0/outbound/outbound|9080')));
    assert.ok(names.some((n) => n.startsWith('ratings-v1-0/outbound/outbound|catch-all')));
    assert.ok(
      names.some((n) => n.startsWith('gw/')),
      names.join(),
    );
    for (const [name, hcm] of hcms) {
      for (const [field, value] of Object.entries(want))
        assert.deepEqual(hcm[field], value, `${name}: ${field}`);
      if (level !== 'MERGE_SLASHES' && level !== 'DECODE_AND_MERGE_SLASHES')
        assert.ok(hcm['merge_slashes'] !== true, `${name}: merge_slashes`);
      assert.deepEqual(hcm['upgrade_configs'], [{ upgrade_type: 'websocket' }], name);
      // The proxy's request-head policy reads the same level back from the decoded HCM.
      assert.equal(compileRequestHeadPolicy(hcm).normalization, level ?? 'BASE', name);
      assert.equal(compileRequestHeadPolicy(hcm).rejectEscapedSlashes, false, name);
      assert.equal(upgradeAllowed('websocket', hcm, undefined), true, name);
      assert.equal(upgradeAllowed('h2c', hcm, undefined), false, name);
      assert.equal(upgradeAllowed('CONNECT-UDP', hcm, undefined), false, name);
    }
  });

test('the proxy NACKs HCM head fields it would not enforce (per-upgrade filters, unknown escaped-slash action)', () => {
  const listener = (fields: R): R => ({
    '@type': TYPE_URLS.listener,
    name: 'outbound',
    filter_chains: [
      {
        name: 'outbound|80',
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              stat_prefix: 'x',
              rds: { route_config_name: '80', config_source: { ads: {} } },
              ...fields,
            },
          },
        ],
      },
    ],
  });
  assert.deepEqual(
    validateResource('listener', listener({ upgrade_configs: [{ upgrade_type: 'websocket' }] })),
    [],
  );
  assert.match(
    validateResource(
      'listener',
      listener({ upgrade_configs: [{ upgrade_type: 'websocket', filters: [] }] }),
    ).join(),
    /upgrade_configs\[0\]: unsupported field filters/,
  );
  assert.match(
    validateResource('listener', listener({ path_with_escaped_slashes_action: 'DECODE' })).join(),
    /path_with_escaped_slashes_action: unknown value "DECODE"/,
  );
});
