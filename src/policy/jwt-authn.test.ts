// Istio's RequestAuthentication table: valid → 200, invalid → 401, missing →
// no principal (403 only when an AuthorizationPolicy requires one), and a
// JWKS that cannot be fetched fails token-carrying requests only.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parseManifests } from '../api/index.js';
import { createWorkloadAuthorizer, loadSecurityPolicies, type InboundRequest } from './index.js';

const ISS = 'https://issuer.example';
const wl = { namespace: 'foo', labels: { app: 'httpbin' } };

async function keys(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const sign = (
    claims: Record<string, unknown>,
    opts: { iss?: string; aud?: string; exp?: number; nbf?: number } = {},
  ) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(opts.iss ?? ISS)
      .setSubject('alice')
      .setAudience(opts.aud ?? 'bookinfo')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 3600);
    return (opts.nbf === undefined ? jwt : jwt.setNotBefore(opts.nbf)).sign(privateKey);
  };
  return { jwks: JSON.stringify({ keys: [jwk] }), sign };
}

const ra = (rule: string): string =>
  `---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n  jwtRules:\n  - ${rule}\n`;
const requireToken = `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: require-jwt, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n  rules:\n  - from: [{source: {requestPrincipals: ["*"]}}]\n`;
const req = (token?: string, over: Partial<InboundRequest> = {}): InboundRequest => ({
  principal: 'spiffe://cluster.local/ns/istio-system/sa/ingress',
  destinationPort: 8000,
  protocol: 'http',
  method: 'GET',
  path: '/headers',
  headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  ...over,
});

test('inline JWKS: valid 200, expired/wrong aud/wrong issuer/forged 401, missing 200 or 403 with requestPrincipals', async () => {
  const k = await keys('k1');
  const other = await keys('k1');
  const yaml = ra(
    `{issuer: "${ISS}", audiences: [bookinfo], jwks: '${k.jwks}', outputPayloadToHeader: x-jwt-payload, outputClaimToHeaders: [{header: x-sub, claim: sub}]}`,
  );
  const onlyAuthn = createWorkloadAuthorizer(
    loadSecurityPolicies(parseManifests(yaml, 'ra.yaml')),
    wl,
  );
  const withAuthz = createWorkloadAuthorizer(
    loadSecurityPolicies(parseManifests(yaml + requireToken, 'ra.yaml')),
    wl,
  );

  const ok = await withAuthz.decide(req(await k.sign({ groups: ['group1'] })));
  assert.deepEqual([ok.status, ok.policy], [200, 'foo/require-jwt']);
  const set = ok.headersToSet ?? {};
  assert.equal(set['x-sub'], 'alice');
  assert.ok(set['x-jwt-payload'] !== undefined);
  assert.deepEqual(ok.headersToRemove, ['authorization']); // forwardOriginalToken defaults to false

  assert.equal(
    (await onlyAuthn.decide(req(await k.sign({}, { exp: Math.floor(Date.now() / 1000) - 3600 }))))
      .status,
    401,
  );
  assert.equal((await onlyAuthn.decide(req(await k.sign({}, { aud: 'other' })))).status, 401);
  assert.equal(
    (await onlyAuthn.decide(req(await k.sign({}, { iss: 'https://evil.example' })))).status,
    401,
  );
  assert.equal((await onlyAuthn.decide(req(await other.sign({})))).status, 401);
  assert.equal((await onlyAuthn.decide(req('not-a-jwt'))).status, 401);
  assert.equal(
    (await onlyAuthn.decide(req(undefined, { headers: { authorization: 'Basic abc' } }))).status,
    401,
  ); // header without the prefix
  assert.equal((await onlyAuthn.decide(req())).status, 200); // missing token: no principal, allowed
  // A CORS preflight skips JWT authentication even with a bad token.
  const preflight = req('not-a-jwt', { method: 'OPTIONS' });
  assert.equal(
    (
      await onlyAuthn.decide({
        ...preflight,
        headers: {
          ...preflight.headers,
          origin: 'https://app',
          'access-control-request-method': 'GET',
        },
      })
    ).status,
    200,
  );
  const missing = await withAuthz.decide(req());
  assert.deepEqual([missing.status, missing.reason.includes('RBAC: access denied')], [403, true]);
  // access_token query parameter is a default location.
  assert.equal(
    (await withAuthz.decide(req(undefined, { path: `/headers?access_token=${await k.sign({})}` })))
      .status,
    200,
  );
});

