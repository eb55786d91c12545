/**
 * grpc-js channel settings for the control plane's gRPC port, for clients
 * that use grpc-js (the CLI's debug calls, tests, benches). The proxy's own
 * ADS stream does not load grpc-js (./wire/grpc-stream.ts, ./transport.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { controlPlaneSpiffeId, spiffeServerIdentityCheck } from '../identity/workload.js';
import { XDS_SERVER_NAME, type XdsTransport } from './transport.js';

/** Channel credentials for `transport`. */
export function xdsChannelCredentials(transport: XdsTransport): grpc.ChannelCredentials {
  if (transport === 'plaintext') return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(Buffer.from(transport.rootPem), null, null, {
    // The SPIFFE ID, not the host name: the address may be an IP or a name the cert does not carry.
    checkServerIdentity: spiffeServerIdentityCheck([controlPlaneSpiffeId(transport.trustDomain)]),
  });
}

/** Channel options for the control plane's port: the SNI and authority are XDS_SERVER_NAME. */
export const XDS_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': XDS_SERVER_NAME,
  'grpc.default_authority': XDS_SERVER_NAME,
};
