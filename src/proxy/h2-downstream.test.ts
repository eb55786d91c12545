// gRPC rules shared by the listeners: grpc-message percent-encoding (with a
// property test that decoding gives the text back), Envoy's HTTP → gRPC status
// mapping for local replies, trailers-only status extraction; and the proxy's
// validation of upstream HttpProtocolOptions (HTTP/2 accepted, tuning NACKed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TYPE_URLS, EXTENSION_TYPE_URLS } from '../xds/index.js';
import {
  grpcMessage,
  grpcStatusForHttp,
  protocolOf,
  takeTrailersOnlyStatus,
  type AnyRequest,
} from './h2-downstream.js';
import { HTTP_PROTOCOL_OPTIONS_KEY, upstreamHttp2Mode, usesHttp2 } from './h2-upstream.js';

const upstreamHttp2 = (cluster: Record<string, unknown>, downstreamH2: boolean): boolean =>
  usesHttp2(upstreamHttp2Mode(cluster), downstreamH2);
import { validateResource } from './config/index.js';

test('grpc-message keeps printable ASCII and percent-encodes the rest', () => {
  assert.equal(grpcMessage('RBAC: access denied'), 'RBAC: access denied');
  assert.equal(grpcMessage('100% sure\n'), '100%25 sure%0A');
  assert.equal(grpcMessage('café'), 'caf%C3%A9');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (text) => {
      const encoded = grpcMessage(text);
      assert.match(encoded, /^[\x20-\x7e]*$/);
      assert.equal(decodeURIComponent(encoded.replace(/%(?![0-9A-F]{2})/g, '%25')), text);
    }),
  );
});

test("local replies map HTTP status to gRPC status as Envoy's httpToGrpcStatus", () => {
  const expected: [number, number][] = [
    [400, 13],
    [401, 16],
    [403, 7],
    [404, 12],
    [429, 14],
    [502, 14],
    [503, 14],
    [504, 14],
    [500, 2],
  ];
  for (const [http, grpc] of expected) assert.equal(grpcStatusForHttp(http), grpc, String(http));
});

test('a trailers-only answer gives its status fields up as trailers', () => {
  const headers: Record<string, string | undefined> = {
    'content-type': 'application/grpc',
    'grpc-status': '14',
    'grpc-message': 'down',
  };
  assert.deepEqual(takeTrailersOnlyStatus(headers), {
    'grpc-status': '14',
    'grpc-message': 'down',
  });
  assert.deepEqual(headers, { 'content-type': 'application/grpc' });
  assert.equal(takeTrailersOnlyStatus({ 'content-type': 'application/grpc' }), undefined);
});

const cluster = (options: object): Record<string, unknown> => ({
  '@type': TYPE_URLS.cluster,
  name: 'outbound|80||echo',
  type: 'EDS',
  typed_extension_protocol_options: {
    [HTTP_PROTOCOL_OPTIONS_KEY]: { '@type': EXTENSION_TYPE_URLS.httpProtocolOptions, ...options },
  },
});

test('upstream HttpProtocolOptions: HTTP/2 accepted, unimplemented tuning NACKed', () => {
  const h2 = cluster({ explicit_http_config: { http2_protocol_options: {} } });
  assert.deepEqual(validateResource('cluster', h2), []);
  assert.equal(upstreamHttp2(h2, false), true);
  const downstream = cluster({
    use_downstream_protocol_config: { http2_protocol_options: {} },
  });
  assert.equal(upstreamHttp2(downstream, false), false);
  assert.equal(upstreamHttp2(downstream, true), true);
  const tuned = cluster({
    explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 10 } } },
  });
  assert.match(
    validateResource('cluster', tuned).join('\n'),
    /http2_protocol_options: unsupported field max_concurrent_streams/,
  );
  const common = cluster({ common_http_protocol_options: { idle_timeout: { seconds: '1' } } });
  assert.match(
    validateResource('cluster', common).join('\n'),
    /unsupported field common_http_protocol_options/,
  );
});

test('%PROTOCOL% as Envoy writes it: HTTP/1.1, HTTP/1.0, HTTP/2', () => {
  const http1 = (httpVersion: string): AnyRequest => ({ httpVersion }) as unknown as AnyRequest;
  assert.equal(protocolOf(http1('1.1')), 'HTTP/1.1');
  assert.equal(protocolOf(http1('1.0')), 'HTTP/1.0');
  assert.equal(protocolOf({ stream: {}, httpVersion: '2.0' } as unknown as AnyRequest), 'HTTP/2');
});
