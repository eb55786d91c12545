/**
 * The per-request feature work of both sidecars of a chain, function by
 * function, beside its reference in the same run (an empty call of the same
 * shape): what the outbound proxy's telemetry hook costs (metrics labels and
 * recording, tap, access-log line), the inbound one's, and the peer-metadata
 * exchange (the outbound proxy reads the server's claim, the inbound one the
 * client's). Each with the access log on (a null stream) and off. And the
 * inbound policy filter's question and answer (the authz request built from
 * the head, then the decision) with no policy on the workload and with
 * Bookinfo's ALLOW policy for reviews.
 *
 * Run: node dist/bench/feature-cost.bench.js
 */
import { Writable } from 'node:stream';
import { createProxyTelemetry } from '../src/proxy/telemetry-hooks.js';
import { createProxyTap } from '../src/proxy/admin/tap.js';
import type { InboundRecord } from '../src/proxy/inbound/inbound-listeners.js';
import type { OutboundRecord } from '../src/proxy/outbound/outbound-types.js';
import { createPeerMetadataExchange } from '../src/telemetry/index.js';
import { httpAuthzRequest } from '../src/proxy/filters/authz/index.js';
import { EnvoyPolicyEvaluator, translateAuthorizationPolicies } from '../src/policy/index.js';
import type { AuthorizationPolicy } from '../src/api/security/index.js';

const OPS = 50_000;
const ROUNDS = 5;

const nullStream = (): Writable =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

const self = {
  workload: 'productpage-v1',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
  labels: { app: 'productpage', version: 'v1' },
  cluster: 'Kubernetes',
};
const server = createPeerMetadataExchange('sidecar~10.0.0.2~reviews-v1.default~default.svc', {
  NAME: 'reviews-v1-abc',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'reviews-v1',
  SERVICE_ACCOUNT: 'bookinfo-reviews',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'reviews', version: 'v1' },
});
const client = createPeerMetadataExchange('sidecar~10.0.0.1~productpage-v1.default~default.svc', {
  NAME: 'productpage-v1-abc',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'productpage-v1',
  SERVICE_ACCOUNT: 'bookinfo-productpage',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'productpage', version: 'v1' },
});
const clientPrincipal = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const sans = [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }];
const clientHeaders: Record<string, unknown> = { ...client.headers, host: 'reviews:9080' };
const serverHeaders: Record<string, unknown> = { ...server.headers };
const serverPeer = client.fromServer(serverHeaders, sans);
const clientPeer = server.fromClient(clientHeaders, clientPrincipal);

const outboundRecord = (i: number): OutboundRecord => ({
  authority: 'reviews:9080',
  method: 'GET',
  path: '/reviews/0',
  cluster: 'outbound|9080||reviews.default.svc.cluster.local',
  upstream: '10.0.0.2:9080',
  status: i % 50 === 0 ? 503 : 200,
  flags: i % 50 === 0 ? 'UF' : '-',
  attempts: 1,
  durationMs: 1.3,
  mtls: true,
  protocol: 'HTTP/1.1',
  ...(serverPeer === undefined ? {} : { peer: serverPeer }),
});
const inboundRecord = (i: number): InboundRecord => ({
  listener: 'inbound|9080||',
  principal: clientPrincipal,
  method: 'GET',
  path: '/reviews/0',
  status: i % 50 === 0 ? 503 : 200,
  reason: 'via_upstream',
  policy: null,
  durationMs: 1.1,
  mtls: true,
  protocol: 'HTTP/1.1',
  ...(clientPeer === undefined ? {} : { peer: clientPeer }),
});

/** Median ns per op over ROUNDS rounds of OPS calls of `fn(i)`. */
function time(fn: (i: number) => void): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) fn(i);
    const ns = Number(process.hrtime.bigint() - t0) / OPS;
    if (r > 0) rounds.push(ns); // the first round warms up
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(rounds.length / 2)] ?? 0;
}

let sink: unknown;
const rows: [string, number][] = [];
const add = (name: string, fn: (i: number) => void): void => {
  rows.push([name, time(fn)]);
};

