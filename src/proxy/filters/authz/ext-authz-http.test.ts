// The proxy's ext_authz HTTP service, built from the filters the control plane sends
// (extAuthzHttpFilter), against a real authorization server on a socket. Envoy's
// ext_authz docs: a failed check (connection refused, timeout, 5xx) denies with
// status_on_error unless failure_mode_allow; requests no CUSTOM rule matches are
// not sent to the server; a denial's body over the bound is an error, not relayed.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { extAuthzHttpFilter } from '../../../control/compiler/listeners.js';
import type { ExtAuthzHttpProvider } from '../../../policy/index.js';
import { MAX_EXT_AUTHZ_BODY } from './ext-authz-http.js';
import { httpPolicyEvaluator } from './index.js';

// This suite's loopback range (127.39.0.0/16).
const AUTHZ_IP = '127.39.1.1';

const provider = (
  port: number,
  more: Partial<ExtAuthzHttpProvider> = {},
): ExtAuthzHttpProvider => ({
  service: AUTHZ_IP,
  port,
  timeoutMs: 5000,
  pathPrefix: '',
  failOpen: false,
  statusOnError: 403,
  includeRequestHeadersInCheck: [],
  headersToUpstreamOnAllow: [],
  headersToDownstreamOnDeny: [],
  ...more,
});

function hcm(p: ExtAuthzHttpProvider): Record<string, unknown> {
  return {
    http_filters: [
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          shadow_rules_stat_prefix: 'istio_ext_authz_',
          shadow_rules: {
            action: 'DENY',
            policies: {
              'istio-ext-authz-ns[foo]-policy[ext]-rule[0]': {
                permissions: [{ url_path: { path: { prefix: '/custom' } } }],
                principals: [{ any: true }],
              },
            },
          },
        },
      },
      extAuthzHttpFilter(p),
      { name: 'envoy.filters.http.router' },
    ],
  };
}

const request = (path: string) => ({
  principal: null,
  destinationPort: 8000,
  protocol: 'http' as const,
  method: 'GET',
  path,
  host: 'httpbin',
  headers: { host: 'httpbin' },
});

async function server(
  handler: http.RequestListener,
): Promise<{ port: number; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const s = http.createServer((req, res) => {
    calls++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => s.listen(0, AUTHZ_IP, resolve));
  return {
    port: (s.address() as AddressInfo).port,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => {
          resolve();
        });
      }),
  };
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = await server(() => undefined);
  await s.close();
  return s.port;
}

test('provider down: statusOnError when failOpen is false, allowed when it is true', async () => {
  const port = await closedPort();
  const closed = await httpPolicyEvaluator(hcm(provider(port, { statusOnError: 503 }))).decide(
    request('/custom'),
  );
  assert.equal(closed.decision, 'DENY');
  assert.equal(closed.localReply?.status, 503);
  const open = await httpPolicyEvaluator(hcm(provider(port, { failOpen: true }))).decide(
    request('/custom'),
  );
  assert.equal(open.decision, 'ALLOW');
});

test('a 5xx answer is an error (statusOnError), a 4xx a denial; unmatched paths are not checked', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(req.url === '/custom/5xx' ? 500 : 429, { 'x-why': 'w' });
    res.end('nope');
  });
  t.after(s.close);
  const evaluator = httpPolicyEvaluator(hcm(provider(s.port)));
  const err = await evaluator.decide(request('/custom/5xx'));
  assert.deepEqual(err.localReply, { status: 403, body: '', headers: {} });
  const deny = await evaluator.decide(request('/custom/4xx'));
  assert.equal(deny.localReply?.status, 429);
  assert.equal(deny.localReply.body, 'nope');
  // headersToDownstreamOnDeny not set: Envoy relays the denial's headers.
  assert.equal(deny.localReply.headers['x-why'], 'w');
  const before = s.calls();
  assert.equal((await evaluator.decide(request('/other'))).decision, 'ALLOW');
  assert.equal(s.calls(), before);
});

test('timeout and an oversized denial body are errors', async (t) => {
  const held: http.ServerResponse[] = [];
  const s = await server((req, res) => {
    if (req.url === '/custom/slow') held.push(res);
    else {
      res.writeHead(403);
      res.end(Buffer.alloc(MAX_EXT_AUTHZ_BODY + 1, 'a'));
    }
  });
  t.after(async () => {
    for (const r of held) r.destroy();
    await s.close();
  });
  const evaluator = httpPolicyEvaluator(hcm(provider(s.port, { timeoutMs: 200 })));
  const slow = await evaluator.decide(request('/custom/slow'));
  assert.equal(slow.decision, 'DENY');
  assert.match(slow.reason, /timed out/);
  const big = await evaluator.decide(request('/custom/big'));
  assert.equal(big.decision, 'DENY');
  assert.match(big.reason, /too large/);
});

test('an ext_authz filter without its trigger RBAC filter is rejected', () => {
  assert.throws(
    () =>
      httpPolicyEvaluator({
        http_filters: [extAuthzHttpFilter(provider(1)), { name: 'envoy.filters.http.router' }],
      }),
    /must follow its istio_ext_authz_ RBAC filter/,
  );
});
