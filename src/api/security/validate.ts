/**
 * Validation of Istio's security kinds: the schema (types, unknown fields)
 * plus Istio's semantic rules, every problem reported with its field path.
 */
import { isIP } from 'node:net';
import {
  isPathTemplate,
  namespaceRegex,
  pathTemplateRegex,
  safeRegexProblem,
  serviceAccountRegex,
  trustDomainRegex,
} from '../../regex/index.js';
import { createValidator, joinPath, type ValidationIssue } from '../validation.js';
import {
  AuthorizationPolicySchema,
  PeerAuthenticationSchema,
  RequestAuthenticationSchema,
  type AuthorizationPolicy,
  type PeerAuthentication,
  type RequestAuthentication,
  type SecurityResource,
} from './schemas.js';

const validators = {
  PeerAuthentication: createValidator(PeerAuthenticationSchema),
  RequestAuthentication: createValidator(RequestAuthenticationSchema),
  AuthorizationPolicy: createValidator(AuthorizationPolicySchema),
} as const;

export type SecurityKind = keyof typeof validators;
export const SECURITY_KINDS = Object.keys(validators) as SecurityKind[];

/** `when` keys Istio supports (istio.io authorization-policy conditions). */
const CONDITION_KEYS = [
  /^request\.headers\[[^\]]+\]$/,
  /^source\.ip$/,
  /^remote\.ip$/,
  /^source\.namespace$/,
  /^source\.principal$/,
  /^source\.serviceAccount$/,
  /^request\.auth\.principal$/,
  /^request\.auth\.audiences$/,
  /^request\.auth\.presenter$/,
  /^request\.auth\.claims(\[[^\]]+\])+$/,
  /^destination\.ip$/,
  /^destination\.port$/,
  /^connection\.sni$/,
  // Istio's extension keys: `experimental.envoy.filters.<filter>[<key>]`, matched against the
  // filter's dynamic metadata (pilot/pkg/security/authz/model/generator.go envoyFilterGenerator).
  /^experimental\.envoy\.filters\.[^[\]]+\[[^[\]]+\]$/,
];

/** A Kubernetes name segment of a service account (`<sa>` or `<ns>/<sa>`). */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Istio's path-template rules (pkg/config/security CheckValidPathTemplate):
 * `{*}` and `{**}` only as whole segments, `{**}` last, no other `{`/`}`, and
 * no other `*` in a path that uses a template.
 */
export function pathTemplateError(path: string): string | undefined {
  const template = path.includes('{*}') || path.includes('{**}');
  let matchAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if (glob === '{*}' && !matchAny) continue;
    if (glob === '{**}' && !matchAny) {
      matchAny = true;
      continue;
    }
    if (/[{}]/.test(glob))
      return `invalid or unsupported path segment ${JSON.stringify(glob)}: '{' or '}' beyond a supported path template ({*} or a last {**})`;
    if (template && glob.includes('*'))
      return `invalid or unsupported path segment ${JSON.stringify(glob)}: '*' beyond a supported path template`;
  }
  return undefined;
}

