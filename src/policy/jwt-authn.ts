/**
 * RequestAuthentication → Envoy's jwt_authn filter config
 * (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication), and the
 * authenticator that runs it per request (JWT verification with jose).
 *
 * Istio's semantics (istio.io RequestAuthentication): a request with no token
 * passes with no request principal; a request whose token is invalid —
 * bad signature, expired, wrong audience, unknown issuer, JWKS unavailable —
 * is rejected with 401. Requiring a token is an AuthorizationPolicy's job
 * (`requestPrincipals: ["*"]`). Istio expresses this as
 * `requires_any: [provider…, allow_missing]`.
 */
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { JwtRule, RequestAuthentication } from '../api/security/index.js';

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
/**
 * jose, loaded when a jwt_authn config is first compiled: a proxy with no
 * RequestAuthentication never loads it (~3 MB of its idle memory).
 */
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));

export const DEFAULT_JWKS_TIMEOUT_MS = 5000;
export const JWKS_CACHE_MS = 5 * 60 * 1000;
export const CLOCK_SKEW_S = 60;
/** Claims Istio always treats as space-delimited lists. */
export const DEFAULT_SPACE_DELIMITED_CLAIMS = ['scope', 'permission'] as const;

/** Options of {@link createJwtAuthenticator}. */
export interface JwtAuthenticatorOptions {
  /** The clock (tests); default the system clock. */
  readonly now?: () => Date;
}

export interface JwtProvider {
  readonly issuer: string;
  readonly audiences?: readonly string[];
  readonly local_jwks?: { readonly inline_string: string };
  readonly remote_jwks?: {
    readonly http_uri: {
      readonly uri: string;
      readonly cluster: string;
      readonly timeout: { seconds: string; nanos: number };
    };
    readonly cache_duration: { seconds: string; nanos: number };
  };
  readonly from_headers?: readonly { readonly name: string; readonly value_prefix?: string }[];
  readonly from_params?: readonly string[];
  readonly from_cookies?: readonly string[];
  readonly forward?: boolean;
  readonly forward_payload_header?: string;
  readonly claim_to_headers?: readonly {
    readonly header_name: string;
    readonly claim_name: string;
  }[];
  readonly payload_in_metadata?: string;
  /** Claims split on spaces in the metadata RBAC matches (Istio's spaceDelimitedClaims). */
  readonly normalize_payload_in_metadata?: { readonly space_delimited_claims?: readonly string[] };
  readonly clock_skew_seconds?: number;
}

export interface JwtAuthenticationConfig {
  readonly providers: Readonly<Record<string, JwtProvider>>;
  readonly rules: readonly {
    readonly match: { readonly prefix: string };
    readonly requires: {
      readonly requires_any: {
        readonly requirements: readonly (
          { provider_name: string } | { allow_missing: Record<string, never> }
        )[];
      };
    };
  }[];
}

function duration(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

function timeoutMs(rule: JwtRule): number {
  if (rule.timeout === undefined) return DEFAULT_JWKS_TIMEOUT_MS;
  const m = /^([0-9.]+)(ms|s|m|h)$/.exec(rule.timeout);
  const n = Number(m?.[1] ?? 5);
  return Math.round(n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m?.[2] ?? 's'] ?? 1000));
}

