// Translation to Envoy RBAC compared with the shapes Istio generates, and
// checked to encode with the real Envoy protos the control plane will send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../api/index.js';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../xds/index.js';
import { adsServiceDefinition } from '../xds/protos.js';
import {
  loadSecurityPolicies,
  translateAuthorizationPolicies,
  translateRequestAuthentications,
} from './index.js';

const yaml = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sleep"], notNamespaces: ["dev"]}
    - source: {requestPrincipals: ["https://accounts.example.com/*"]}
    to:
    - operation: {methods: ["GET"], paths: ["/info*"]}
    when:
    - {key: "request.auth.claims[iss]", values: ["https://accounts.example.com"]}
`;

test('AuthorizationPolicy → RBAC matches Istio’s generated shape', () => {
  const { authorizationPolicies } = loadSecurityPolicies(parseManifests(yaml, 'p.yaml'));
  const filters = translateAuthorizationPolicies(authorizationPolicies, 'http');
  assert.equal(filters.deny, undefined);
  const rules = filters.allow?.rules;
  assert.ok(rules);
  assert.equal(rules.action, 'ALLOW');
  assert.deepEqual(Object.keys(rules.policies), ['ns[foo]-policy[httpbin]-rule[0]']);
  assert.deepEqual(rules.policies['ns[foo]-policy[httpbin]-rule[0]'], {
    // to[0]: fields ANDed; each field's values ORed (one value each here).
    permissions: [
      {
        and_rules: {
          rules: [
            { header: { name: ':method', string_match: { exact: 'GET' } } },
            { url_path: { path: { prefix: '/info' } } },
          ],
        },
      },
    ],
    // from[0] OR from[1], AND the claim condition; notNamespaces as not_id.
    principals: [
      {
        and_ids: {
          ids: [
            {
              or_ids: {
                ids: [
                  {
                    and_ids: {
                      ids: [
                        {
                          authenticated: {
                            principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' },
                          },
                        },
                        {
                          not_id: {
                            authenticated: {
                              principal_name: { safe_regex: { regex: '.*/ns/dev/.*' } },
                            },
                          },
                        },
                      ],
                    },
                  },
                  {
                    and_ids: {
                      ids: [
                        {
                          // Istio's requestPrincipalGenerator: iss and sub claims apart.
                          and_ids: {
                            ids: [
                              {
                                metadata: {
                                  filter: 'istio_authn',
                                  path: [{ key: 'request.auth.claims' }, { key: 'iss' }],
                                  value: {
                                    string_match: { exact: 'https://accounts.example.com' },
                                  },
                                },
                              },
                              {
                                metadata: {
                                  filter: 'istio_authn',
                                  path: [{ key: 'request.auth.claims' }, { key: 'sub' }],
                                  value: { string_match: { safe_regex: { regex: '.+' } } },
                                },
                              },
                            ],
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            },
            {
              metadata: {
                filter: 'istio_authn',
                path: [{ key: 'request.auth.claims' }, { key: 'iss' }],
                value: {
                  list_match: {
                    one_of: { string_match: { exact: 'https://accounts.example.com' } },
                  },
                },
              },
            },
          ],
        },
      },
    ],
  });
});

test('the translated RBAC and jwt_authn configs encode with the real Envoy protos', () => {
  const { authorizationPolicies } = loadSecurityPolicies(parseManifests(yaml, 'p.yaml'));
  const allow = translateAuthorizationPolicies(authorizationPolicies, 'http').allow;
  const jwt = translateRequestAuthentications(
    loadSecurityPolicies(
      parseManifests(
        'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: foo}\nspec:\n  jwtRules: [{issuer: "https://i", jwksUri: "https://i/jwks"}]\n',
        'r.yaml',
      ),
    ).requestAuthentications,
  );
  const method = adsServiceDefinition()['StreamAggregatedResources'];
  assert.ok(method);
  const listener = {
    '@type': TYPE_URLS.listener,
    name: 'inbound|8000',
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
              stat_prefix: 'inbound_8000',
              http_filters: [
                {
                  name: 'envoy.filters.http.jwt_authn',
                  typed_config: { '@type': EXTENSION_TYPE_URLS.jwtAuthn, ...jwt },
                },
                {
                  name: 'envoy.filters.http.rbac',
                  typed_config: { '@type': EXTENSION_TYPE_URLS.httpRbac, ...allow },
                },
              ],
            },
          },
        ],
      },
    ],
  };
  const bytes = method.responseSerialize({
    version_info: '1',
    type_url: TYPE_URLS.listener,
    nonce: 'n',
    resources: [listener],
  });
  const back = method.responseDeserialize(bytes) as {
    resources: {
      filter_chains: {
        filters: { typed_config: { http_filters: { typed_config: Record<string, unknown> }[] } }[];
      }[];
    }[];
  };
  const filters = back.resources[0]?.filter_chains[0]?.filters[0]?.typed_config.http_filters ?? [];
  const rbac = filters[1]?.typed_config as
    { rules?: { policies?: Record<string, unknown> } } | undefined;
  assert.deepEqual(Object.keys(rbac?.rules?.policies ?? {}), ['ns[foo]-policy[httpbin]-rule[0]']);
  const jwtBack = filters[0]?.typed_config as
    { providers?: Record<string, { issuer?: string }> } | undefined;
  assert.equal(jwtBack?.providers?.['origins-0']?.issuer, 'https://i');
});
