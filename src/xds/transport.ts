/**
 * How a client reaches the control plane's gRPC port (xDS and the debug API):
 * TLS verified against the mesh trust bundle, and the server must present the
 * control plane's SPIFFE ID (secure naming, as a proxy checks a peer), or —
 * only when asked for explicitly — plaintext.
 */
import * as grpc from '@grpc/grpc-js';
import { controlPlaneSpiffeId, spiffeServerIdentityCheck } from '../identity/workload.js';

/** TLS to the control plane (roots + trust domain), or plaintext on an explicit flag. */
export type XdsTransport = { readonly rootPem: string; readonly trustDomain: string } | 'plaintext';

/** Channel credentials for `transport`. */
export function xdsChannelCredentials(transport: XdsTransport): grpc.ChannelCredentials {
  if (transport === 'plaintext') return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(Buffer.from(transport.rootPem), null, null, {
    // The SPIFFE ID, not the host name: the address may be an IP or a name the cert does not carry.
    checkServerIdentity: spiffeServerIdentityCheck([controlPlaneSpiffeId(transport.trustDomain)]),
  });
}

/**
 * Channel options for the control plane's port. The SNI is a name, never the
 * dialled IP (RFC 6066 forbids IP literals in server_name, and Node warns,
 * DEP0123): `localhost`, which the control plane's certificate also names. The
 * server's identity is checked by its SPIFFE ID, not by this name.
 */
export const XDS_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': 'localhost',
  'grpc.default_authority': 'localhost',
};
