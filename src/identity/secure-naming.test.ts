// Secure naming (Istio: the client checks that the server runs as a service
// account allowed to serve the service): the peer's SPIFFE ID must equal an
// allowed one exactly — not share a prefix, not differ in case, not be one of
// several SANs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spiffeServerIdentityCheck, verifyPeerIdentity } from './secure-naming.js';

const WEB = 'spiffe://cluster.local/ns/foo/sa/web';
const san = (...ids: string[]) => ({ subjectaltname: ids.map((id) => `URI:${id}`).join(', ') });

test('the allowed identity passes', () => {
  assert.equal(verifyPeerIdentity(san(WEB), [WEB]), WEB);
  assert.equal(verifyPeerIdentity(san(WEB), ['spiffe://cluster.local/ns/foo/sa/x', WEB]), WEB);
});

test('a SAN that merely starts with, ends with or contains the allowed one is refused', () => {
  for (const id of [
    `${WEB}-evil`,
    `${WEB}/x`,
    'spiffe://cluster.local/ns/foo/sa/we',
    'spiffe://evil.local/ns/foo/sa/web',
    'spiffe://cluster.local/ns/foo/sa/WEB',
    'spiffe://cluster.local/ns/foo2/sa/web',
  ])
    assert.throws(
      () => verifyPeerIdentity(san(id), [WEB]),
      /PAL_ERR_PEER_IDENTITY_MISMATCH|not allowed|not a valid SPIFFE ID/,
      id,
    );
});

test('no SAN, two SANs, or no allowed identity: refused', () => {
  assert.throws(() => verifyPeerIdentity(san(), [WEB]), /exactly one SPIFFE ID/);
  assert.throws(
    () => verifyPeerIdentity(san(WEB, 'spiffe://cluster.local/ns/foo/sa/admin'), [WEB]),
    /exactly one SPIFFE ID, found 2/,
  );
  assert.throws(() => verifyPeerIdentity(san(WEB), []), /not allowed/);
  // The tls.connect hook returns the error (refusing the connection) instead of throwing.
  const check = spiffeServerIdentityCheck([WEB]);
  assert.equal(check('host', san(WEB) as never), undefined);
  assert.ok(check('host', san(`${WEB}-evil`) as never) instanceof Error);
});