/** Translates the RequestAuthentications that apply to a workload into one jwt_authn config. */
export function translateRequestAuthentications(
  policies: readonly RequestAuthentication[],
): JwtAuthenticationConfig | undefined {
  const providers: Record<string, JwtProvider> = {};
  let i = 0;
  for (const p of policies) {
    for (const rule of p.spec?.jwtRules ?? []) {
      const name = `origins-${i++}`;
      const provider: JwtProvider = {
        issuer: rule.issuer,
        ...(rule.audiences !== undefined && rule.audiences.length > 0
          ? { audiences: rule.audiences }
          : {}),
        ...(rule.jwks !== undefined ? { local_jwks: { inline_string: rule.jwks } } : {}),
        ...(rule.jwksUri !== undefined
          ? {
              remote_jwks: {
                http_uri: {
                  uri: rule.jwksUri,
                  cluster: `jwks|${rule.jwksUri}`,
                  timeout: duration(timeoutMs(rule)),
                },
                cache_duration: duration(JWKS_CACHE_MS),
              },
            }
          : {}),
        from_headers: (
          rule.fromHeaders ??
          (rule.fromParams === undefined && rule.fromCookies === undefined
            ? [{ name: 'Authorization', prefix: 'Bearer ' }]
            : [])
        ).map((h) => ({
          name: h.name,
          ...(h.prefix === undefined ? {} : { value_prefix: h.prefix }),
        })),
        from_params:
          rule.fromParams ??
          (rule.fromHeaders === undefined && rule.fromCookies === undefined
            ? ['access_token']
            : []),
        ...(rule.fromCookies !== undefined ? { from_cookies: rule.fromCookies } : {}),
        forward: rule.forwardOriginalToken === true,
        ...(rule.outputPayloadToHeader !== undefined
          ? { forward_payload_header: rule.outputPayloadToHeader }
          : {}),
        ...(rule.outputClaimToHeaders !== undefined
          ? {
              claim_to_headers: rule.outputClaimToHeaders.map((c) => ({
                header_name: c.header,
                claim_name: c.claim,
              })),
            }
          : {}),
        payload_in_metadata: rule.issuer,
        // Istio always splits `scope` and `permission`, plus the rule's spaceDelimitedClaims.
        normalize_payload_in_metadata: {
          space_delimited_claims: [
            ...new Set([...DEFAULT_SPACE_DELIMITED_CLAIMS, ...(rule.spaceDelimitedClaims ?? [])]),
          ],
        },
        clock_skew_seconds: CLOCK_SKEW_S,
      };
      providers[name] = provider;
    }
  }
  const names = Object.keys(providers);
  if (names.length === 0) return undefined;
  return {
    providers,
    rules: [
      {
        match: { prefix: '/' },
        requires: {
          requires_any: {
            requirements: [...names.map((n) => ({ provider_name: n })), { allow_missing: {} }],
          },
        },
      },
    ],
  };
}

export interface JwtRequest {
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The query string (without `?`). */
  readonly query?: string;
}

export type JwtOutcome =
  | {
      readonly status: 200;
      /** `<iss>/<sub>` when a valid token was present. */
      readonly principal?: string;
      readonly payload?: JWTPayload;
      /** Dynamic metadata for RBAC: filter `istio_authn`. */
      readonly metadata: Record<string, unknown>;
      readonly headersToSet: Record<string, string>;
      readonly headersToRemove: readonly string[];
    }
  | { readonly status: 401; readonly reason: string };

export interface JwtAuthenticator {
  authenticate(req: JwtRequest): Promise<JwtOutcome>;
}

interface Location {
  readonly provider: string;
  readonly token: string;
  readonly header?: string;
}

function findTokens(
  name: string,
  p: JwtProvider,
  req: JwtRequest,
): Location[] | { invalid: string } {
  const out: Location[] = [];
  for (const h of p.from_headers ?? []) {
    const raw = req.headers[h.name.toLowerCase()];
    if (raw === undefined) continue;
    const prefix = h.value_prefix ?? '';
    // Istio: a header without the configured prefix is an invalid token.
    if (!raw.startsWith(prefix))
      return { invalid: `header ${h.name} does not start with ${JSON.stringify(prefix)}` };
    out.push({
      provider: name,
      token: raw.slice(prefix.length).trim(),
      header: h.name.toLowerCase(),
    });
  }
  if (req.query !== undefined && req.query !== '') {
    const params = new URLSearchParams(req.query);
    for (const param of p.from_params ?? []) {
      const v = params.get(param);
      if (v !== null) out.push({ provider: name, token: v });
    }
  }
  const cookie = req.headers['cookie'];
  if (cookie !== undefined) {
    for (const c of p.from_cookies ?? []) {
      const m = new RegExp(`(?:^|;\\s*)${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`).exec(
        cookie,
      );
      if (m?.[1] !== undefined) out.push({ provider: name, token: m[1] });
    }
  }
  return out;
}

function splitSpaces(v: unknown): unknown {
  return typeof v === 'string' ? v.split(' ').filter((s) => s !== '') : v;
}