function isCidrOrIp(v: string): boolean {
  const [ip, bits, ...rest] = v.split('/');
  if (rest.length > 0 || ip === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}

function validatePort(v: string, path: string, issues: ValidationIssue[]): void {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    issues.push({ path, message: `invalid port ${JSON.stringify(v)}` });
}

/**
 * The RE2 pattern a value becomes in the proxy's RBAC filter must be within
 * src/regex's bounds (1,024 bytes, 1,024 instructions): refused here with the
 * field, not NACKed by every proxy that gets the policy.
 */
function checkCompiledRegex(
  regex: string | undefined,
  path: string,
  value: string,
  issues: ValidationIssue[],
): void {
  if (regex === undefined) return;
  const problem = safeRegexProblem(regex);
  if (problem !== undefined)
    issues.push({
      path,
      message: `${JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)} compiles to a regular expression over the proxy's bound (${problem}); split it into shorter values`,
    });
}

function semanticAuthz(p: AuthorizationPolicy, issues: ValidationIssue[]): void {
  const spec = p.spec ?? {};
  const policyNamespace = p.metadata.namespace ?? 'default';
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' && spec.provider === undefined) {
    issues.push({ path: 'spec.provider', message: 'CUSTOM action requires a provider' });
  }
  if (action !== 'CUSTOM' && spec.provider !== undefined) {
    issues.push({
      path: 'spec.provider',
      message: 'provider is only allowed with the CUSTOM action',
    });
  }
  if (
    (action === 'DENY' || action === 'CUSTOM' || action === 'AUDIT') &&
    spec.rules === undefined
  ) {
    issues.push({ path: 'spec.rules', message: `${action} action requires at least one rule` });
  }
  (spec.rules ?? []).forEach((rule, i) => {
    const rp = joinPath('spec.rules', i);
    (rule.from ?? []).forEach((f, j) => {
      const sp = `${joinPath(joinPath(rp, 'from'), j)}.source`;
      const fields = Object.entries(f.source).filter(([, v]) => v !== undefined);
      if (fields.length === 0)
        issues.push({
          path: sp,
          message:
            'must not be empty (an empty source matches nothing in Istio; remove it or add a field)',
        });
      for (const [name, values] of fields) {
        if (
          action === 'CUSTOM' &&
          /^(not)?(principals|Principals|namespaces|Namespaces|requestPrincipals|RequestPrincipals)$/.test(
            name,
          )
        ) {
          issues.push({
            path: joinPath(sp, name),
            message: 'not supported with the CUSTOM action',
          });
        }
        (values ?? []).forEach((v, k) => {
          const at = joinPath(joinPath(sp, name), k);
          if (/^(not)?[nN]amespaces$/.test(name))
            checkCompiledRegex(namespaceRegex(v), at, v, issues);
          if (/^(not)?[sS]erviceAccounts$/.test(name))
            checkCompiledRegex(serviceAccountRegex(policyNamespace, v), at, v, issues);
          if (/^(not)?[tT]rustDomains$/.test(name))
            checkCompiledRegex(trustDomainRegex(v), at, v, issues);
        });
        if (/^(not)?([iI]pBlocks|[rR]emoteIpBlocks)$/.test(name)) {
          (values ?? []).forEach((v, k) => {
            if (!isCidrOrIp(v))
              issues.push({
                path: joinPath(joinPath(sp, name), k),
                message: `invalid IP address or CIDR ${JSON.stringify(v)}`,
              });
          });
        }
        if (/^(not)?[sS]erviceAccounts$/.test(name)) {
          // Istio: `<sa>` (the policy's namespace) or `<ns>/<sa>`, no wildcards.
          (values ?? []).forEach((v, k) => {
            const parts = v.split('/');
            if (parts.length > 2 || !parts.every((x) => K8S_NAME.test(x)))
              issues.push({
                path: joinPath(joinPath(sp, name), k),
                message: `must be <service-account> or <namespace>/<service-account> (Kubernetes names, no wildcards), got ${JSON.stringify(v)}`,
              });
          });
        }
      }
    });
    (rule.to ?? []).forEach((t, j) => {
      const op = `${joinPath(joinPath(rp, 'to'), j)}.operation`;
      const fields = Object.entries(t.operation).filter(([, v]) => v !== undefined);
      if (fields.length === 0)
        issues.push({
          path: op,
          message:
            'must not be empty (an empty operation matches nothing in Istio; remove it or add a field)',
        });
      for (const [name, values] of fields) {
        if (/^(not)?[pP]orts$/.test(name))
          (values ?? []).forEach((v, k) => {
            validatePort(v, joinPath(joinPath(op, name), k), issues);
          });
        if (/^(not)?[pP]aths$/.test(name)) {
          // A path that does not start with "/" is valid in Istio; it simply never matches.
          (values ?? []).forEach((v, k) => {
            const error = pathTemplateError(v);
            if (error !== undefined)
              issues.push({ path: joinPath(joinPath(op, name), k), message: error });
            else if (isPathTemplate(v))
              checkCompiledRegex(pathTemplateRegex(v), joinPath(joinPath(op, name), k), v, issues);
          });
        }
      }
    });
    (rule.when ?? []).forEach((c, j) => {
      const cp = joinPath(joinPath(rp, 'when'), j);
      if (!CONDITION_KEYS.some((re) => re.test(c.key)))
        issues.push({
          path: `${cp}.key`,
          message: `unknown or unsupported condition key ${JSON.stringify(c.key)}`,
        });
      if (action === 'CUSTOM' && /^(source\.|request\.auth\.)/.test(c.key))
        issues.push({
          path: `${cp}.key`,
          message: `${c.key} is not supported with the CUSTOM action`,
        });
      if ((c.values ?? []).length === 0 && (c.notValues ?? []).length === 0)
        issues.push({ path: cp, message: 'condition needs values or notValues' });
      if (c.key === 'source.ip' || c.key === 'remote.ip' || c.key === 'destination.ip') {
        [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
          if (!isCidrOrIp(v))
            issues.push({ path: cp, message: `invalid IP address or CIDR ${JSON.stringify(v)}` });
        });
      }
      [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
        if (c.key === 'source.namespace') checkCompiledRegex(namespaceRegex(v), cp, v, issues);
        if (c.key === 'source.serviceAccount')
          checkCompiledRegex(serviceAccountRegex(policyNamespace, v), cp, v, issues);
      });
      if (c.key === 'destination.port')
        [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
          validatePort(v, cp, issues);
        });
    });
  });
}

