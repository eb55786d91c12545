/**
 * Service-account tokens: the credential a proxy presents to the CA and the
 * control plane. They are JWTs (ES256) shaped like Kubernetes' projected
 * service-account tokens: `iss`, `sub: system:serviceaccount:<ns>:<sa>`,
 * `aud`, `exp`, `iat`, `nbf`, and `kubernetes.io: { namespace, serviceaccount }`.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import type { CryptoKey } from './pem.js';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { PalisadeError } from '../errors/index.js';

/** Default audience of Palisade's tokens (Istio uses `istio-ca`). */
export const DEFAULT_TOKEN_AUDIENCE = 'palisade-ca';
export const DEFAULT_TOKEN_ISSUER = 'palisade';
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600 * 1000;

export interface ServiceAccountClaims {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly subject: string;
  readonly audience: readonly string[];
  readonly expiresAt: Date;
}

export interface MintOptions {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly audience?: string;
  readonly ttlMs?: number;
}

export interface TokenIssuer {
  mint(options: MintOptions): Promise<string>;
  verify(token: string, audience?: string): Promise<ServiceAccountClaims>;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** A token issuer over an ES256 key pair (the CA's token key). */
export function createTokenIssuer(options: {
  readonly privateKey: CryptoKey | KeyObject;
  readonly publicKey: CryptoKey | KeyObject;
  readonly issuer?: string;
}): TokenIssuer {
  const issuer = options.issuer ?? DEFAULT_TOKEN_ISSUER;
  return {
    async mint(m: MintOptions): Promise<string> {
      if (!NAME.test(m.namespace) || !NAME.test(m.serviceAccount)) {
        throw new PalisadeError(
          'PAL_ERR_SPIFFE_ID_INVALID',
          `invalid namespace or service account name: ${m.namespace}/${m.serviceAccount}`,
        );
      }
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        'kubernetes.io': {
          namespace: m.namespace,
          serviceaccount: { name: m.serviceAccount, uid: randomUUID() },
        },
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(`system:serviceaccount:${m.namespace}:${m.serviceAccount}`)
        .setAudience(m.audience ?? DEFAULT_TOKEN_AUDIENCE)
        .setIssuedAt(now)
        .setNotBefore(now - 5)
        .setExpirationTime(now + Math.floor((m.ttlMs ?? DEFAULT_TOKEN_TTL_MS) / 1000))
        .setJti(randomUUID())
        .sign(options.privateKey);
    },
    verify: (token, audience) =>
      verifyServiceAccountToken(token, {
        publicKey: options.publicKey,
        issuer,
        audience: audience ?? DEFAULT_TOKEN_AUDIENCE,
      }),
  };
}

/** Verifies a token's signature, issuer, audience and lifetime; fails closed with the reason. */
export async function verifyServiceAccountToken(
  token: string,
  options: {
    readonly publicKey: CryptoKey | KeyObject;
    readonly issuer?: string;
    readonly audience: string;
  },
): Promise<ServiceAccountClaims> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, options.publicKey, {
      algorithms: ['ES256'],
      issuer: options.issuer ?? DEFAULT_TOKEN_ISSUER,
      audience: options.audience,
      clockTolerance: 5,
    }));
  } catch (cause) {
    const reason =
      cause instanceof joseErrors.JWTExpired
        ? 'token has expired'
        : cause instanceof joseErrors.JWTClaimValidationFailed
          ? `token claim "${cause.claim}" is not acceptable (${cause.reason})`
          : cause instanceof joseErrors.JWSSignatureVerificationFailed
            ? 'token signature is not valid (forged or signed by another key)'
            : `token is malformed: ${cause instanceof Error ? cause.message : String(cause)}`;
    throw new PalisadeError('PAL_ERR_TOKEN_INVALID', reason, { cause });
  }
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(payload.sub ?? '');
  if (m === null)
    throw new PalisadeError(
      'PAL_ERR_TOKEN_INVALID',
      `token subject ${JSON.stringify(payload.sub)} is not a service account`,
    );
  const aud = payload.aud;
  return {
    namespace: m[1] ?? '',
    serviceAccount: m[2] ?? '',
    subject: payload.sub ?? '',
    audience: typeof aud === 'string' ? [aud] : (aud ?? []),
    expiresAt: new Date((payload.exp ?? 0) * 1000),
  };
}
