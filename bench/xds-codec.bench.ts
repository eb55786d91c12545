/**
 * The proxy's xDS codec (src/xds/wire: a compact table of the protos, no
 * protobufjs) beside protobufjs, which the control plane encodes with and the
 * proxy used to decode with, in the same run: decoding a CDS response with
 * 2,000 Istio-shaped clusters and an RDS response with 500 virtual hosts, and
 * encoding the DiscoveryRequest a proxy sends. Both decoders must give the same
 * object. Median of 7 rounds.
 *
 * Run: node --expose-gc dist/bench/xds-codec.bench.js
 */
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, objectToStruct, TYPE_URLS } from '../src/xds/index.js';
import { DECODE_OPTIONS, xdsRoot } from '../src/xds/protos.js';

const OPTIONS = DECODE_OPTIONS;
const RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';
const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const root = xdsRoot();
const responseType = root.lookupType(RESPONSE);
const requestType = root.lookupType(REQUEST);

function cluster(i: number): Record<string, unknown> {
  const host = `svc${String(i)}.default.svc.cluster.local`;
  return {
    '@type': TYPE_URLS.cluster,
    name: `outbound|9080||${host}`,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, service_name: `outbound|9080||${host}` },
    connect_timeout: { seconds: '10', nanos: 0 },
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: {
      thresholds: [{ max_connections: { value: 4294967295 }, max_retries: { value: 4294967295 } }],
    },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: `outbound_.9080_._.${host}`,
        common_tls_context: {
          alpn_protocols: ['istio-peer-exchange', 'istio'],
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        },
      },
    },
    metadata: {
      filter_metadata: {
        istio: objectToStruct({
          services: [{ host, name: `svc${String(i)}`, namespace: 'default' }],
        }),
      },
    },
  };
}

function routes(): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.route,
    name: '9080',
    virtual_hosts: Array.from({ length: 500 }, (_, i) => {
      const host = `svc${String(i)}.default.svc.cluster.local`;
      return {
        name: `${host}:9080`,
        domains: [host, `svc${String(i)}`, `svc${String(i)}.default`],
        routes: [
          {
            match: {
              prefix: '/',
              headers: [{ name: 'end-user', string_match: { exact: 'jason' } }],
            },
            route: {
              cluster: `outbound|9080|v2|${host}`,
              timeout: { seconds: '3', nanos: 0 },
              retry_policy: { retry_on: '5xx,connect-failure', num_retries: { value: 2 } },
            },
          },
          { match: { prefix: '/' }, route: { cluster: `outbound|9080||${host}` } },
        ],
      };
    }),
  };
}

function encodeResponse(resources: Record<string, unknown>[], typeUrl: string): Buffer {
  const message = responseType.fromObject({
    version_info: '1',
    type_url: typeUrl,
    nonce: '1',
    resources,
  });
  return Buffer.from(responseType.encode(message).finish());
}

const cds = encodeResponse(
  Array.from({ length: 2000 }, (_, i) => cluster(i)),
  TYPE_URLS.cluster,
);
const rds = encodeResponse([routes()], TYPE_URLS.route);
const request = {
  version_info: '7',
  node: {
    id: 'sidecar~127.10.1.1~productpage-v1-0.default~default.svc.cluster.local',
    cluster: 'productpage-v1.default',
    metadata: objectToStruct({
      NAMESPACE: 'default',
      LABELS: { app: 'productpage', version: 'v1' },
    }),
  },
  resource_names: Array.from({ length: 50 }, (_, i) => `outbound|9080||svc${String(i)}`),
  type_url: TYPE_URLS.endpoint,
  response_nonce: '12',
};

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function time(fn: () => unknown, repeat: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < repeat; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1e6 / repeat;
}

const rows: [string, () => unknown, () => unknown, number][] = [
  [
    `decode CDS, 2,000 clusters (${String(Math.round(cds.length / 1024))} KB)`,
    () => decodeMessage(RESPONSE, cds),
    () => responseType.toObject(responseType.decode(cds), OPTIONS),
    3,
  ],
  [
    `decode RDS, 500 virtual hosts (${String(Math.round(rds.length / 1024))} KB)`,
    () => decodeMessage(RESPONSE, rds),
    () => responseType.toObject(responseType.decode(rds), OPTIONS),
    3,
  ],
  [
    'encode a DiscoveryRequest (ACK)',
    () => encodeMessage(REQUEST, request),
    () => requestType.encode(requestType.fromObject(request)).finish(),
    2000,
  ],
];

// Same answers first.
assert.deepStrictEqual(
  decodeMessage(RESPONSE, cds),
  responseType.toObject(responseType.decode(cds), OPTIONS),
);
assert.deepStrictEqual(
  decodeMessage(RESPONSE, rds),
  responseType.toObject(responseType.decode(rds), OPTIONS),
);
assert.deepEqual(
  encodeMessage(REQUEST, request),
  Buffer.from(requestType.encode(requestType.fromObject(request)).finish()),
);

console.log('xDS codec: Palisade proxy (src/xds/wire) vs protobufjs, median of 7 rounds');
console.log(
  'work'.padEnd(44),
  'palisade ms'.padStart(12),
  'protobufjs ms'.padStart(14),
  'ratio'.padStart(7),
);
for (const [name, ours, theirs, repeat] of rows) {
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < 7; round++) {
    globalThis.gc?.();
    a.push(time(ours, repeat));
    globalThis.gc?.();
    b.push(time(theirs, repeat));
  }
  const ma = median(a);
  const mb = median(b);
  console.log(
    name.padEnd(44),
    ma.toFixed(3).padStart(12),
    mb.toFixed(3).padStart(14),
    `${(ma / mb).toFixed(2)}×`.padStart(7),
  );
}
