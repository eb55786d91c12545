// The copied protos load, and a DiscoveryResponse carrying a Listener with an
// HttpConnectionManager Any round-trips through the ADS wire encoding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adsServiceDefinition, EXTENSION_TYPE_URLS, TYPE_URLS } from './protos.js';

test('ADS encodes and decodes a Listener with nested Any configs', () => {
  const def = adsServiceDefinition();
  const method = def['StreamAggregatedResources'];
  assert.ok(method);
  const response = {
    version_info: '1',
    type_url: TYPE_URLS.listener,
    nonce: 'n1',
    resources: [
      {
        '@type': TYPE_URLS.listener,
        name: 'l1',
        api_listener: {
          api_listener: {
            '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
            rds: { route_config_name: 'r1', config_source: { ads: {} } },
            http_filters: [
              { name: 'router', typed_config: { '@type': EXTENSION_TYPE_URLS.router } },
            ],
          },
        },
      },
    ],
  };
  const bytes = method.responseSerialize(response);
  interface Decoded {
    resources: {
      name: string;
      '@type': string;
      api_listener: {
        api_listener: {
          rds: { route_config_name: string };
          http_filters: { typed_config: { '@type': string } }[];
        };
      };
    }[];
  }
  const back = method.responseDeserialize(bytes) as Decoded;
  const listener = back.resources[0];
  assert.ok(listener);
  assert.equal(listener.name, 'l1');
  assert.equal(listener['@type'], TYPE_URLS.listener);
  // The nested Any values (HttpConnectionManager, Router) survive encoding.
  const hcm = listener.api_listener.api_listener;
  assert.equal(hcm.rds.route_config_name, 'r1');
  assert.equal(hcm.http_filters[0]?.typed_config['@type'], EXTENSION_TYPE_URLS.router);
});
