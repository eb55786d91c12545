/**
 * OpenID Connect ID tokens as kube-apiserver accepts them (Kubernetes:
 * "Authenticating — OpenID Connect Tokens"): the issuer must be https, its
 * discovery document names the JWKS; a token is accepted when its signature
 * verifies with the issuer's keys, `iss` equals `--oidc-issuer-url`, `aud`
 * contains `--oidc-client-id` and it has not expired. The user name is the
 * `--oidc-username-claim` (default `sub`), prefixed with `ISSUER#` unless the
 * claim is `email` or a prefix is given (`-` for none); with `email`,
 * `email_verified` must not be false. Groups come from `--oidc-groups-claim`
 * (a string or a list), with `--oidc-groups-prefix`.
 */
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AuthUser } from './authn.js';

export interface OidcOptions {
  readonly issuerUrl: string;
  readonly clientId: string;
  readonly usernameClaim?: string;
  readonly usernamePrefix?: string;
  readonly groupsClaim?: string;
  readonly groupsPrefix?: string;
  /** PEM CA for the issuer (`--oidc-ca-file`); the system roots otherwise. */
  readonly caPem?: string;
}

export type OidcAuthenticator = (token: string) => Promise<AuthUser | undefined>;

export function createOidcAuthenticator(options: OidcOptions): OidcAuthenticator {
  const issuer = options.issuerUrl;
  if (!issuer.startsWith('https://'))
    throw new Error(`--oidc-issuer-url ${issuer}: must be an https URL`);
  const dispatcher =
    options.caPem === undefined ? undefined : new Agent({ connect: { ca: options.caPem } });
  const get = (url: string): ReturnType<typeof undiciFetch> =>
    undiciFetch(url, {
      ...(dispatcher === undefined ? {} : { dispatcher }),
      signal: AbortSignal.timeout(10_000),
    });
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  const keys = async (): Promise<ReturnType<typeof createRemoteJWKSet>> => {
    if (jwks !== undefined) return jwks;
    const res = await get(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    if (res.status !== 200) throw new Error(`OIDC discovery: HTTP ${String(res.status)}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== issuer)
      throw new Error('OIDC discovery: issuer does not match --oidc-issuer-url');
    if (typeof doc.jwks_uri !== 'string' || !doc.jwks_uri.startsWith('https://'))
      throw new Error('OIDC discovery: jwks_uri must be an https URL');
    jwks = createRemoteJWKSet(new URL(doc.jwks_uri), {
      // jose wants a WHATWG Response; the JWKS is fetched through the issuer's CA and handed over.
      [customFetch]: async (url: string, init: { signal?: AbortSignal }) => {
        const r = await undiciFetch(url, {
          ...(init.signal === undefined ? {} : { signal: init.signal }),
          ...(dispatcher === undefined ? {} : { dispatcher }),
        });
        return new Response(await r.text(), {
          status: r.status,
          headers: { 'content-type': r.headers.get('content-type') ?? 'application/json' },
        });
      },
    });
    return jwks;
  };
  const usernameClaim = options.usernameClaim ?? 'sub';
  const usernamePrefix =
    options.usernamePrefix === '-'
      ? ''
      : (options.usernamePrefix ?? (usernameClaim === 'email' ? '' : `${issuer}#`));
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await keys(), {
        issuer,
        audience: options.clientId,
        algorithms: [
          'RS256',
          'RS384',
          'RS512',
          'ES256',
          'ES384',
          'ES512',
          'PS256',
          'PS384',
          'PS512',
        ],
      }));
    } catch {
      return undefined;
    }
    const name = payload[usernameClaim];
    if (typeof name !== 'string' || name === '') return undefined;
    if (usernameClaim === 'email' && payload.email_verified === false) return undefined;
    const raw = options.groupsClaim === undefined ? undefined : payload[options.groupsClaim];
    const groups = (typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : []).filter(
      (g): g is string => typeof g === 'string',
    );
    return {
      name: `${usernamePrefix}${name}`,
      groups: groups.map((g) => `${options.groupsPrefix ?? ''}${g}`),
    };
  };
}
