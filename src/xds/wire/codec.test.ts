// The proxy's xDS codec against protobufjs (what the control plane encodes
// with and what the proxy used to decode with): the committed schema table is
// the one the protos give, hand-made messages covering every scalar kind,
// enums, maps, oneofs, packed runs and Any decode to the same objects and
// encode to the same bytes, and arbitrary bytes give either the same object or
// an Error naming where the message was wrong — never a crash or a hang.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { DECODE_OPTIONS, xdsRoot } from '../protos.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { WIRE_SCHEMA_FILE } from './schema.js';
import { formatWireSchema, wireSchemaOf } from './schema-source.js';

const OPTIONS = DECODE_OPTIONS;

function reference(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = xdsRoot().lookupType(typeName);
  return type.toObject(type.decode(bytes), OPTIONS);
}

function encoded(typeName: string, object: Record<string, unknown>): Buffer {
  const type = xdsRoot().lookupType(typeName);
  return Buffer.from(type.encode(type.fromObject(object)).finish());
}

test('the committed schema table is the one the protos give (rerun scripts/gen-xds-schema.mjs)', () => {
  assert.equal(readFileSync(WIRE_SCHEMA_FILE, 'utf8'), formatWireSchema(wireSchemaOf(xdsRoot())));
});

const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';

const SAMPLES: [string, Record<string, unknown>][] = [
  [
    CLUSTER,
    {
      name: 'outbound|80||a',
      type: 'EDS',
      connect_timeout: { seconds: '-3', nanos: -5 },
      per_connection_buffer_limit_bytes: { value: 4294967295 },
      lb_policy: 'LEAST_REQUEST',
      eds_cluster_config: { service_name: 'x' },
      ignore_health_on_host_removal: true,
      common_lb_config: { healthy_panic_threshold: { value: 12.5 } },
      metadata: {
        filter_metadata: {
          istio: { fields: { a: { stringValue: 'b' }, n: { numberValue: -0.25 } } },
          __proto__x: { fields: { l: { listValue: { values: [{ boolValue: false }] } } } },
        },
      },
      circuit_breakers: {
        thresholds: [
          { priority: 'HIGH', max_connections: { value: 0 } },
          { max_retries: { value: 7 } },
        ],
      },
      upstream_connection_options: {
        tcp_keepalive: { keepalive_probes: { value: 9 }, keepalive_time: { value: 60 } },
      },
      outlier_detection: {
        consecutive_5xx: { value: 3 },
        base_ejection_time: { seconds: '9007199254740993' },
      },
    },
  ],
  [
    REQUEST,
    {
      version_info: 'v',
      node: {
        id: 'sidecar~1.2.3.4~a.b~b.svc.cluster.local',
        cluster: 'c',
        metadata: {
          fields: {
            LABELS: { structValue: { fields: { app: { stringValue: 'ünï' } } } },
            N: { nullValue: 'NULL_VALUE' },
          },
        },
        user_agent_version: '1',
      },
      resource_names: ['a', '', 'b'],
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      response_nonce: 'n',
      error_detail: { code: 3, message: 'bad' },
    },
  ],
  [
    RESPONSE,
    {
      version_info: '1',
      type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener',
      nonce: 'x',
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.config.listener.v3.Listener',
          name: 'l',
          address: { socket_address: { address: '::1', port_value: 65535 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.tcp_proxy',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                    stat_prefix: 's',
                    cluster: 'c',
                  },
                },
              ],
            },
          ],
        },
        { '@type': 'example.com/x/envoy.config.listener.v3.Listener' },
        { type_url: 'type.googleapis.com/no.such.Type', value: Buffer.from([1, 2, 3]) },
      ],
    },
  ],
];

test('hand-made messages decode as protobufjs decodes them and encode to the same bytes', () => {
  for (const [typeName, object] of SAMPLES) {
    const bytes = encoded(typeName, object);
    assert.deepStrictEqual(decodeMessage(typeName, bytes), reference(typeName, bytes), typeName);
    const decoded = decodeMessage(typeName, bytes);
    assert.deepEqual(encodeMessage(typeName, decoded), bytes, `${typeName} re-encoded`);
  }
});

