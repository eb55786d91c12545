/**
 * Envoy xDS v3 protos, loaded once with protobufjs from proto/ (copied
 * from the pinned @grpc/grpc-js-xds by scripts/copy-protos.mjs), for the
 * control plane's ADS server and for tests. The proxy does not load them: it
 * reads the compact table made from them (./wire, proto/xds-schema.json). Messages are plain objects
 * with proto field names (keepCase); `google.protobuf.Any` values are written
 * `{ '@type': typeUrl, ...fields }` and encode as long as their type is loaded.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const descriptorJson = createRequire(import.meta.url)(
  'protobufjs/google/protobuf/descriptor.json',
) as {
  nested: {
    google: { nested: { protobuf: { nested: Record<string, protobuf.AnyNestedObject> } } };
  };
};

/** The repository's proto/ directory. */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

export { EXTENSION_TYPE_URLS, TYPE_URLS, type ResourceKind } from './type-urls.js';

const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/udp/dns_filter/v3/dns_filter.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/service/status/v3/csds.proto',
];

/** How decoded messages look: proto field names, 64-bit ints and enums as strings, Any as JSON. */
export const DECODE_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  json: true,
};

let root: protobuf.Root | undefined;

/**
 * The xDS protos as one protobufjs Root (parsed once per process). Only the
 * reflection objects are kept: proto-loader's package definition (a
 * descriptor object per message type) cost ~13 MB of every proxy's RSS and
 * nothing read it.
 */
export function xdsRoot(): protobuf.Root {
  if (root === undefined) {
    // google/protobuf/descriptor.proto (imported by the validate and udpa annotations) is not
    // among protobufjs's built-in common files; its JSON form ships with protobufjs.
    protobuf.common('descriptor', descriptorJson.nested.google.nested.protobuf.nested);
    const loaded = new protobuf.Root();
    loaded.resolvePath = (_origin, target) =>
      isAbsolute(target) || !existsSync(join(PROTO_DIR, target)) ? target : join(PROTO_DIR, target);
    loaded.loadSync(PROTO_FILES, { keepCase: true });
    loaded.resolveAll();
    root = loaded;
  }
  return root;
}

let service: grpc.ServiceDefinition | undefined;

/** The ADS service definition, for `server.addService` and client constructors. */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  if (service === undefined) {
    const name = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
    const method = xdsRoot().lookupService(name).methods['StreamAggregatedResources'];
    if (method?.resolvedRequestType == null || method.resolvedResponseType == null)
      throw new Error('ADS service missing from the loaded protos');
    const request = method.resolvedRequestType;
    const response = method.resolvedResponseType;
    service = {
      StreamAggregatedResources: {
        path: `/${name}/StreamAggregatedResources`,
        requestStream: true,
        responseStream: true,
        originalName: 'streamAggregatedResources',
        requestSerialize: serializer(request),
        requestDeserialize: deserializer(request),
        responseSerialize: serializer(response),
        responseDeserialize: deserializer(response),
      },
    };
  }
  return service;
}

/**
 * The ADS definition with a response serializer that passes pre-encoded Buffers through
 * (the control plane's cached responses; tests writing raw bytes) and encodes anything else.
 */
export function adsPassthroughDefinition(): grpc.ServiceDefinition {
  const base = adsServiceDefinition();
  const method = base['StreamAggregatedResources'];
  if (method === undefined) throw new Error('ADS StreamAggregatedResources missing');
  const serialize = method.responseSerialize as (value: object) => Buffer;
  return {
    ...base,
    StreamAggregatedResources: {
      ...method,
      responseSerialize: (value: object) => (Buffer.isBuffer(value) ? value : serialize(value)),
    },
  };
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`cannot encode an array as ${type.name}`);
    const bytes = type.encode(type.fromObject(value)).finish();
    // protobufjs writes into a Buffer under Node: hand it over without a copy.
    return Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => Record<string, unknown> {
  return (bytes) => type.toObject(type.decode(bytes), DECODE_OPTIONS);
}

/** A client constructor for ADS (tests, and clients that are not the proxy). */
export function adsClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');
}
