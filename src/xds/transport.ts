/**
 * How a client reaches the control plane's gRPC port (xDS and the debug API):
 * TLS verified against the mesh trust bundle, and the server must present the
 * control plane's SPIFFE ID (secure naming, as a proxy checks a peer), or —
 * only when asked for explicitly — plaintext.
 */
import type { PeerCertificate } from 'node:tls';
import { controlPlaneSpiffeId, spiffeServerIdentityCheck } from '../identity/workload.js';

/** TLS to the control plane (roots + trust domain), or plaintext on an explicit flag. */
export type XdsTransport = { readonly rootPem: string; readonly trustDomain: string } | 'plaintext';

/**
 * The SNI and `:authority` a client sends: a name, never the dialled IP (RFC 6066
 * forbids IP literals in server_name, and Node warns, DEP0123). The control plane's
 * certificate also names `localhost`; the server's identity is checked by its SPIFFE
 * ID, not by this name.
 */
export const XDS_SERVER_NAME = 'localhost';

/** The TLS settings of `transport` for a node:http2 client; undefined for plaintext. */
export function xdsTlsOptions(transport: XdsTransport):
  | {
      ca: string;
      checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
    }
  | undefined {
  if (transport === 'plaintext') return undefined;
  return {
    ca: transport.rootPem,
    // The SPIFFE ID, not the host name: the address may be an IP or a name the cert does not carry.
    checkServerIdentity: spiffeServerIdentityCheck([controlPlaneSpiffeId(transport.trustDomain)]),
  };
}
