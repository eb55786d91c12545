// The proxy's per-request metrics reuse label sets by the parts they depend
// on (peer, service or cluster, status, flags, mTLS, gRPC status): a request
// that differs in any one part must land in its own series with its own
// labels, and requests that agree on all of them in one.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createProxyTelemetry, inboundServiceLookup } from './telemetry-hooks.js';
import type { XdsSnapshot } from './xds-client/ads-client.js';
import type { InboundRecord } from './inbound/inbound-listeners.js';
import type { OutboundRecord } from './outbound/outbound-types.js';

const self = {
  workload: 'reviews-v1',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/reviews',
  labels: { app: 'reviews', version: 'v1' },
};

/** `istio_requests_total` series as `labels → count`, for the labels that name the parts. */
async function totals(
  telemetry: ReturnType<typeof createProxyTelemetry>,
  keys: readonly string[],
): Promise<Map<string, number>> {
  const text = await telemetry.metrics.registry.metrics();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^istio_requests_total\{(.*)\} (\d+)$/.exec(line);
    if (m === null) continue;
    const labels = new Map(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] ?? '', x[2] ?? '']),
    );
    out.set(keys.map((k) => `${k}=${labels.get(k) ?? '?'}`).join(','), Number(m[2]));
  }
  return out;
}

/** An inbound record of a plain `GET /` answered 200 on `inbound|9080`, with `parts` changed. */
function inboundRecord(parts: Partial<InboundRecord>): InboundRecord {
  return {
    listener: 'inbound|9080',
    principal: null,
    method: 'GET',
    path: '/',
    status: 200,
    reason: '',
    policy: null,
    durationMs: 1,
    mtls: false,
    peer: undefined,
    ...parts,
  };
}

