// RBAC filters of an inbound chain: classified by action, every one enforced
// (Envoy runs each RBAC filter in the chain; any of them can deny), and what
// the proxy cannot enforce is an error, never a filter dropped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
