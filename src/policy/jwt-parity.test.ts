// RequestAuthentication parity with Envoy's jwt_authn (issue 17): symmetric keys,
// Envoy's exp/nbf bounds, spaceDelimitedClaims, token locations and outputs.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { base64url, SignJWT } from 'jose';
import { parseManifests } from '../api/index.js';
import type { RequestAuthentication } from '../api/security/index.js';
import {
  createJwtAuthenticator,
  createWorkloadAuthorizer,
  loadSecurityPolicies,
  translateRequestAuthentications,
} from './index.js';

const ISS = 'issuer-foo';
const NOW = 1_800_000_000; // a fixed clock: the boundaries below are exact, not timed
const clock = () => new Date(NOW * 1000);

const ra = (rule: string): string =>
  `---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: foo}\nspec:\n  jwtRules:\n  - ${rule}\n`;
const rules = (yaml: string): RequestAuthentication[] => [
  ...loadSecurityPolicies(parseManifests(yaml, 'ra.yaml')).requestAuthentications,
];

const secret = new TextEncoder().encode(
  'a-shared-secret-of-at-least-64-bytes-for-hs512-0123456789abcdef!',
);
const octJwks = (alg?: string) =>
  JSON.stringify({
    keys: [
      {
        kty: 'oct',
        kid: 'hmac',
        ...(alg === undefined ? {} : { alg }),
        k: base64url.encode(secret),
      },
    ],
  });
const hmac = (alg: string, claims: Record<string, unknown>, key = secret) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg, kid: 'hmac' })
    .setIssuer(ISS)
    .setSubject('alice')
    .sign(key);

async function authenticate(yaml: string, headers: Record<string, string>) {
  const config = translateRequestAuthentications(rules(yaml));
  return createJwtAuthenticator(config, { now: clock }).authenticate({ headers });
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

// Envoy jwt_authn accepts JWKS `kty: oct` keys for HS256/HS384/HS512 (google/jwt_verify_lib
// jwks.cc extractJwkFromJwkOct; test/verify_jwk_hmac_test.cc).
test('symmetric JWKS keys: kty oct with HS256, HS384, HS512', async () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    for (const jwks of [octJwks(alg), octJwks()]) {
      const yaml = ra(`{issuer: "${ISS}", jwks: '${jwks}'}`);
      const token = await hmac(alg, { exp: NOW + 600 });
      const ok = await authenticate(yaml, bearer(token));
      assert.equal(ok.status, 200, `${alg} ${jwks}`);
      assert.equal('principal' in ok ? ok.principal : '', `${ISS}/alice`);
      const forged = await hmac(alg, { exp: NOW + 600 }, new TextEncoder().encode('x'.repeat(64)));
      assert.equal((await authenticate(yaml, bearer(forged))).status, 401, alg);
    }
  }
});

// google/jwt_verify_lib jwt.cc verifyTimeConstraint: expired when now > exp + clock_skew,
// not yet valid when nbf > now + clock_skew; Envoy's default clock_skew_seconds is 60.
test('exp and nbf bounds exactly as Envoy: valid through exp + 60 s, from nbf - 60 s', async () => {
  const yaml = ra(`{issuer: "${ISS}", jwks: '${octJwks('HS256')}'}`);
  const status = async (claims: Record<string, unknown>) => {
    const r = await authenticate(yaml, bearer(await hmac('HS256', claims)));
    return r.status === 200 ? 200 : `401 ${r.reason}`;
  };
  assert.equal(await status({ exp: NOW - 60 }), 200);
  assert.equal(await status({ exp: NOW - 61 }), '401 Jwt is expired');
  assert.equal(await status({ exp: NOW }), 200);
  assert.equal(await status({ nbf: NOW + 60 }), 200);
  assert.equal(await status({ nbf: NOW + 61 }), '401 Jwt not yet valid');
});