function semanticRequestAuthn(r: RequestAuthentication, issues: ValidationIssue[]): void {
  (r.spec?.jwtRules ?? []).forEach((rule, i) => {
    const p = joinPath('spec.jwtRules', i);
    if (rule.jwks !== undefined && rule.jwksUri !== undefined)
      issues.push({ path: p, message: 'jwks and jwksUri cannot both be set' });
    if (rule.jwksUri !== undefined) {
      let ok: boolean;
      try {
        const u = new URL(rule.jwksUri);
        ok = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok)
        issues.push({
          path: `${p}.jwksUri`,
          message: `must be an http(s) URL, got ${JSON.stringify(rule.jwksUri)}`,
        });
    }
    if (rule.jwks !== undefined) {
      try {
        const parsed = JSON.parse(rule.jwks) as { keys?: unknown };
        if (!Array.isArray(parsed.keys)) throw new Error('no keys');
      } catch {
        issues.push({ path: `${p}.jwks`, message: 'must be a JSON Web Key Set ({"keys": [...]})' });
      }
    }
    if (rule.jwks === undefined && rule.jwksUri === undefined) {
      // Istio falls back to OIDC discovery on the issuer; Palisade needs the issuer to be a URL then.
      if (!/^https?:\/\//.test(rule.issuer))
        issues.push({
          path: p,
          message: 'needs jwks or jwksUri (OIDC discovery needs an http(s) issuer)',
        });
    }
  });
}

function semanticPeerAuthn(p: PeerAuthentication, issues: ValidationIssue[]): void {
  if (p.spec?.portLevelMtls !== undefined && p.spec.selector === undefined) {
    issues.push({ path: 'spec.portLevelMtls', message: 'portLevelMtls requires selector' });
  }
  for (const port of Object.keys(p.spec?.portLevelMtls ?? {})) {
    const n = Number(port);
    if (n < 1 || n > 65535)
      issues.push({ path: joinPath('spec.portLevelMtls', port), message: `invalid port ${port}` });
  }
}

/** True when `object` is one of the three security kinds (any version). */
export function isSecurityObject(
  object: unknown,
): object is { apiVersion: string; kind: SecurityKind } {
  if (typeof object !== 'object' || object === null) return false;
  const o = object as { apiVersion?: unknown; kind?: unknown };
  return (
    typeof o.apiVersion === 'string' &&
    o.apiVersion.startsWith('security.istio.io/') &&
    typeof o.kind === 'string' &&
    o.kind in validators
  );
}

/** Validates one security object; returns it typed, or every issue. */
export function validateSecurityResource(
  object: unknown,
): { ok: true; value: SecurityResource } | { ok: false; issues: readonly ValidationIssue[] } {
  if (!isSecurityObject(object))
    return {
      ok: false,
      issues: [
        {
          path: 'kind',
          message:
            'not a security.istio.io PeerAuthentication, RequestAuthentication or AuthorizationPolicy',
        },
      ],
    };
  const r = validators[object.kind](object);
  if (!r.ok) return r;
  const issues: ValidationIssue[] = [];
  const value = r.value;
  if (value.kind === 'AuthorizationPolicy') semanticAuthz(value, issues);
  else if (value.kind === 'RequestAuthentication') semanticRequestAuthn(value, issues);
  else semanticPeerAuthn(value, issues);
  return issues.length === 0 ? { ok: true, value } : { ok: false, issues };
}
