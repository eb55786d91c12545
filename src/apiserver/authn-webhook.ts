/**
 * Webhook token authentication (`--authentication-token-webhook-config-file`):
 * a bearer token no other authenticator recognised is sent to a remote
 * service as an `authentication.k8s.io/v1` TokenReview; `status.authenticated`
 * and `status.user` decide. Answers, positive and negative, are cached for
 * `--authentication-token-webhook-cache-ttl` (default 2m), keyed by the
 * token's SHA-256 so the cache holds no token.
 *
 * Kubernetes: "Authenticating" › "Webhook Token Authentication".
 */
import { createHash } from 'node:crypto';
import type { AuthUser } from './authn.js';
import { postReview, WebhookCallError, type WebhookTarget } from './webhook-client.js';

export interface WebhookTokenAuthenticatorOptions {
  readonly target: WebhookTarget;
  /** Cache lifetime of an answer (ms); 0 disables the cache. */
  readonly cacheTtlMs: number;
  /** Audiences the API server accepts, sent as `spec.audiences` when set. */
  readonly audiences?: readonly string[];
  /** Per-call timeout (ms); kube-apiserver uses 30 s. */
  readonly timeoutMs?: number;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/** Returns the user the webhook vouches for, undefined when it does not, throws on a failed call. */
export function createWebhookTokenAuthenticator(
  options: WebhookTokenAuthenticatorOptions,
): (token: string) => Promise<AuthUser | undefined> {
  const cache = new Map<string, { until: number; user: AuthUser | undefined }>();
  return async (token) => {
    const key = createHash('sha256').update(token).digest('base64');
    const now = Date.now();
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > now) return hit.user;
    const review = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec: {
        token,
        ...(options.audiences === undefined ? {} : { audiences: options.audiences }),
      },
      status: { user: {} },
    };
    const answer = rec(await postReview(options.target, review, options.timeoutMs ?? 30_000));
    const status = rec(answer.status);
    let user: AuthUser | undefined;
    if (status.authenticated === true) {
      const u = rec(status.user);
      if (typeof u.username !== 'string' || u.username === '')
        throw new WebhookCallError('the TokenReview answer has no status.user.username');
      const extra: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(rec(u.extra))) extra[k] = strings(v);
      user = {
        name: u.username,
        ...(typeof u.uid === 'string' && u.uid !== '' ? { uid: u.uid } : {}),
        groups: strings(u.groups),
        ...(Object.keys(extra).length === 0 ? {} : { extra }),
      };
    }
    if (options.cacheTtlMs > 0) {
      if (cache.size > 10_000) cache.clear();
      cache.set(key, { until: now + options.cacheTtlMs, user });
    }
    return user;
  };
}