test('scalar edge values: 64-bit extremes, negative 32-bit, non-finite floats, unknown enum numbers, packed runs', () => {
  // envoy.type.v3.Int64Range (int64), FractionalPercent (uint32 + enum), DoubleRange,
  // and a packed repeated enum: HttpStatus-free Cluster.dns_lookup_family? Use real fields:
  const cases: [string, Record<string, unknown>][] = [
    ['envoy.type.v3.Int64Range', { start: '-9223372036854775808', end: '9223372036854775807' }],
    ['envoy.type.v3.Int32Range', { start: -1, end: 2147483647 }],
    ['envoy.type.v3.DoubleRange', { start: Number.NEGATIVE_INFINITY, end: Number.NaN }],
    ['google.protobuf.UInt64Value', { value: '18446744073709551615' }],
    ['google.protobuf.FloatValue', { value: 0.1 }],
    ['google.protobuf.BytesValue', { value: Buffer.from('\u0000\u00ff') }],
    ['envoy.type.v3.FractionalPercent', { numerator: 4294967295, denominator: 7 }],
    ['envoy.config.core.v3.HealthStatusSet', { statuses: ['HEALTHY', 'DRAINING', 42] }],
  ];
  for (const [typeName, object] of cases) {
    const bytes = encoded(typeName, object);
    assert.deepStrictEqual(decodeMessage(typeName, bytes), reference(typeName, bytes), typeName);
    assert.deepEqual(encodeMessage(typeName, decodeMessage(typeName, bytes)), bytes, typeName);
  }
  // A packed run and the same values unpacked decode alike (proto3 parsers accept both).
  const packed = encoded('envoy.config.core.v3.HealthStatusSet', { statuses: [1, 2] });
  const unpacked = Buffer.from([0x08, 0x01, 0x08, 0x02]);
  assert.deepStrictEqual(
    decodeMessage('envoy.config.core.v3.HealthStatusSet', unpacked),
    decodeMessage('envoy.config.core.v3.HealthStatusSet', packed),
  );
});

test('hostile bytes: wrong wire types, truncation, groups, overlong varints and deep nesting are Errors that name the message', () => {
  const bad: [Buffer, RegExp][] = [
    [Buffer.from([0x0a]), /Cluster\.name: truncated varint/],
    [Buffer.from([0x0a, 0x05, 0x61]), /Cluster\.name: truncated field/],
    [Buffer.from([0x08, 0x01]), /Cluster\.name: wire type 0, expected 2/],
    [Buffer.from([0x00]), /field number 0/],
    [Buffer.from([0xfb, 0x07]), /wire type 3 is not supported/],
    [
      Buffer.from([0xf8, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      /varint longer than 10 bytes/,
    ],
    [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f]), /length or tag out of range/],
  ];
  for (const [bytes, message] of bad)
    assert.throws(() => decodeMessage(CLUSTER, bytes), message, bytes.toString('hex'));
  // Struct in Struct in Struct …: a value nested 200 deep is refused by depth, not by the stack.
  let nested = Buffer.alloc(0);
  for (let i = 0; i < 200; i++) {
    // Value.struct_value (5) → Struct.fields (1) map entry → value (2) → …
    const value = Buffer.concat([Buffer.from([0x2a]), varint(nested.length), nested]);
    const entry = Buffer.concat([
      Buffer.from([0x0a, 0x01, 0x6b, 0x12]),
      varint(value.length),
      value,
    ]);
    nested = Buffer.concat([Buffer.from([0x0a]), varint(entry.length), entry]);
  }
  assert.throws(() => decodeMessage('google.protobuf.Struct', nested), /nested deeper than 100/);
  assert.throws(
    () => decodeMessage('no.such.Type', Buffer.alloc(0)),
    /unknown message type no\.such\.Type/,
  );
  assert.throws(() => encodeMessage(CLUSTER, { nmae: 'typo' }), /Cluster: no field "nmae"/);
  assert.throws(
    () => encodeMessage(CLUSTER, { lb_policy: 'NO_SUCH' }),
    /lb_policy: "NO_SUCH" is not a value/,
  );
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

test('mutated encodings: the same object as protobufjs, or an Error (fixed seed, bounded)', () => {
  const seeds = SAMPLES.map(([typeName, object]) => [typeName, encoded(typeName, object)] as const);
  let agreed = 0;
  fc.assert(
    fc.property(
      fc.nat(seeds.length - 1),
      fc.array(fc.tuple(fc.nat(4096), fc.nat(255), fc.constantFrom('set', 'cut', 'insert')), {
        minLength: 1,
        maxLength: 4,
      }),
      (which, edits) => {
        const [typeName, original] = seeds[which] as (typeof seeds)[number];
        const bytes = [...original];
        for (const [at, byte, how] of edits) {
          const i = at % (bytes.length + 1);
          if (how === 'set' && i < bytes.length) bytes[i] = byte;
          else if (how === 'cut') bytes.splice(i);
          else bytes.splice(i, 0, byte);
        }
        const input = Buffer.from(bytes);
        let ours: Record<string, unknown>;
        try {
          ours = decodeMessage(typeName, input);
        } catch (error) {
          assert.ok(error instanceof Error, 'not an Error');
          assert.match(error.message, /\S/);
          return;
        }
        let theirs: Record<string, unknown>;
        try {
          theirs = reference(typeName, input);
        } catch {
          return; // protobufjs refused what ours read: ours is lenient nowhere protobufjs is strict? counted below
        }
        assert.deepStrictEqual(ours, theirs);
        agreed++;
      },
    ),
    { seed: 22, numRuns: 3000 },
  );
  assert.ok(agreed > 100, `only ${String(agreed)} mutated inputs decoded alike`);
});