/** An HMAC key of a JWKS (`kty: oct`). */
interface HmacKey {
  readonly kid?: string;
  readonly alg?: string;
  readonly key: Uint8Array;
}

/** The verification keys of one provider: asymmetric keys through jose, HMAC keys apart. */
interface ProviderKeys {
  readonly asymmetric?: JWTVerifyGetKey;
  /** The `oct` keys; `refresh` asks a remote JWKS again (a token's kid was not found). */
  readonly hmac: (refresh: boolean) => Promise<readonly HmacKey[]>;
}

const HMAC_ALGS = new Set(['HS256', 'HS384', 'HS512']);

/**
 * An inline JWKS. Envoy takes `kty: oct` keys for HS256/HS384/HS512
 * (google/jwt_verify_lib jwks.cc); jose's JWKS sets refuse symmetric keys, so
 * they are kept apart and tried here, and asymmetric keys go to jose.
 */
function localKeys(j: Jose, inline: string): ProviderKeys {
  const all = jwksKeys(inline);
  const hmac = hmacKeys(all);
  const asymmetric = all.filter((k) => k['kty'] !== 'oct');
  return {
    ...(asymmetric.length === 0
      ? {}
      : {
          asymmetric: j.createLocalJWKSet({
            keys: asymmetric,
          }),
        }),
    hmac: () => Promise.resolve(hmac),
  };
}

function jwksKeys(text: string): Record<string, unknown>[] {
  const parsed = JSON.parse(text) as { keys?: unknown };
  return Array.isArray(parsed.keys)
    ? (parsed.keys as unknown[]).filter(
        (k): k is Record<string, unknown> => typeof k === 'object' && k !== null,
      )
    : [];
}

const JWKS_REFETCH_COOLDOWN_MS = 30_000;

/**
 * The `oct` keys of a remote JWKS (jose's remote sets refuse symmetric keys):
 * fetched with the rule's timeout, cached {@link JWKS_CACHE_MS}, fetched again
 * for an unknown kid at most every 30 s. A failed fetch fails the token.
 */
function remoteHmacKeys(uri: string, timeoutMs: number): ProviderKeys['hmac'] {
  let cached: { at: number; keys: readonly HmacKey[] } | undefined;
  let inflight: Promise<readonly HmacKey[]> | undefined;
  const fetchKeys = async (): Promise<readonly HmacKey[]> => {
    try {
      const res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      if (res.status !== 200) throw new Error(`JWKS fetch answered ${String(res.status)}`);
      const keys = hmacKeys(jwksKeys(await res.text()));
      cached = { at: Date.now(), keys };
      return keys;
    } catch (err) {
      throw Object.assign(new Error(`Jwks remote fetch is failed: ${(err as Error).message}`), {
        code: 'ERR_JWKS_TIMEOUT',
      });
    } finally {
      inflight = undefined;
    }
  };
  return (refresh) => {
    const age = cached === undefined ? Infinity : Date.now() - cached.at;
    if (
      cached !== undefined &&
      age < JWKS_CACHE_MS &&
      !(refresh && age >= JWKS_REFETCH_COOLDOWN_MS)
    )
      return Promise.resolve(cached.keys);
    inflight ??= fetchKeys();
    return inflight;
  };
}

function hmacKeys(all: readonly Record<string, unknown>[]): HmacKey[] {
  const hmac: HmacKey[] = [];
  for (const k of all) {
    if (k['kty'] !== 'oct' || typeof k['k'] !== 'string') continue;
    const alg = typeof k['alg'] === 'string' ? k['alg'] : undefined;
    if (alg !== undefined && !HMAC_ALGS.has(alg)) continue;
    const key = Buffer.from(k['k'], 'base64url');
    if (key.length === 0) continue;
    hmac.push({
      ...(typeof k['kid'] === 'string' ? { kid: k['kid'] } : {}),
      ...(alg === undefined ? {} : { alg }),
      key: new Uint8Array(key),
    });
  }
  return hmac;
}

type VerifyOptions = NonNullable<Parameters<Jose['jwtVerify']>[2]>;

/**
 * Verifies with the provider's keys. HS* tokens are tried against every
 * `oct` key whose kid (when both have one) and alg (when the key names one)
 * agree, as jwt_verify_lib does; never against an asymmetric key, so a
 * public key cannot be used as an HMAC secret.
 */
