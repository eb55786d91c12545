/**
 * AuthorizationPolicy → Envoy RBAC, following Istio's translation
 * (pilot/pkg/security/authz/builder): one RBAC policy per rule, named
 * `ns[<ns>]-policy[<name>]-rule[<i>]`; DENY and ALLOW in separate filters
 * (DENY runs first); dry-run policies (`istio.io/dry-run: "true"`) as
 * shadow rules; AUDIT as LOG. Within a rule every `from` and `to` entry is
 * ORed, the fields of one entry ANDed, the values of one field ORed, and
 * `notX` fields negated (Istio: "A rule matches when any from AND any to AND
 * every when match").
 *
 * For TCP (the network RBAC filter) HTTP-only fields cannot be evaluated:
 * in ALLOW the whole rule is dropped (it can never allow a TCP connection);
 * in DENY and AUDIT only the field is dropped, so the rule matches more
 * (Istio: "fail closed for TCP").
 */
import type { AuthorizationPolicy, AuthzCondition, AuthzRule } from '../api/security/index.js';
// From src/regex, not the api barrel: that loads the validators (Ajv), and the proxy imports
// this module (test/proxy/proxy-imports.test.ts).
import {
  isPathTemplate,
  namespaceRegex,
  pathTemplateRegex,
  serviceAccountRegex,
  trustDomainRegex,
} from '../regex/index.js';
import type {
  CidrRange,
  HeaderMatcher,
  Permission,
  Principal,
  Rbac,
  RbacFilterConfig,
  RbacPolicy,
  StringMatcher,
} from './envoy-rbac.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
/** Istio's extauthz builder: shadow policy names start with this; ext_authz runs when one matched. */
export const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';
export const EXT_AUTHZ_STAT_PREFIX = 'istio_ext_authz_';
const AUTHN_FILTER = 'istio_authn';

export type Protocol = 'http' | 'tcp';

/** The RBAC filters for one workload and protocol, in the order they run. */
export interface AuthorizationFilters {
  /** CUSTOM policies whose provider is not configured: enforced as DENY (fail closed). */
  readonly custom?: RbacFilterConfig;
  /**
   * CUSTOM policies whose provider is an enforceable external authorizer (Istio's
   * extauthz builder): shadow DENY rules named `istio-ext-authz-…` under the stat
   * prefix `istio_ext_authz_`; a match turns the provider's ext_authz filter on.
   */
  readonly extAuthz?: { readonly provider: string; readonly rbac: RbacFilterConfig };
  readonly deny?: RbacFilterConfig;
  readonly allow?: RbacFilterConfig;
  readonly audit?: RbacFilterConfig;
}

/** `ns[foo]-policy[bar]-rule[0]` → { policy: 'foo/bar', rule: 0 } */
export function parseRbacPolicyName(name: string): { policy: string; rule: number } | undefined {
  const m = /^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(name);
  return m === null ? undefined : { policy: `${m[1] ?? ''}/${m[2] ?? ''}`, rule: Number(m[3]) };
}