// istio.io RequestAuthentication reference, JWTRule.spaceDelimitedClaims: the listed claims are
// split on spaces for request.auth.claims matching, besides the default scope and permission.
test('spaceDelimitedClaims split the listed claims, scope and permission always', async () => {
  const policy = (extra: string) =>
    ra(`{issuer: "${ISS}", jwks: '${octJwks('HS256')}'${extra}}`) +
    `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - {key: "request.auth.claims[roles]", values: ["dev"]}\n    - {key: "request.auth.claims[scope]", values: ["read"]}\n`;
  const token = await hmac('HS256', { roles: 'admin dev', scope: 'read write' });
  const decide = async (yaml: string) =>
    (
      await createWorkloadAuthorizer(loadSecurityPolicies(parseManifests(yaml, 'p.yaml')), {
        namespace: 'foo',
        labels: {},
      }).decide({
        principal: null,
        destinationPort: 80,
        protocol: 'http',
        path: '/',
        headers: bearer(token),
      })
    ).status;
  assert.equal(await decide(policy(', spaceDelimitedClaims: [roles]')), 200);
  assert.equal(await decide(policy('')), 403);
  const config = translateRequestAuthentications(
    rules(ra(`{issuer: "${ISS}", jwks: '${octJwks()}', spaceDelimitedClaims: [roles, scope]}`)),
  );
  assert.deepEqual(Object.values(config?.providers ?? {})[0]?.normalize_payload_in_metadata, {
    space_delimited_claims: ['scope', 'permission', 'roles'],
  });
});

// istio.io RequestAuthentication reference: fromCookies, outputClaimToHeaders,
// forwardOriginalToken; Envoy JwtProvider from_cookies, claim_to_headers, forward.
test('fromCookies, outputClaimToHeaders and forwardOriginalToken are enforced', async () => {
  const token = await hmac('HS256', { exp: NOW + 600, group: 'eng' });
  const cookieRule = ra(
    `{issuer: "${ISS}", jwks: '${octJwks()}', fromCookies: [session], outputClaimToHeaders: [{header: x-jwt-group, claim: group}]}`,
  );
  const fromCookie = await authenticate(cookieRule, { cookie: `a=b; session=${token}; c=d` });
  assert.equal(fromCookie.status, 200);
  assert.deepEqual('headersToSet' in fromCookie ? fromCookie.headersToSet : {}, {
    'x-jwt-group': 'eng',
  });
  // Only the cookie is configured: the Authorization header is not a token location.
  const bearerOnly = await authenticate(cookieRule, bearer(token));
  assert.equal(bearerOnly.status === 200 ? bearerOnly.principal : 'x', undefined);
  const strip = await authenticate(ra(`{issuer: "${ISS}", jwks: '${octJwks()}'}`), bearer(token));
  assert.deepEqual(strip.status === 200 ? strip.headersToRemove : [], ['authorization']);
  const keep = await authenticate(
    ra(`{issuer: "${ISS}", jwks: '${octJwks()}', forwardOriginalToken: true}`),
    bearer(token),
  );
  assert.deepEqual(keep.status === 200 ? keep.headersToRemove : ['x'], []);
});

test('timeout is translated to the JWKS fetch timeout', () => {
  const config = translateRequestAuthentications(
    rules(ra(`{issuer: "${ISS}", jwksUri: "https://example.com/jwks", timeout: 1.5s}`)),
  );
  assert.deepEqual(Object.values(config?.providers ?? {})[0]?.remote_jwks?.http_uri.timeout, {
    seconds: '1',
    nanos: 500_000_000,
  });
});

// Envoy takes symmetric keys from a remote JWKS too (remote_jwks); a fetch failure fails the token.
test('symmetric keys from jwksUri; an unreachable JWKS fails only tokens (401)', async (t) => {
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches += 1;
    res.setHeader('content-type', 'application/json');
    res.end(octJwks('HS256'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.36.0.20', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  const yaml = ra(`{issuer: "${ISS}", jwksUri: "http://127.36.0.20:${String(port)}/jwks"}`);
  const config = translateRequestAuthentications(rules(yaml));
  const authn = createJwtAuthenticator(config, { now: clock });
  const good = await hmac('HS256', { exp: NOW + 600 });
  assert.equal((await authn.authenticate({ headers: bearer(good) })).status, 200);
  assert.equal((await authn.authenticate({ headers: bearer(good) })).status, 200);
  assert.equal(fetches, 1, 'the JWKS is cached');
  const forged = await hmac('HS256', { exp: NOW + 600 }, new TextEncoder().encode('y'.repeat(40)));
  assert.equal((await authn.authenticate({ headers: bearer(forged) })).status, 401);

  const down = createJwtAuthenticator(
    translateRequestAuthentications(
      rules(ra(`{issuer: "${ISS}", jwksUri: "http://127.36.0.21:1/jwks", timeout: 2s}`)),
    ),
    { now: clock },
  );
  const failed = await down.authenticate({ headers: bearer(good) });
  assert.deepEqual(failed, { status: 401, reason: 'Jwks remote fetch is failed' });
  assert.equal((await down.authenticate({ headers: {} })).status, 200);
});