// Reference: building the record and an empty hook call (what the layers pay anyway).
add('reference: record objects + empty hook', (i) => {
  sink = outboundRecord(i);
  sink = inboundRecord(i);
});
const logged = createProxyTelemetry(
  self,
  nullStream(),
  undefined,
  () => 'reviews.default.svc.cluster.local',
  createProxyTap(),
);
const quiet = createProxyTelemetry(
  self,
  undefined,
  undefined,
  () => 'reviews.default.svc.cluster.local',
  createProxyTap(),
);
// The logger writes once per event-loop turn; this loop never yields, so flush as a turn would.
add('outbound hook, access log on', (i) => {
  logged.outbound(outboundRecord(i));
  if (i % 64 === 63) logged.accessLog?.flush();
});
add('outbound hook, access log off', (i) => {
  quiet.outbound(outboundRecord(i));
});
add('inbound hook, access log on', (i) => {
  logged.inbound(inboundRecord(i));
  if (i % 64 === 63) logged.accessLog?.flush();
});
add('inbound hook, access log off', (i) => {
  quiet.inbound(inboundRecord(i));
});
add('peer metadata: inbound fromClient + strip', (i) => {
  const h = { ...clientHeaders };
  sink = server.fromClient(h, i % 1000 === 0 ? null : clientPrincipal);
  server.strip(h);
});
add('peer metadata: outbound fromServer + strip', () => {
  const h = { ...serverHeaders };
  sink = client.fromServer(h, sans);
  client.strip(h);
});
// The inbound authz filter: what inbound-http.ts asks for every request (peer authentication
// already done), with no AuthorizationPolicy and with one ALLOW policy that matches.
const bookinfoAllow: AuthorizationPolicy = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'reviews-viewer', namespace: 'default' },
  spec: {
    selector: { matchLabels: { app: 'reviews' } },
    action: 'ALLOW',
    rules: [
      {
        from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }],
        to: [{ operation: { methods: ['GET'] } }],
      },
    ],
  },
};
const noPolicy = new EnvoyPolicyEvaluator({ jwt: undefined, http: {}, tcp: {} });
const withPolicy = new EnvoyPolicyEvaluator({
  jwt: undefined,
  http: translateAuthorizationPolicies([bookinfoAllow], 'http'),
  tcp: {},
});
const requestHead = {
  method: 'GET',
  url: '/reviews/0',
  headers: {
    host: 'reviews:9080',
    'user-agent': 'Debian-curl/8.14',
    accept: '*/*',
    'x-request-id': 'b7ad6b7169203331',
    'x-forwarded-proto': 'http',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  },
};
const connection = {
  principal: clientPrincipal,
  sourceIp: '127.0.0.1',
  destinationIp: '127.0.0.2',
  destinationPort: 9080,
};
/**
 * Median ns per decision: awaited through `decide` (the filter's promise, as a request with a
 * JWT to check takes), or `decideNow` (the proxy's path when the decision is ready at once).
 */
async function decideNs(
  evaluator: EnvoyPolicyEvaluator,
  expect: string,
  how: 'decide' | 'decideNow',
): Promise<number> {
  const n = OPS;
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const req = httpAuthzRequest(requestHead, connection);
      const d = how === 'decide' ? await evaluator.decide(req) : evaluator.decideNow(req);
      if (d?.decision !== expect)
        throw new Error(`policy bench: ${String(d?.decision)}: ${String(d?.reason)}`);
    }
    if (r > 0) rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(rounds.length / 2)] ?? 0;
}
for (const how of ['decide', 'decideNow'] as const) {
  rows.push([`policy: authz request + ${how}, no policy`, await decideNs(noPolicy, 'ALLOW', how)]);
  rows.push([
    `policy: authz request + ${how}, ALLOW policy`,
    await decideNs(withPolicy, 'ALLOW', how),
  ]);
}
logged.accessLog?.flush();
if (sink === Symbol.for('never')) console.log(sink);

const ref = rows[0]?.[1] ?? 0;
console.log(`feature cost per request, median of ${String(ROUNDS)} rounds × ${String(OPS)} ops`);
console.log('work                                            ns/op   above reference ns');
for (const [name, ns] of rows)
  console.log(
    `${name.padEnd(46)} ${ns.toFixed(0).padStart(7)}   ${name.startsWith('reference') ? '-' : (ns - ref).toFixed(0).padStart(7)}`,
  );
