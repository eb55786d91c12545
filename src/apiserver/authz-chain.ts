/**
 * The authorization chain (`--authorization-mode`, comma-separated, in
 * order): each authorizer answers allow, deny or no opinion, and the first
 * allow or deny decides; when none has an opinion the request is forbidden
 * with the reasons joined (k8s.io/apiserver union authorizer). Modes:
 * `RBAC` (allow or no opinion, never deny), `Webhook` (a SubjectAccessReview
 * v1 POSTed to `--authorization-webhook-config-file`), `AlwaysAllow`,
 * `AlwaysDeny`. `system:masters` is allowed before the chain, as
 * kube-apiserver's privileged-group authorizer does.
 *
 * Kubernetes: "Authorization" › "Authorization modules", "Webhook Mode".
 */
import type { PolicyRule, RequestAttributes } from '../kubernetes/index.js';
import type { Authorizer } from './authz.js';
import { postReview, type WebhookTarget } from './webhook-client.js';

export type AuthorizationMode = 'RBAC' | 'Webhook' | 'AlwaysAllow' | 'AlwaysDeny';
export const AUTHORIZATION_MODES: readonly AuthorizationMode[] = [
  'RBAC',
  'Webhook',
  'AlwaysAllow',
  'AlwaysDeny',
];

export interface Decision {
  readonly allowed: boolean;
  /** An explicit deny: the chain stops here. */
  readonly denied?: boolean;
  readonly reason: string;
}

export interface WebhookAuthorizerOptions {
  readonly target: WebhookTarget;
  /** `--authorization-webhook-cache-authorized-ttl` (default 5m). */
  readonly authorizedTtlMs: number;
  /** `--authorization-webhook-cache-unauthorized-ttl` (default 30s). */
  readonly unauthorizedTtlMs: number;
  readonly timeoutMs?: number;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

/** The SubjectAccessReview kube-apiserver sends for a request. */
export function subjectAccessReview(
  attrs: RequestAttributes & {
    user: { uid?: string; extra?: Readonly<Record<string, readonly string[]>> };
  },
): Record<string, unknown> {
  const spec: Record<string, unknown> =
    attrs.nonResourceURL !== undefined
      ? { nonResourceAttributes: { path: attrs.nonResourceURL, verb: attrs.verb } }
      : {
          resourceAttributes: {
            ...(attrs.namespace === undefined ? {} : { namespace: attrs.namespace }),
            verb: attrs.verb,
            group: attrs.apiGroup ?? '',
            resource: attrs.resource ?? '',
            ...(attrs.subresource === undefined ? {} : { subresource: attrs.subresource }),
            ...(attrs.name === undefined ? {} : { name: attrs.name }),
          },
        };
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    metadata: { creationTimestamp: null },
    spec: {
      ...spec,
      user: attrs.user.name,
      groups: attrs.user.groups,
      ...(attrs.user.uid === undefined ? {} : { uid: attrs.user.uid }),
      ...(attrs.user.extra === undefined ? {} : { extra: attrs.user.extra }),
    },
    status: { allowed: false },
  };
}

/** The Webhook mode; a failed call is no opinion with the error as its reason. */
export function createWebhookAuthorizer(
  options: WebhookAuthorizerOptions,
): (attrs: RequestAttributes) => Promise<Decision> {
  const cache = new Map<string, { until: number; decision: Decision }>();
  return async (attrs) => {
    const review = subjectAccessReview(attrs);
    const key = JSON.stringify(review.spec);
    const now = Date.now();
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > now) return hit.decision;
    let decision: Decision;
    try {
      const status = rec(
        rec(await postReview(options.target, review, options.timeoutMs ?? 30_000)).status,
      );
      const reason = typeof status.reason === 'string' ? status.reason : '';
      decision =
        status.allowed === true
          ? { allowed: true, reason }
          : { allowed: false, ...(status.denied === true ? { denied: true } : {}), reason };
    } catch (e) {
      // Not cached: the next request asks again.
      return { allowed: false, reason: e instanceof Error ? e.message : String(e) };
    }
    const ttl = decision.allowed ? options.authorizedTtlMs : options.unauthorizedTtlMs;
    if (ttl > 0) {
      if (cache.size > 10_000) cache.clear();
      cache.set(key, { until: now + ttl, decision });
    }
    return decision;
  };
}

/** Chains the modes in order over the RBAC authorizer (which also answers rule lists). */
export function createChainAuthorizer(
  modes: readonly AuthorizationMode[],
  rbac: Authorizer,
  webhook: ((attrs: RequestAttributes) => Promise<Decision>) | undefined,
): Authorizer {
  return {
    async authorize(attrs) {
      if (attrs.user.groups.includes('system:masters')) return { allowed: true, reason: '' };
      const reasons: string[] = [];
      for (const mode of modes) {
        let d: Decision;
        switch (mode) {
          case 'RBAC':
            d = await rbac.authorize(attrs);
            break;
          case 'Webhook':
            d = webhook === undefined ? { allowed: false, reason: '' } : await webhook(attrs);
            break;
          case 'AlwaysAllow':
            d = { allowed: true, reason: '' };
            break;
          case 'AlwaysDeny':
            d = { allowed: false, denied: true, reason: 'Everything is forbidden.' };
            break;
        }
        if (d.allowed || d.denied === true) return d;
        if (d.reason !== '') reasons.push(d.reason);
      }
      return { allowed: false, reason: reasons.join(', ') };
    },
    async rulesFor(user, namespace): Promise<PolicyRule[]> {
      return modes.includes('RBAC') ? rbac.rulesFor(user, namespace) : [];
    },
    close() {
      rbac.close();
    },
    // SelfSubjectRulesReview says so, as kube-apiserver does for the Webhook mode.
    rulesIncomplete: modes.some((m) => m !== 'RBAC'),
  };
}
