/**
 * grpc-js channel settings for the control plane's gRPC port, for clients
 * that use grpc-js (the CLI's debug calls, tests, benches). The proxy's own
 * ADS stream does not load grpc-js (./wire/grpc-stream.ts, ./transport.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { XDS_SERVER_NAME, xdsTlsOptions, type XdsTransport } from './transport.js';

/** Channel credentials for `transport`: the same roots and SPIFFE ID check as the proxy's stream. */
export function xdsChannelCredentials(transport: XdsTransport): grpc.ChannelCredentials {
  const tls = xdsTlsOptions(transport);
  if (tls === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(Buffer.from(tls.ca), null, null, {
    checkServerIdentity: tls.checkServerIdentity,
  });
}

/** Channel options for the control plane's port: the SNI and authority are XDS_SERVER_NAME. */
export const XDS_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': XDS_SERVER_NAME,
  'grpc.default_authority': XDS_SERVER_NAME,
};
