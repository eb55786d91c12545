// RBAC filters of an inbound chain: classified by action, every one enforced
// (Envoy runs each RBAC filter in the chain; any of them can deny), and what
// the proxy cannot enforce is an error, never a filter dropped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../../../api/index.js';
import { loadSecurityPolicies, translateRequestAuthentications } from '../../../policy/index.js';
import { classifyRbacFilters, httpPolicyEvaluator, tcpPolicyEvaluator } from './index.js';

const WEB = 'spiffe://cluster.local/ns/foo/sa/web';
const EVIL = 'spiffe://cluster.local/ns/foo/sa/evil';

function networkRbac(action: string, principals: object[], prefix = 'tcp.'): object {
  return {
    name: 'envoy.filters.network.rbac',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
      stat_prefix: prefix,
      rules: {
        action,
        policies: { [`p-${action}`]: { permissions: [{ any: true }], principals } },
      },
    },
  };
}

function httpRbac(action: string, prefix: string): object {
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      rules: {
        action,
        policies: {
          [`ns.${action}-${prefix}`]: {
            permissions: [{ url_path: { path: { prefix } } }],
            principals: [{ any: true }],
          },
        },
      },
    },
  };
}

const fromLoopback = { direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } };
const webOnly = { authenticated: { principal_name: { exact: WEB } } };

test('a TCP chain with a NetworkPolicy ALLOW and an AuthorizationPolicy ALLOW enforces both', async () => {
  // The compiler puts the NetworkPolicy filter first; reading only the first ALLOW let any
  // in-cluster peer through the AuthorizationPolicy (fail open).
  const evaluator = tcpPolicyEvaluator([
    networkRbac('ALLOW', [fromLoopback], 'netpol.'),
    networkRbac('ALLOW', [webOnly]),
    { name: 'envoy.filters.network.tcp_proxy', typed_config: {} },
  ]);
  const conn = (principal: string, sourceIp: string) =>
    evaluator.decide({ principal, sourceIp, destinationPort: 9000, protocol: 'tcp' });
  assert.equal((await conn(WEB, '127.0.0.1')).status, 200);
  assert.equal((await conn(EVIL, '127.0.0.1')).status, 403, 'AuthorizationPolicy ALLOW ignored');
  assert.equal((await conn(WEB, '10.0.0.1')).status, 403, 'NetworkPolicy ALLOW ignored');
});

test('a lone DENY filter denies; roles come from actions, not positions', async () => {
  const evaluator = httpPolicyEvaluator({
    http_filters: [httpRbac('ALLOW', '/'), httpRbac('DENY', '/admin')],
  });
  const req = (path: string) =>
    evaluator.decide({ principal: null, destinationPort: 80, protocol: 'http', path });
  assert.equal((await req('/admin/x')).status, 403);
  assert.equal((await req('/ok')).status, 200);
  const lone = httpPolicyEvaluator({ http_filters: [httpRbac('DENY', '/admin')] });
  assert.equal(
    (await lone.decide({ principal: null, destinationPort: 80, protocol: 'http', path: '/admin' }))
      .status,
    403,
  );
});

test('two DENY filters both deny; a third, a second ALLOW or an unknown action is an error', () => {
  const rbacs = (actions: (string | number)[]) =>
    actions.map((action) => ({ rules: { action, policies: {} } }));
  assert.deepEqual(
    classifyRbacFilters(rbacs(['DENY', 'DENY', 'ALLOW', 'LOG']), 1).map((g) =>
      Object.keys(g).sort(),
    ),
    [['allow', 'audit', 'custom', 'deny']],
  );
  assert.throws(
    () => classifyRbacFilters(rbacs(['DENY', 'DENY', 'DENY']), 1),
    /more DENY RBAC filters than this proxy enforces/,
  );
  assert.throws(() => classifyRbacFilters(rbacs(['ALLOW', 'ALLOW']), 1), /more ALLOW RBAC filters/);
  assert.throws(() => classifyRbacFilters(rbacs([7]), 1), /unsupported RBAC action 7/);
  assert.throws(() => classifyRbacFilters([{}], 1), /neither rules nor shadow_rules/);
  // Two groups (network filters): two ALLOW filters are both kept.
  assert.equal(classifyRbacFilters(rbacs(['ALLOW', 'ALLOW']), 2).length, 2);
});