export function rbacPolicyName(namespace: string, name: string, rule: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

/** Istio string semantics: `*` (present, non-empty), `abc*` prefix, `*abc` suffix, else exact. */
export function stringMatcher(
  value: string,
  options: { prefix?: string; ignoreCase?: boolean } = {},
): StringMatcher {
  const pre = options.prefix ?? '';
  const ic = options.ignoreCase === true ? { ignore_case: true } : {};
  if (value === '*') return { safe_regex: { regex: '.+' }, ...ic };
  if (value.endsWith('*')) return { prefix: pre + value.slice(0, -1), ...ic };
  if (value.startsWith('*')) return { suffix: value.slice(1), ...ic };
  return { exact: pre + value, ...ic };
}

/** Istio path values: templates (`{*}`, `{**}`) as Envoy's uri_template, else Istio string semantics. */
function pathMatcher(value: string): StringMatcher {
  // Templates as Envoy's uri_template (the regex built where validation size-checks it).
  if (isPathTemplate(value)) return { safe_regex: { regex: pathTemplateRegex(value) } };
  return stringMatcher(value);
}

/**
 * Istio's HeaderMatcher semantics (pilot/pkg/security/authz/matcher/header.go):
 * `*` is presence, `*abc` suffix, `abc*` prefix, else exact. Used for `methods`
 * (the `:method` pseudo-header) and `request.headers[...]`.
 */
function headerMatcher(name: string, value: string): HeaderMatcher {
  if (value === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(value) };
}

function cidr(value: string): CidrRange {
  const [ip = '', bits] = value.split('/');
  return {
    address_prefix: ip,
    prefix_len: { value: bits === undefined ? (ip.includes(':') ? 128 : 32) : Number(bits) },
  };
}

function namespaceMatcher(ns: string): StringMatcher {
  // Istio matches the namespace segment of the peer's SPIFFE ID.
  return { safe_regex: { regex: namespaceRegex(ns) } };
}

const authenticated = (m: StringMatcher): Principal => ({ authenticated: { principal_name: m } });
const authnMetadata = (keys: readonly string[], m: StringMatcher, list = false): Principal => ({
  metadata: {
    filter: AUTHN_FILTER,
    path: keys.map((key) => ({ key })),
    value: list ? { list_match: { one_of: { string_match: m } } } : { string_match: m },
  },
});

const orIds = (ids: Principal[]): Principal =>
  ids.length === 1 ? (ids[0] as Principal) : { or_ids: { ids } };
const orRules = (rules: Permission[]): Permission =>
  rules.length === 1 ? (rules[0] as Permission) : { or_rules: { rules } };

/** What a policy's translation depends on besides its rules. */
interface TranslationContext {
  /** The policy's namespace (a bare `serviceAccounts` entry means this namespace). */
  readonly namespace: string;
  /** The mesh's trust domain then its aliases; undefined when not configured. */
  readonly trustDomains?: readonly string[];
}

/** `trustDomains` values (Istio string semantics) against the peer's SPIFFE ID. */
function trustDomainMatcher(td: string): StringMatcher {
  const regex = trustDomainRegex(td);
  return regex === undefined ? { prefix: `spiffe://${td}/` } : { safe_regex: { regex } };
}

export { serviceAccountRegex };

const ISTIO_DEFAULT_TRUST_DOMAIN = 'cluster.local';

/**
 * Istio's trust-domain migration (pilot/pkg/security/trustdomain/bundle.go
 * ReplaceTrustDomainAliases): a principal `<td>/ns/<ns>/sa/<sa>` whose trust
 * domain is the mesh's, one of its aliases, or `cluster.local` (a pointer to
 * the local trust domain) matches under the trust domain and every alias. A
 * principal of another shape, or with a `*` trust domain, is kept as is.
 */
export function expandTrustDomainAliases(
  principals: readonly string[],
  trustDomains: readonly string[] | undefined,
): string[] {
  if (trustDomains === undefined || trustDomains.length === 0) return [...principals];
  const out: string[] = [];
  const push = (p: string): void => {
    if (!out.includes(p)) out.push(p);
  };
  for (const principal of principals) {
    const parts = principal.split('/');
    const td = parts[0] ?? '';
    if (parts.length !== 5 || td === '*') {
      push(principal);
      continue;
    }
    const known = trustDomains.some((x) => matchesIstioString(td, x));
    if (!known && td !== ISTIO_DEFAULT_TRUST_DOMAIN) {
      push(principal);
      continue;
    }
    for (const alias of trustDomains) {
      // A `*`-prefixed trust domain that already covers this alias stays as written.
      if (td.startsWith('*') && alias.endsWith(td.slice(1))) push(principal);
      else push([alias, ...parts.slice(1)].join('/'));
    }
  }
  return out;
}

/** Istio's stringMatch of bundle.go: pattern `*x` suffix, `x*` prefix, `*` any, else exact. */
function matchesIstioString(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

const ANY_NON_EMPTY: StringMatcher = { safe_regex: { regex: '.+' } };
const claim = (name: string, m: StringMatcher): Principal =>
  authnMetadata(['request.auth.claims', name], m);

/**
 * `requestPrincipals` / `request.auth.principal`, as Istio's
 * requestPrincipalGenerator: split at the last `/` into issuer and subject,
 * each matched against the token's `iss` and `sub` claims. `*` means both
 * non-empty; `iss` without `/` means issuer `iss` with an empty subject;
 * `iss/*` any non-empty subject; a leading `*` then `/sub`: any issuer.
 */
function requestPrincipal(value: string): Principal {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  let matchIss: StringMatcher;
  let matchSub: StringMatcher;
  if (value === '*') {
    matchIss = ANY_NON_EMPTY;
    matchSub = ANY_NON_EMPTY;
  } else if (value.startsWith('*')) {
    if (found) {
      matchIss = iss === '*' ? ANY_NON_EMPTY : { suffix: iss.slice(1) };
      matchSub = { exact: sub };
    } else {
      matchIss = ANY_NON_EMPTY;
      matchSub = { suffix: value.slice(1) };
    }
  } else if (value.endsWith('*')) {
    if (found) {
      matchIss = { exact: iss };
      matchSub = sub === '*' ? ANY_NON_EMPTY : { prefix: sub.slice(0, -1) };
    } else {
      matchIss = { prefix: value.slice(0, -1) };
      matchSub = ANY_NON_EMPTY;
    }
  } else {
    matchIss = { exact: iss };
    matchSub = { exact: sub };
  }
  return { and_ids: { ids: [claim('iss', matchIss), claim('sub', matchSub)] } };
}

function sourcePrincipals(ctx: TranslationContext): Record<string, (v: string) => Principal> {
  return {
    principals: (v) => authenticated(stringMatcher(v, { prefix: 'spiffe://' })),
    requestPrincipals: requestPrincipal,
    namespaces: (v) => authenticated(namespaceMatcher(v)),
    serviceAccounts: (v) =>
      authenticated({ safe_regex: { regex: serviceAccountRegex(ctx.namespace, v) } }),
    trustDomains: (v) => authenticated(trustDomainMatcher(v)),
    ipBlocks: (v) => ({ direct_remote_ip: cidr(v) }),
    remoteIpBlocks: (v) => ({ remote_ip: cidr(v) }),
  };
}

const HTTP_ONLY_SOURCE = new Set([
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
]);

const OPERATION_PERMISSION: Record<string, (v: string) => Permission> = {
  hosts: (v) => ({
    header: { name: ':authority', string_match: stringMatcher(v, { ignoreCase: true }) },
  }),
  methods: (v) => ({ header: headerMatcher(':method', v) }),
  paths: (v) => ({ url_path: { path: pathMatcher(v) } }),
  ports: (v) => ({ destination_port: Number(v) }),
};
const HTTP_ONLY_OPERATION = new Set([
  'hosts',
  'notHosts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
]);

function isHttpOnlyCondition(key: string): boolean {
  return key.startsWith('request.') || key === 'remote.ip';
}

function conditionValue(
  key: string,
  v: string,
  ctx: TranslationContext,
): { principal?: Principal; permission?: Permission } {
  const header = /^request\.headers\[(.+)\]$/.exec(key);
  if (header !== null)
    return {
      principal: { header: headerMatcher((header[1] ?? '').toLowerCase(), v) },
    };
  const claims = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(key);
  if (claims !== null) {
    const path = [...(claims[1] ?? '').matchAll(/\[([^\]]+)\]/g)].map((m) => m[1] ?? '');
    return { principal: authnMetadata(['request.auth.claims', ...path], stringMatcher(v), true) };
  }
  const filter = /^experimental\.(envoy\.filters\.[^[\]]+)\[([^[\]]+)\]$/.exec(key);
  if (filter !== null) {
    // Istio's envoyFilterGenerator: `[v]` matches one element of a list value, else the string.
    const list = v.startsWith('[') && v.endsWith(']');
    const m = stringMatcher(list ? v.replace(/^\[+|\]+$/g, '') : v);
    return {
      permission: {
        metadata: {
          filter: filter[1] ?? '',
          path: [{ key: filter[2] ?? '' }],
          value: list ? { list_match: { one_of: { string_match: m } } } : { string_match: m },
        },
      },
    };
  }
  switch (key) {
    case 'source.ip':
      return { principal: { direct_remote_ip: cidr(v) } };
    case 'remote.ip':
      return { principal: { remote_ip: cidr(v) } };
    case 'source.namespace':
      return { principal: authenticated(namespaceMatcher(v)) };
    case 'source.principal': {
      const ids = expandTrustDomainAliases([v], ctx.trustDomains).map((p) =>
        authenticated(stringMatcher(p, { prefix: 'spiffe://' })),
      );
      return { principal: orIds(ids) };
    }
    case 'source.serviceAccount':
      return {
        principal: authenticated({ safe_regex: { regex: serviceAccountRegex(ctx.namespace, v) } }),
      };
    case 'request.auth.principal':
      return { principal: requestPrincipal(v) };
    case 'request.auth.audiences':
      return { principal: authnMetadata(['request.auth.audiences'], stringMatcher(v), true) };
    case 'request.auth.presenter':
      return { principal: authnMetadata(['request.auth.presenter'], stringMatcher(v)) };
    case 'destination.ip':
      return { permission: { destination_ip: cidr(v) } };
    case 'destination.port':
      return { permission: { destination_port: Number(v) } };
    case 'connection.sni':
      return { permission: { requested_server_name: stringMatcher(v) } };
    default:
      // Validation rejects unknown keys; match nothing rather than everything.
      return { principal: { not_id: { any: true } } };
  }
}

/** How the fields of a source (→ Principal) or operation (→ Permission) translate. */
interface FieldTable<T> {
  readonly make: Readonly<Record<string, (v: string) => T>>;
  /** Rewrites a field's values before translation (trust-domain aliases). */
  readonly expand?: (field: string, values: readonly string[]) => readonly string[];
  readonly httpOnly: ReadonlySet<string>;
  readonly or: (xs: T[]) => T;
  readonly and: (xs: T[]) => T;
  readonly not: (x: T) => T;
  readonly any: T;
}

const principalFields = (ctx: TranslationContext): FieldTable<Principal> => ({
  make: sourcePrincipals(ctx),
  expand: (field, values) =>
    field === 'principals' ? expandTrustDomainAliases(values, ctx.trustDomains) : values,
  httpOnly: HTTP_ONLY_SOURCE,
  or: orIds,
  and: (ids) => ({ and_ids: { ids } }),
  not: (id) => ({ not_id: id }),
  any: { any: true },
});

const PERMISSION_FIELDS: FieldTable<Permission> = {
  make: OPERATION_PERMISSION,
  httpOnly: HTTP_ONLY_OPERATION,
  or: orRules,
  and: (rules) => ({ and_rules: { rules } }),
  not: (rule) => ({ not_rule: rule }),
  any: { any: true },
};

/**
 * One entry per `from`/`to` item: its fields ANDed, each field's values
 * ORed, `notX` negated. Undefined when the whole rule must be dropped (an
 * HTTP-only field in an ALLOW rule on TCP).
 */
function translateEntries<T>(
  entries: readonly Readonly<Record<string, readonly string[] | undefined>>[],
  table: FieldTable<T>,
  protocol: Protocol,
  dropWhole: boolean,
): T[] | undefined {
  const out: T[] = [];
  for (const entry of entries) {
    const parts: T[] = [];
    for (const [field, values] of Object.entries(entry)) {
      if (values === undefined) continue;
      if (protocol === 'tcp' && table.httpOnly.has(field)) {
        if (dropWhole) return undefined;
        continue;
      }
      const negated = field.startsWith('not');
      const base = negated ? `${field[3]?.toLowerCase() ?? ''}${field.slice(4)}` : field;
      const make = table.make[base];
      // Validation rejects unknown fields; never let one widen a rule silently.
      if (make === undefined)
        throw new Error(`no translation for AuthorizationPolicy field ${field}`);
      const matcher = table.or((table.expand?.(base, values) ?? values).map(make));
      parts.push(negated ? table.not(matcher) : matcher);
    }
    out.push(parts.length === 0 ? table.any : table.and(parts));
  }
  return out;
}

/**
 * Translates one rule into an RBAC policy, or undefined when the rule cannot
 * apply to this protocol (an ALLOW rule with HTTP-only fields, on TCP).
 */
function translateRule(
  rule: AuthzRule,
  action: 'ALLOW' | 'DENY' | 'AUDIT',
  protocol: Protocol,
  ctx: TranslationContext,
): RbacPolicy | undefined {
  const dropWhole = protocol === 'tcp' && action === 'ALLOW';
  const principals = translateEntries(
    (rule.from ?? []).map((f) => f.source),
    principalFields(ctx),
    protocol,
    dropWhole,
  );
  const permissions = translateEntries(
    (rule.to ?? []).map((t) => t.operation),
    PERMISSION_FIELDS,
    protocol,
    dropWhole,
  );
  if (principals === undefined || permissions === undefined) return undefined;
  const conditionIds: Principal[] = [];
  const conditionRules: Permission[] = [];
  for (const c of rule.when ?? []) {
    if (protocol === 'tcp' && isHttpOnlyCondition(c.key)) {
      if (dropWhole) return undefined;
      continue;
    }
    addCondition(c, conditionIds, conditionRules, ctx);
  }
  const basePrincipals = principals.length === 0 ? [{ any: true } as Principal] : principals;
  const basePermissions = permissions.length === 0 ? [{ any: true } as Permission] : permissions;
  return {
    principals:
      conditionIds.length === 0
        ? basePrincipals
        : [{ and_ids: { ids: [orIds(basePrincipals), ...conditionIds] } }],
    permissions:
      conditionRules.length === 0
        ? basePermissions
        : [{ and_rules: { rules: [orRules(basePermissions), ...conditionRules] } }],
  };
}

function addCondition(
  c: AuthzCondition,
  ids: Principal[],
  rules: Permission[],
  ctx: TranslationContext,
): void {
  for (const [values, negate] of [
    [c.values, false],
    [c.notValues, true],
  ] as const) {
    if (values === undefined || values.length === 0) continue;
    const parts = values.map((v) => conditionValue(c.key, v, ctx));
    if (parts[0]?.permission !== undefined) {
      const p = orRules(parts.map((x) => x.permission ?? { any: true }));
      rules.push(negate ? { not_rule: p } : p);
    } else {
      const p = orIds(parts.map((x) => x.principal ?? { any: true }));
      ids.push(negate ? { not_id: p } : p);
    }
  }
}

function isDryRun(p: AuthorizationPolicy): boolean {
  return p.metadata.annotations?.[DRY_RUN_ANNOTATION]?.toLowerCase() === 'true';
}

/** Mesh-wide inputs of the translation (Istio's meshConfig). */
export interface AuthorizationTranslationOptions {
  /**
   * Providers the proxy enforces (meshConfig extensionProviders of a supported kind).
   * CUSTOM policies naming one become the ext_authz trigger; naming any other provider,
   * or two different providers on one workload (Istio: "all extension providers must be
   * the same for a specific workload"), they act as DENY (fail closed).
   */
  readonly knownProviders?: readonly string[];
  /**
   * meshConfig `trustDomain`: when set, principals match under it and every
   * `trustDomainAliases` entry (Istio's trust-domain migration).
   */
  readonly trustDomain?: string;
  readonly trustDomainAliases?: readonly string[];
}

/**
 * Translates the AuthorizationPolicies that apply to one workload into the
 * RBAC filters for `protocol`.
 */
export function translateAuthorizationPolicies(
  policies: readonly AuthorizationPolicy[],
  protocol: Protocol,
  options: AuthorizationTranslationOptions = {},
): AuthorizationFilters {
  const knownProviders = options.knownProviders ?? [];
  const customProviders = new Set(
    policies.filter((p) => p.spec?.action === 'CUSTOM').map((p) => p.spec?.provider?.name ?? ''),
  );
  const [onlyProvider] = customProviders;
  const extProvider =
    customProviders.size === 1 &&
    onlyProvider !== undefined &&
    knownProviders.includes(onlyProvider)
      ? onlyProvider
      : undefined;
  const extRules: Record<string, RbacPolicy> = {};
  const trustDomains =
    options.trustDomain === undefined
      ? undefined
      : [options.trustDomain, ...(options.trustDomainAliases ?? [])];
  const buckets = {
    custom: {
      rules: {} as Record<string, RbacPolicy>,
      shadow: {} as Record<string, RbacPolicy>,
      used: false,
      enforced: false,
    },
    deny: {
      rules: {} as Record<string, RbacPolicy>,
      shadow: {} as Record<string, RbacPolicy>,
      used: false,
      enforced: false,
    },
    allow: {
      rules: {} as Record<string, RbacPolicy>,
      shadow: {} as Record<string, RbacPolicy>,
      used: false,
      enforced: false,
    },
    audit: {
      rules: {} as Record<string, RbacPolicy>,
      shadow: {} as Record<string, RbacPolicy>,
      used: false,
      enforced: false,
    },
  };
  for (const p of policies) {
    const action = p.spec?.action ?? 'ALLOW';
    const ns = p.metadata.namespace ?? 'default';
    const dry = isDryRun(p);
    const bucket =
      action === 'CUSTOM'
        ? buckets.custom
        : action === 'DENY'
          ? buckets.deny
          : action === 'AUDIT'
            ? buckets.audit
            : buckets.allow;
    if (action === 'CUSTOM' && extProvider !== undefined) {
      // Istio translates a dry-run CUSTOM policy to nothing that calls the provider.
      if (dry) continue;
      (p.spec?.rules ?? []).forEach((rule, i) => {
        const translated = translateRule(rule, 'DENY', protocol, {
          namespace: ns,
          ...(trustDomains === undefined ? {} : { trustDomains }),
        });
        if (translated !== undefined)
          extRules[`${EXT_AUTHZ_MATCH_PREFIX}-${rbacPolicyName(ns, p.metadata.name, i)}`] =
            translated;
      });
      continue;
    }
    bucket.used = true;
    if (!dry) bucket.enforced = true;
    const target = dry ? bucket.shadow : bucket.rules;
    (p.spec?.rules ?? []).forEach((rule, i) => {
      const translated = translateRule(
        rule,
        action === 'ALLOW' ? 'ALLOW' : action === 'AUDIT' ? 'AUDIT' : 'DENY',
        protocol,
        { namespace: ns, ...(trustDomains === undefined ? {} : { trustDomains }) },
      );
      if (translated !== undefined) target[rbacPolicyName(ns, p.metadata.name, i)] = translated;
    });
  }
  const build = (
    b: (typeof buckets)['deny'],
    action: Rbac['action'],
    prefix: string,
  ): RbacFilterConfig | undefined => {
    if (!b.used) return undefined;
    return {
      ...(b.enforced ? { rules: { action, policies: b.rules } } : {}),
      ...(Object.keys(b.shadow).length > 0
        ? { shadow_rules: { action, policies: b.shadow }, shadow_rules_stat_prefix: prefix }
        : {}),
    };
  };
  const out: { -readonly [K in keyof AuthorizationFilters]: AuthorizationFilters[K] } = {};
  const custom = build(buckets.custom, 'DENY', 'istio_dry_run_custom_');
  const deny = build(buckets.deny, 'DENY', 'istio_dry_run_deny_');
  const allow = build(buckets.allow, 'ALLOW', 'istio_dry_run_allow_');
  const audit = build(buckets.audit, 'LOG', 'istio_dry_run_audit_');
  if (custom !== undefined) out.custom = custom;
  if (extProvider !== undefined && Object.keys(extRules).length > 0)
    out.extAuthz = {
      provider: extProvider,
      rbac: {
        shadow_rules: { action: 'DENY', policies: extRules },
        shadow_rules_stat_prefix: EXT_AUTHZ_STAT_PREFIX,
      },
    };
  if (deny !== undefined) out.deny = deny;
  if (allow !== undefined) out.allow = allow;
  if (audit !== undefined) out.audit = audit;
  return out;
}
