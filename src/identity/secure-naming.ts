/**
 * Secure naming: after a TLS handshake has verified the peer's chain against
 * the trust bundle, check that the peer's SPIFFE ID is one of the identities
 * allowed (Istio: the client checks the server runs as a service account
 * allowed to serve that service). Fails closed with the reason.
 */
import type { PeerCertificate } from 'node:tls';
import { PalisadeError } from '../errors/index.js';
import { parseSpiffeId } from './spiffe-id.js';

/** The SPIFFE IDs in a node:tls peer certificate's subjectaltname (`URI:spiffe://…`). */
export function peerSpiffeIds(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return [];
  return san
    .split(/,\s*/)
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
}

/**
 * Returns the peer's SPIFFE ID when it presents exactly one valid ID that is
 * in `allowedIds`; otherwise throws PAL_ERR_PEER_IDENTITY_MISMATCH.
 */
export function verifyPeerIdentity(
  cert: Pick<PeerCertificate, 'subjectaltname'> | undefined,
  allowedIds: readonly string[],
): string {
  const ids = peerSpiffeIds(cert);
  if (ids.length !== 1) {
    throw new PalisadeError(
      'PAL_ERR_PEER_IDENTITY_MISMATCH',
      `peer must present exactly one SPIFFE ID, found ${ids.length}`,
    );
  }
  const id = ids[0] ?? '';
  if (!parseSpiffeId(id).ok)
    throw new PalisadeError(
      'PAL_ERR_PEER_IDENTITY_MISMATCH',
      `peer URI SAN ${JSON.stringify(id)} is not a valid SPIFFE ID`,
    );
  if (!allowedIds.includes(id)) {
    throw new PalisadeError(
      'PAL_ERR_PEER_IDENTITY_MISMATCH',
      `peer identity ${id} is not allowed here (expected ${allowedIds.length === 0 ? 'none' : allowedIds.join(' or ')})`,
    );
  }
  return id;
}

/**
 * A `checkServerIdentity` for tls.connect that enforces secure naming instead
 * of host names: returns an Error (refusing the connection) unless the
 * server's SPIFFE ID is allowed.
 */
export function spiffeServerIdentityCheck(
  allowedIds: readonly string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    try {
      verifyPeerIdentity(cert, allowedIds);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };
}
