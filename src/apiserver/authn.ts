/**
 * Authentication, in kube-apiserver's order; the first authenticator that
 * recognises the credential decides (Kubernetes: "Authenticating"):
 *  1. X.509 client certificate verified against the client CA: CN is the
 *     user, each O a group;
 *  2. bearer token from `--token-auth-file` (CSV `token,user,uid,"g1,g2"`);
 *  3. service-account tokens this server signed (TokenRequest): signature,
 *     issuer, audience, expiry, and the service account must still exist with
 *     the UID the token names;
 *  4. OpenID Connect ID tokens;
 *  5. the token webhook (TokenReview to a remote service).
 * A credential that is presented but invalid is a 401, not anonymous.
 * Every authenticated user gets `system:authenticated`; service accounts also
 * `system:serviceaccounts` and `system:serviceaccounts:<ns>`.
 */
import { createHash, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { SignJWT, jwtVerify } from 'jose';
import { PalisadeError } from '../errors/index.js';
import { authenticatedUser } from '../kubernetes/index.js';
import { ApiError } from './status.js';

/** user.Info. */
export interface AuthUser {
  readonly name: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

interface StaticToken {
  readonly digest: Buffer;
  readonly user: AuthUser;
}

/** Splits one CSV line (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Reads a kube-apiserver `--token-auth-file`. */
export function readTokenAuthFile(path: string): StaticToken[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: cannot read the token file`, { cause });
  }
  const out: StaticToken[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [token = '', user = '', uid = '', groups = ''] = csvFields(line).map((f) => f.trim());
    if (token === '' || user === '')
      throw new PalisadeError(
        'PAL_ERR_CONFIG_INVALID',
        `${path}:${i + 1}: a token line needs at least token,user`,
      );
    out.push({
      digest: digest(token),
      user: {
        name: user,
        ...(uid === '' ? {} : { uid }),
        groups:
          groups === ''
            ? []
            : groups
                .split(',')
                .map((g) => g.trim())
                .filter((g) => g !== ''),
      },
    });
  }
  return out;
}

export interface ServiceAccountTokenClaims {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly jti: string;
}

/** Signs and verifies service-account tokens (TokenRequest), Kubernetes' claim layout. */
export interface ServiceAccountTokens {
  readonly issuer: string;
  mint(options: {
    namespace: string;
    name: string;
    uid: string;
    audiences: readonly string[];
    expirationSeconds: number;
  }): Promise<{ token: string; expiresAt: Date }>;
  verify(token: string): Promise<ServiceAccountTokenClaims | undefined>;
}

export function createServiceAccountTokens(options: {
  privateKey: KeyObject;
  publicKey: KeyObject;
  issuer: string;
  /** Audiences the API server accepts (`--api-audiences`; default the issuer). */
  audiences?: readonly string[];
}): ServiceAccountTokens {
  const audiences = options.audiences ?? [options.issuer];
  return {
    issuer: options.issuer,
    async mint(m) {
      const now = Math.floor(Date.now() / 1000);
      const exp = now + m.expirationSeconds;
      const token = await new SignJWT({
        'kubernetes.io': { namespace: m.namespace, serviceaccount: { name: m.name, uid: m.uid } },
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer(options.issuer)
        .setSubject(`system:serviceaccount:${m.namespace}:${m.name}`)
        .setAudience([...m.audiences])
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(options.privateKey);
      return { token, expiresAt: new Date(exp * 1000) };
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, options.publicKey, {
          issuer: options.issuer,
          audience: [...audiences],
          algorithms: ['ES256'],
        });
        const k8s = payload['kubernetes.io'] as
          { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } } | undefined;
        const namespace = k8s?.namespace;
        const name = k8s?.serviceaccount?.name;
        const uid = k8s?.serviceaccount?.uid;
        if (typeof namespace !== 'string' || typeof name !== 'string' || typeof uid !== 'string')
          return undefined;
        if (payload.sub !== `system:serviceaccount:${namespace}:${name}`) return undefined;
        return { namespace, name, uid, jti: typeof payload.jti === 'string' ? payload.jti : '' };
      } catch {
        return undefined;
      }
    },
  };
}

export interface AuthenticatorOptions {
  readonly staticTokens?: readonly StaticToken[];
  readonly serviceAccountTokens?: ServiceAccountTokens;
  /** Looks up a service account's UID; undefined when it does not exist. */
  readonly serviceAccountUid?: (namespace: string, name: string) => Promise<string | undefined>;
  readonly anonymous?: boolean;
  /** OpenID Connect ID tokens (after static and service-account tokens). */
  readonly oidc?: (token: string) => Promise<AuthUser | undefined>;
  /** Webhook token authentication (TokenReview), last of the token authenticators. */
  readonly webhook?: (token: string) => Promise<AuthUser | undefined>;
}

/** Adds the groups Kubernetes adds to every authenticated user. */
function finish(user: AuthUser): AuthUser {
  const base = authenticatedUser(user.name, user.groups);
  return { ...user, groups: base.groups };
}

const UNAUTHORIZED = (): ApiError => new ApiError('Unauthorized', 'Unauthorized');

/** Returns the request's user, or throws 401. */
export function createAuthenticator(
  options: AuthenticatorOptions,
): (req: IncomingMessage) => Promise<AuthUser> {
  const tokens = options.staticTokens ?? [];
  return async (req) => {
    const socket = req.socket;
    if (socket instanceof TLSSocket && socket.authorized) {
      // A resumed TLS session can report authorized with no certificate: then it is no cert user.
      const cert = socket.getPeerCertificate() as Partial<
        ReturnType<TLSSocket['getPeerCertificate']>
      >;
      const cn = cert.subject?.CN;
      const o: string | string[] | undefined = cert.subject?.O;
      if (typeof cn === 'string' && cn !== '') {
        return finish({ name: cn, groups: o === undefined ? [] : Array.isArray(o) ? o : [o] });
      }
    }
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (m === null) throw UNAUTHORIZED();
      const token = m[1] ?? '';
      const d = digest(token);
      for (const t of tokens) if (timingSafeEqual(t.digest, d)) return finish(t.user);
      if (options.serviceAccountTokens !== undefined && token.split('.').length === 3) {
        const claims = await options.serviceAccountTokens.verify(token);
        if (claims !== undefined) {
          const uid = await options.serviceAccountUid?.(claims.namespace, claims.name);
          // A token outlives neither its service account nor a recreated one (UID check).
          if (uid !== undefined && uid === claims.uid) {
            return finish({
              name: `system:serviceaccount:${claims.namespace}:${claims.name}`,
              uid,
              groups: [],
              ...(claims.jti === ''
                ? {}
                : {
                    extra: { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`] },
                  }),
            });
          }
        }
      }
      if (options.oidc !== undefined) {
        const user = await options.oidc(token);
        if (user !== undefined) return finish(user);
      }
      if (options.webhook !== undefined) {
        let user: AuthUser | undefined;
        try {
          user = await options.webhook(token);
        } catch (e) {
          // An unreachable webhook authenticates nobody: 401, as kube-apiserver answers.
          process.stderr.write(
            `apiserver: token webhook: ${e instanceof Error ? e.message : String(e)}\n`,
          );
        }
        if (user !== undefined) return finish(user);
      }
      throw UNAUTHORIZED();
    }
    if (options.anonymous === true) return finish({ name: 'system:anonymous', groups: [] });
    throw UNAUTHORIZED();
  };
}