test('inbound: each part of a request that labels it gets its own series', async () => {
  const telemetry = createProxyTelemetry(self, undefined, undefined, (listener) =>
    listener.endsWith('9080') ? 'reviews.default.svc.cluster.local' : undefined,
  );
  const peer = {
    workload: 'productpage-v1',
    namespace: 'default',
    principal: 'spiffe://cluster.local/ns/default/sa/productpage',
    app: 'productpage',
    version: 'v1',
  };
  const base = inboundRecord({ principal: peer.principal, mtls: true, peer });
  const records: InboundRecord[] = [
    base,
    base,
    { ...base, peer: { ...peer, workload: 'ratings-v1' } },
    { ...base, peer: undefined },
    { ...base, peer: undefined, principal: 'spiffe://cluster.local/ns/other/sa/x' },
    { ...base, listener: 'inbound|9999' },
    { ...base, status: 503 },
    { ...base, mtls: false },
    { ...base, grpc: { status: 0 } },
    { ...base, grpc: { status: 14 } },
  ];
  for (const r of records) telemetry.inbound(r);
  const got = await totals(telemetry, [
    'source_workload',
    'source_principal',
    'destination_service',
    'response_code',
    'connection_security_policy',
    'request_protocol',
    'grpc_response_status',
  ]);
  const D = 'destination_service=reviews.default.svc.cluster.local';
  const P = 'source_principal=spiffe://cluster.local/ns/default/sa/productpage';
  assert.deepEqual(
    [...got.entries()].sort(),
    [
      [
        `source_workload=productpage-v1,${P},${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        2,
      ],
      [
        `source_workload=ratings-v1,${P},${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=unknown,${P},${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=unknown,source_principal=spiffe://cluster.local/ns/other/sa/x,${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=productpage-v1,${P},destination_service=unknown,response_code=200,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=productpage-v1,${P},${D},response_code=503,connection_security_policy=mutual_tls,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=productpage-v1,${P},${D},response_code=200,connection_security_policy=none,request_protocol=http,grpc_response_status=`,
        1,
      ],
      [
        `source_workload=productpage-v1,${P},${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=grpc,grpc_response_status=0`,
        1,
      ],
      [
        `source_workload=productpage-v1,${P},${D},response_code=200,connection_security_policy=mutual_tls,request_protocol=grpc,grpc_response_status=14`,
        1,
      ],
    ].sort(),
  );
});

test('outbound: each part of a request that labels it gets its own series', async () => {
  const telemetry = createProxyTelemetry(self, undefined);
  const base: OutboundRecord = {
    authority: 'ratings:9080',
    method: 'GET',
    path: '/',
    cluster: 'outbound|9080||ratings.default.svc.cluster.local',
    upstream: '10.0.0.1:9080',
    status: 200,
    flags: '-',
    attempts: 1,
    durationMs: 1,
    mtls: true,
    protocol: 'HTTP/1.1',
  };
  const records: OutboundRecord[] = [
    base,
    base,
    { ...base, cluster: 'outbound|9080|v2|ratings.default.svc.cluster.local' },
    { ...base, status: 404 },
    { ...base, status: 503, flags: 'UF' },
    { ...base, status: 503, flags: 'UH' },
    { ...base, mtls: false },
    { ...base, peer: { workload: 'ratings-v1', namespace: 'default' } },
    { ...base, grpc: { status: 2 } },
  ];
  for (const r of records) telemetry.outbound(r);
  const got = await totals(telemetry, [
    'destination_workload',
    'destination_version',
    'response_code',
    'response_flags',
    'connection_security_policy',
    'grpc_response_status',
  ]);
  assert.deepEqual(
    [...got.entries()].sort(),
    [
      // mTLS or not, the source reporter says `unknown` (Istio): one series.
      [
        'destination_workload=unknown,destination_version=unknown,response_code=200,response_flags=-,connection_security_policy=unknown,grpc_response_status=',
        3,
      ],
      [
        'destination_workload=unknown,destination_version=v2,response_code=200,response_flags=-,connection_security_policy=unknown,grpc_response_status=',
        1,
      ],
      [
        'destination_workload=unknown,destination_version=unknown,response_code=404,response_flags=-,connection_security_policy=unknown,grpc_response_status=',
        1,
      ],
      [
        'destination_workload=unknown,destination_version=unknown,response_code=503,response_flags=UF,connection_security_policy=unknown,grpc_response_status=',
        1,
      ],
      [
        'destination_workload=unknown,destination_version=unknown,response_code=503,response_flags=UH,connection_security_policy=unknown,grpc_response_status=',
        1,
      ],
      [
        'destination_workload=ratings-v1,destination_version=unknown,response_code=200,response_flags=-,connection_security_policy=unknown,grpc_response_status=',
        1,
      ],
      [
        'destination_workload=unknown,destination_version=unknown,response_code=200,response_flags=-,connection_security_policy=unknown,grpc_response_status=2',
        1,
      ],
    ].sort(),
  );
});

test('inbound service lookup: by the listener port this instance serves, recomputed per snapshot', () => {
  const cla = (host: string, ip: string, port: number): [string, Record<string, unknown>] => [
    `outbound|${String(port)}||${host}`,
    {
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: ip, port_value: port } } } },
          ],
        },
      ],
    },
  ];
  const snap = (entries: [string, Record<string, unknown>][]): XdsSnapshot =>
    ({ endpoint: new Map(entries) }) as unknown as XdsSnapshot;
  let current = snap([
    cla('reviews.default.svc.cluster.local', '10.0.0.5', 9080),
    cla('other.default.svc.cluster.local', '10.0.0.6', 9090),
  ]);
  const lookup = inboundServiceLookup(() => current, '10.0.0.5');
  for (let round = 0; round < 2; round += 1) {
    assert.equal(lookup('inbound|9080||'), 'reviews.default.svc.cluster.local');
    assert.equal(lookup('inbound|9090||'), undefined, "another instance's port");
    assert.equal(lookup('inbound|7070||'), undefined);
  }
  current = snap([cla('ratings.default.svc.cluster.local', '10.0.0.5', 9080)]);
  assert.equal(lookup('inbound|9080||'), 'ratings.default.svc.cluster.local', 'a new snapshot');
});

test("inbound access-log lines name the listener's inbound cluster, one per listener", () => {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk.toString());
      callback();
    },
  });
  const telemetry = createProxyTelemetry(self, stream);
  const base = inboundRecord({});
  for (const listener of ['inbound|9080', 'inbound|9090', 'inbound|9080', 'inbound|"x'])
    telemetry.inbound({ ...base, listener });
  telemetry.accessLog?.flush();
  const clusters = written
    .join('')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { upstream_cluster: string }).upstream_cluster);
  assert.deepEqual(clusters, [
    'inbound|9080||',
    'inbound|9090||',
    'inbound|9080||',
    'inbound|"x||',
  ]);
});