test('a token in the header and another in ?access_token=: every one must be valid (Envoy jwt_authn)', async () => {
  const k = await keys('k1');
  const forger = await keys('k1');
  const authorizer = createWorkloadAuthorizer(
    loadSecurityPolicies(
      parseManifests(ra(`{issuer: "${ISS}", jwks: '${k.jwks}'}`) + requireToken, 'ra.yaml'),
    ),
    wl,
  );
  const good = await k.sign({});
  const forged = await forger.sign({});
  // A valid header token must not vouch for a forged query token, nor the other way round.
  const both = (header: string, query: string): InboundRequest =>
    req(header, { path: `/headers?access_token=${query}` });
  assert.equal((await authorizer.decide(both(good, forged))).status, 401);
  assert.equal((await authorizer.decide(both(forged, good))).status, 401);
  assert.equal((await authorizer.decide(both(good, 'not-a-jwt'))).status, 401);
  assert.equal((await authorizer.decide(both(good, good))).status, 200);
  assert.equal((await authorizer.decide(both(good, await k.sign({ x: 1 })))).status, 200);
});

test('claims in policies: request.auth.claims[groups] (list) and nested claims', async () => {
  const k = await keys('k2');
  const yaml =
    ra(`{issuer: "${ISS}", jwks: '${k.jwks}'}`) +
    `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: group1, namespace: foo}\nspec:\n  rules:\n  - from: [{source: {requestPrincipals: ["${ISS}/alice"]}}]\n    when:\n    - {key: "request.auth.claims[groups]", values: ["group1"]}\n    - {key: "request.auth.claims[org][team]", values: ["mesh"]}\n`;
  const a = createWorkloadAuthorizer(loadSecurityPolicies(parseManifests(yaml, 'c.yaml')), wl);
  assert.equal(
    (await a.decide(req(await k.sign({ groups: ['group2', 'group1'], org: { team: 'mesh' } }))))
      .status,
    200,
  );
  assert.equal(
    (await a.decide(req(await k.sign({ groups: ['group2'], org: { team: 'mesh' } })))).status,
    403,
  );
  assert.equal(
    (await a.decide(req(await k.sign({ groups: 'group1', org: { team: 'other' } })))).status,
    403,
  );
});

test('JWKS by URI: fetched from the issuer, and an unreachable JWKS fails only requests that carry a token', async (t) => {
  const k = await keys('k3');
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(k.jwks);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const good = createWorkloadAuthorizer(
    loadSecurityPolicies(
      parseManifests(
        ra(`{issuer: "${ISS}", jwksUri: "http://127.0.0.1:${port}/jwks"}`) + requireToken,
        'u.yaml',
      ),
    ),
    wl,
  );
  assert.equal((await good.decide(req(await k.sign({})))).status, 200);
  assert.equal((await good.decide(req(await k.sign({})))).status, 200);
  assert.equal(fetches, 1, 'the JWKS is cached');

  // Nothing listens on port 1 of 127.0.0.9: the fetch fails.
  const broken = createWorkloadAuthorizer(
    loadSecurityPolicies(
      parseManifests(
        ra(`{issuer: "${ISS}", jwksUri: "http://127.0.0.9:1/jwks", timeout: 2s}`),
        'b.yaml',
      ),
    ),
    wl,
  );
  const withToken = await broken.decide(req(await k.sign({})));
  assert.equal(withToken.status, 401);
  assert.equal((await broken.decide(req())).status, 200);
});

test("clock skew is Envoy's 60 s: exp/nbf off by 30 s pass, by 120 s fail", async () => {
  // Envoy jwt_authn JwtProvider.clock_skew_seconds: "If not specified, it defaults to 60
  // seconds"; Istio does not change it. A longer skew accepts tokens the issuer expired.
  const k = await keys('skew');
  const authz = createWorkloadAuthorizer(
    loadSecurityPolicies(parseManifests(ra(`{issuer: "${ISS}", jwks: '${k.jwks}'}`), 'ra.yaml')),
    wl,
  );
  const now = Math.floor(Date.now() / 1000);
  const decide = async (opts: { exp?: number; nbf?: number }) =>
    (await authz.decide(req(await k.sign({}, opts)))).status;
  assert.equal(await decide({ exp: now - 30 }), 200, 'expired 30 s ago: within the skew');
  assert.equal(await decide({ exp: now - 120 }), 401, 'expired 120 s ago: beyond 60 s');
  assert.equal(await decide({ nbf: now + 30 }), 200, 'valid in 30 s: within the skew');
  assert.equal(await decide({ nbf: now + 120 }), 401, 'valid in 120 s: beyond 60 s');
});
