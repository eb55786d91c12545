// The proxy NACKs any config regex RE2 rejects, wherever it sits in a route
// or listener (defence in depth behind the control plane's validation):
// safe_regex in route, header and query matchers, CORS origins and RBAC
// principals/permissions, and regex_rewrite pattern and substitution.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../xds/index.js';
import { validateResource } from './index.js';

function route(match: object, action: object = {}): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.route,
    name: '80',
    virtual_hosts: [
      {
        name: 'h',
        domains: ['h'],
        routes: [{ match, route: { cluster: 'c', ...action } }],
      },
    ],
  };
}

const regexProblems = (problems: string[]): string[] =>
  problems.filter((p) => /regex|rewrite/.test(p));

test('routes: non-RE2 safe_regex and bad regex_rewrite are NACKed with the field path', () => {
  assert.deepEqual(
    regexProblems(validateResource('route', route({ safe_regex: { regex: '/(a+)+' } }))),
    [],
  );
  const look = validateResource('route', route({ safe_regex: { regex: '/(?=a)' } }));
  assert.match(
    look.join('\n'),
    /virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: lookahead "\(\?=" is not supported/,
  );
  const header = validateResource(
    'route',
    route({
      prefix: '/',
      headers: [{ name: 'x', string_match: { safe_regex: { regex: '(a)\\1' } } }],
      query_parameters: [{ name: 'q', string_match: { safe_regex: { regex: 'a'.repeat(1025) } } }],
    }),
  ).join('\n');
  assert.match(header, /headers\[0\]\.string_match\.safe_regex\.regex: backreference/);
  assert.match(header, /query_parameters\[0\]\.string_match\.safe_regex\.regex: .*1025 bytes/);
  const rewrite = (regex: string, substitution: string): string =>
    validateResource(
      'route',
      route({ prefix: '/' }, { regex_rewrite: { pattern: { regex }, substitution } }),
    ).join('\n');
  assert.equal(regexProblems([rewrite('^/svc/([^/]+)(/.*)$', '\\2/instance/\\1')]).join(''), '');
  assert.match(rewrite('^/(a)$', '/\\3'), /route\.regex_rewrite: .*uses group \\3/);
  assert.match(rewrite('(?<=a)b', '/'), /route\.regex_rewrite: lookbehind/);
});

test('listeners: an RBAC safe_regex RE2 rejects is NACKed', () => {
  const listener = (regex: string): Record<string, unknown> => ({
    '@type': TYPE_URLS.listener,
    name: 'outbound',
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
              http_filters: [
                {
                  name: 'envoy.filters.http.rbac',
                  typed_config: {
                    rules: {
                      action: 'DENY',
                      policies: {
                        p: {
                          permissions: [{ any: true }],
                          principals: [
                            { authenticated: { principal_name: { safe_regex: { regex } } } },
                          ],
                        },
                      },
                    },
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  assert.deepEqual(regexProblems(validateResource('listener', listener('.*/ns/[^/]+/.*'))), []);
  assert.match(
    validateResource('listener', listener('.*(?!x)')).join('\n'),
    /principals\[0\]\.authenticated\.principal_name\.safe_regex\.regex: negative lookahead/,
  );
});

test('the outbound listener: fields its chains would skip are NACKed, not ignored', () => {
  const hcm = (config: object): object => ({
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
      stat_prefix: 'outbound_80',
      ...config,
    },
  });
  const outbound = (chain: object): Record<string, unknown> => ({
    '@type': TYPE_URLS.listener,
    name: 'outbound',
    filter_chains: [chain],
  });
  const rds = { rds: { route_config_name: '80', config_source: { ads: {} } } };
  const good = outbound({
    filter_chain_match: { destination_port: { value: 80 } },
    filters: [hcm(rds)],
  });
  assert.deepEqual(validateResource('listener', good), []);
  const problems = (chain: object): string =>
    validateResource('listener', outbound(chain)).join('\n');
  // TLS on a chain the outbound side serves in plaintext: refused.
  assert.match(
    problems({
      filters: [hcm(rds)],
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: {} },
    }),
    /filter_chains\[0\]: unsupported field transport_socket/,
  );
  // Matching by SNI or address: the outbound side picks a chain by port only.
  assert.match(
    problems({ filter_chain_match: { server_names: ['a'] }, filters: [hcm(rds)] }),
    /filter_chains\[0\]\.filter_chain_match: unsupported field server_names/,
  );
  // An inline route configuration instead of RDS would route nothing.
  assert.match(
    problems({ filters: [hcm({ route_config: { name: 'x' } })] }),
    /filters\[0\]: unsupported field route_config[\s\S]*must name its routes over RDS/,
  );
  assert.match(
    problems({ filters: [] }),
    /filter_chains\[0\]: exactly one HTTP connection manager is supported/,
  );
});