test('network ext_authz: the trigger decides who is checked; anything but its shape is refused', async () => {
  // The control plane's shape (listeners.ts extAuthzNetworkFilters, Istio's generateGRPCConfig).
  const trigger = {
    name: 'envoy.filters.network.rbac',
    typed_config: {
      stat_prefix: 'tcp.',
      shadow_rules: {
        action: 'DENY',
        policies: {
          'istio-ext-authz-ns[foo]-policy[x]-rule[0]': {
            permissions: [{ destination_port: 1 }],
            principals: [{ any: true }],
          },
        },
      },
      shadow_rules_stat_prefix: 'istio_ext_authz_',
    },
  };
  const grpc = {
    name: 'envoy.filters.network.ext_authz',
    typed_config: {
      stat_prefix: 'tcp.',
      failure_mode_allow: false,
      transport_api_version: 'V3',
      // 127.0.0.9:9 answers nothing here: a check fails.
      grpc_service: {
        envoy_grpc: { cluster_name: 'outbound|9||127.0.0.9' },
        timeout: { seconds: 0, nanos: 200_000_000 },
      },
      filter_enabled_metadata: {
        filter: 'envoy.filters.network.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: 'istio-ext-authz' } },
      },
    },
  };
  const evaluator = tcpPolicyEvaluator([trigger, grpc]);
  // A connection no CUSTOM rule matches never reaches the provider.
  const other = await evaluator.decide({ principal: WEB, destinationPort: 2, protocol: 'tcp' });
  assert.equal(other.status, 200);
  // One that matches asks it; an unreachable provider without failure_mode_allow denies.
  const matched = await evaluator.decide({ principal: WEB, destinationPort: 1, protocol: 'tcp' });
  assert.equal(matched.status, 403);
  assert.match(matched.reason, /external authorizer .* failed/);
  // With failure_mode_allow the same failure lets the connection through.
  const open = tcpPolicyEvaluator([
    trigger,
    { ...grpc, typed_config: { ...grpc.typed_config, failure_mode_allow: true } },
  ]);
  assert.equal(
    (await open.decide({ principal: WEB, destinationPort: 1, protocol: 'tcp' })).status,
    200,
  );
  // ext_authz without its trigger, a trigger without ext_authz, a second one: refused (NACK).
  assert.throws(() => tcpPolicyEvaluator([grpc]), /must follow its istio_ext_authz_ RBAC/);
  assert.throws(() => tcpPolicyEvaluator([trigger]), /without its ext_authz filter/);
  assert.throws(() => tcpPolicyEvaluator([trigger, grpc, grpc]), /must follow/);
  assert.throws(
    () =>
      tcpPolicyEvaluator([
        trigger,
        { ...grpc, typed_config: { ...grpc.typed_config, filter_enabled_metadata: undefined } },
      ]),
    /filter_enabled_metadata/,
  );
});

test('decideNow: the same decision without a promise, never when a JWT must be checked', async () => {
  const hcm = (filters: object[]) => ({ http_filters: filters });
  const plain = httpPolicyEvaluator(hcm([httpRbac('DENY', '/admin')]));
  const req = (path: string, over: object = {}) => ({
    principal: WEB,
    sourceIp: '127.0.0.1',
    destinationPort: 8000,
    protocol: 'http' as const,
    method: 'GET',
    host: 'app',
    path,
    headers: {},
    ...over,
  });
  for (const r of [req('/'), req('/admin/x'), req('/a/%2e%2e/admin'), req('/%00')]) {
    const now = plain.decideNow?.(r);
    assert.ok(now !== undefined, r.path);
    assert.deepEqual(now, await plain.decide(r), r.path);
  }
  assert.equal(plain.decideNow?.(req('/admin/x'))?.status, 403);

  // jwt_authn on the chain: every request but a CORS preflight waits for it, so a forged
  // token is refused (401) and never decided by RBAC alone.
  const config = translateRequestAuthentications([
    ...loadSecurityPolicies(
      parseManifests(
        `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: foo}\nspec:\n  jwtRules:\n  - issuer: iss\n    jwks: '{"keys":[{"kty":"oct","kid":"k","k":"${Buffer.alloc(32, 1).toString('base64url')}"}]}'\n`,
        'ra.yaml',
      ),
    ).requestAuthentications,
  ]);
  assert.ok(config !== undefined);
  const jwt = { name: 'envoy.filters.http.jwt_authn', typed_config: config };
  const withJwt = httpPolicyEvaluator(hcm([jwt, httpRbac('DENY', '/admin')]));
  const forged = req('/', { headers: { authorization: 'Bearer a.b.c' } });
  assert.equal(withJwt.decideNow?.(forged), undefined);
  assert.equal((await withJwt.decide(forged)).status, 401);
  assert.equal(withJwt.decideNow?.(req('/')), undefined);
  const preflight = req('/', {
    method: 'OPTIONS',
    headers: {
      origin: 'https://a',
      'access-control-request-method': 'GET',
      authorization: 'Bearer a.b.c',
    },
  });
  const now = withJwt.decideNow?.(preflight);
  assert.deepEqual(now, await withJwt.decide(preflight));
  assert.equal(now.status, 200);
});