async function verifyToken(
  j: Jose,
  token: string,
  keys: ProviderKeys,
  options: VerifyOptions,
): Promise<{ payload: JWTPayload }> {
  const header = j.decodeProtectedHeader(token);
  const noKey = (): Error =>
    Object.assign(new Error('no JWKS key matches the token kid and alg'), {
      code: 'ERR_JWKS_NO_MATCHING_KEY',
    });
  if (typeof header.alg === 'string' && HMAC_ALGS.has(header.alg)) {
    const alg = header.alg;
    const matching = (all: readonly HmacKey[]): HmacKey[] =>
      all.filter(
        (k) =>
          (header.kid === undefined || k.kid === undefined || k.kid === header.kid) &&
          (k.alg === undefined || k.alg === alg),
      );
    let candidates = matching(await keys.hmac(false));
    if (candidates.length === 0) candidates = matching(await keys.hmac(true));
    let last: unknown = noKey();
    for (const c of candidates) {
      try {
        return await j.jwtVerify(token, c.key, { ...options, algorithms: [alg] });
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw err;
        last = err;
      }
    }
    throw last;
  }
  if (keys.asymmetric === undefined) throw noKey();
  return j.jwtVerify(token, keys.asymmetric, options);
}

/** Compiles a jwt_authn config into an authenticator (JWKS sets are built once and cached). */
export function createJwtAuthenticator(
  config: JwtAuthenticationConfig | undefined,
  options: JwtAuthenticatorOptions = {},
): JwtAuthenticator {
  const clock = options.now ?? (() => new Date());
  if (config === undefined) {
    return {
      authenticate: () =>
        Promise.resolve({ status: 200, metadata: {}, headersToSet: {}, headersToRemove: [] }),
    };
  }
  const providers = config.providers;
  // A JWKS URI that is not a URL fails the compile, as before jose was loaded lazily.
  const remotes = new Map(
    Object.entries(config.providers).flatMap(([name, p]) =>
      p.remote_jwks === undefined ? [] : [[name, new URL(p.remote_jwks.http_uri.uri)] as const],
    ),
  );
  // The key sets are built once jose is loaded (started here, so the first token rarely waits).
  const keySets: Promise<Map<string, ProviderKeys>> = loadJose().then((j) => {
    const sets = new Map<string, ProviderKeys>();
    for (const [name, p] of Object.entries(config.providers)) {
      if (p.local_jwks !== undefined) {
        try {
          sets.set(name, localKeys(j, p.local_jwks.inline_string));
        } catch {
          // An unusable inline JWKS fails only requests that carry a token for this issuer.
        }
      } else if (p.remote_jwks !== undefined) {
        const t = p.remote_jwks.http_uri.timeout;
        const timeout = Number(t.seconds) * 1000 + t.nanos / 1e6;
        const url = remotes.get(name);
        if (url === undefined) continue;
        sets.set(name, {
          asymmetric: j.createRemoteJWKSet(url, {
            timeoutDuration: timeout,
            cacheMaxAge: JWKS_CACHE_MS,
            cooldownDuration: JWKS_REFETCH_COOLDOWN_MS,
          }),
          hmac: remoteHmacKeys(p.remote_jwks.http_uri.uri, timeout),
        });
      }
    }
    return sets;
  });
  // Never an unhandled rejection: a request awaiting the sets sees the failure (401).
  keySets.catch(() => undefined);
  return {
    async authenticate(req) {
      const found: Location[] = [];
      for (const [name, p] of Object.entries(config.providers)) {
        const r = findTokens(name, p, req);
        if ('invalid' in r)
          return { status: 401, reason: `Jwt is missing or malformed: ${r.invalid}` };
        found.push(...r);
      }
      if (found.length === 0)
        return { status: 200, metadata: {}, headersToSet: {}, headersToRemove: [] };
      // Every token presented must be valid (Envoy's jwt_authn verifies each extracted token: one
      // in the header and another in `?access_token=` are both checked); the first one's
      // identity is the request's. Headers carrying any of them are removed unless forwarded.
      const tokens = [...new Set(found.map((f) => f.token))];
      let first: Extract<JwtOutcome, { status: 200 }> | undefined;
      const removed = new Set<string>();
      for (const token of tokens) {
        const result = await verify(token, found);
        if (result.status !== 200) return result;
        first ??= result;
        for (const h of result.headersToRemove) removed.add(h);
      }
      return first === undefined
        ? { status: 401, reason: 'Jwt is missing' }
        : { ...first, headersToRemove: [...removed] };
    },
  };

  async function verify(token: string, found: readonly Location[]): Promise<JwtOutcome> {
    const j = await loadJose();
    let unverified: JWTPayload;
    try {
      unverified = j.decodeJwt(token);
    } catch {
      return { status: 401, reason: 'Jwt is not in the form of Header.Payload.Signature' };
    }
    const candidates = found.filter(
      (f) => f.token === token && providers[f.provider]?.issuer === unverified.iss,
    );
    const chosen = candidates[0];
    if (chosen === undefined)
      return {
        status: 401,
        reason: `Jwt issuer ${JSON.stringify(unverified.iss)} is not configured`,
      };
    const provider = providers[chosen.provider];
    const keys = (await keySets.catch(() => undefined))?.get(chosen.provider);
    if (provider === undefined || keys === undefined)
      return { status: 401, reason: 'Jwks remote fetch is failed' };
    let payload: JWTPayload;
    const skew = provider.clock_skew_seconds ?? CLOCK_SKEW_S;
    const currentDate = clock();
    try {
      // Envoy (jwt_authn/jwt.cc verifyTimeConstraint): expired only when now > exp + skew,
      // so a token is still valid at exactly exp + skew; jose rejects at exp + tolerance,
      // hence one more second there, and nbf checked here with Envoy's exact bound.
      ({ payload } = await verifyToken(j, chosen.token, keys, {
        issuer: provider.issuer,
        ...(provider.audiences === undefined ? {} : { audience: [...provider.audiences] }),
        clockTolerance: skew + 1,
        currentDate,
      }));
      const now = Math.floor(currentDate.getTime() / 1000);
      if (typeof payload.nbf === 'number' && payload.nbf > now + skew)
        return { status: 401, reason: 'Jwt not yet valid' };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const reason =
        code === 'ERR_JWT_EXPIRED'
          ? 'Jwt is expired'
          : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' &&
              (err as { claim?: string }).claim === 'nbf'
            ? 'Jwt not yet valid'
            : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
              ? `Jwt verification fails: ${(err as Error).message}`
              : code === 'ERR_JWKS_TIMEOUT' ||
                  code === 'ERR_JOSE_GENERIC' ||
                  code === 'ERR_JWKS_INVALID'
                ? 'Jwks remote fetch is failed'
                : code === 'ERR_JWKS_NO_MATCHING_KEY' ||
                    code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
                  ? 'Jwt verification fails'
                  : `Jwt verification fails: ${(err as Error).message}`;
      return { status: 401, reason };
    }
    const claims: Record<string, unknown> = { ...payload };
    for (const name of provider.normalize_payload_in_metadata?.space_delimited_claims ??
      DEFAULT_SPACE_DELIMITED_CLAIMS)
      if (name in claims) claims[name] = splitSpaces(claims[name]);
    const aud =
      payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const principal = `${payload.iss ?? ''}/${payload.sub ?? ''}`;
    const headersToSet: Record<string, string> = {};
    if (provider.forward_payload_header !== undefined) {
      headersToSet[provider.forward_payload_header.toLowerCase()] = Buffer.from(
        JSON.stringify(payload),
      ).toString('base64url');
    }
    for (const c of provider.claim_to_headers ?? []) {
      const v = payload[c.claim_name];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
        headersToSet[c.header_name.toLowerCase()] = String(v);
    }
    return {
      status: 200,
      principal,
      payload,
      metadata: {
        'request.auth.principal': principal,
        'request.auth.audiences': aud,
        ...(typeof payload['azp'] === 'string' ? { 'request.auth.presenter': payload['azp'] } : {}),
        'request.auth.claims': claims,
      },
      headersToSet,
      headersToRemove:
        provider.forward === true || chosen.header === undefined ? [] : [chosen.header],
    };
  }
}
