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
import type {
  CidrRange,
  Permission,
  Principal,
  Rbac,
  RbacFilterConfig,
  RbacPolicy,
  StringMatcher,
} from './envoy-rbac.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
const AUTHN_FILTER = 'istio_authn';

export type Protocol = 'http' | 'tcp';

/** The RBAC filters for one workload and protocol, in the order they run. */
export interface AuthorizationFilters {
  /** CUSTOM policies whose provider is not configured: enforced as DENY (fail closed). */
  readonly custom?: RbacFilterConfig;
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

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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

function pathMatcher(value: string): StringMatcher {
  // Istio path templates: {*} one segment, {**} the rest (only last).
  if (value.includes('{*}') || value.includes('{**}')) {
    const regex = value
      .split('/')
      .map((seg) => (seg === '{*}' ? '[^/]+' : seg === '{**}' ? '.+' : escapeRegex(seg)))
      .join('/');
    return { safe_regex: { regex } };
  }
  return stringMatcher(value);
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
  if (ns === '*') return { safe_regex: { regex: '.*/ns/[^/]+/.*' } };
  const body = ns.endsWith('*')
    ? `${escapeRegex(ns.slice(0, -1))}[^/]*`
    : ns.startsWith('*')
      ? `[^/]*${escapeRegex(ns.slice(1))}`
      : escapeRegex(ns);
  return { safe_regex: { regex: `.*/ns/${body}/.*` } };
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

const SOURCE_PRINCIPAL: Record<string, (v: string) => Principal> = {
  principals: (v) => authenticated(stringMatcher(v, { prefix: 'spiffe://' })),
  requestPrincipals: (v) => authnMetadata(['request.auth.principal'], stringMatcher(v)),
  namespaces: (v) => authenticated(namespaceMatcher(v)),
  serviceAccounts: (v) =>
    authenticated({ suffix: `/ns/${v.split('/')[0] ?? ''}/sa/${v.split('/')[1] ?? ''}` }),
  ipBlocks: (v) => ({ direct_remote_ip: cidr(v) }),
  remoteIpBlocks: (v) => ({ remote_ip: cidr(v) }),
};
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
  methods: (v) => ({ header: { name: ':method', string_match: { exact: v } } }),
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
): { principal?: Principal; permission?: Permission } {
  const header = /^request\.headers\[(.+)\]$/.exec(key);
  if (header !== null)
    return {
      principal: {
        header: { name: (header[1] ?? '').toLowerCase(), string_match: stringMatcher(v) },
      },
    };
  const claims = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(key);
  if (claims !== null) {
    const path = [...(claims[1] ?? '').matchAll(/\[([^\]]+)\]/g)].map((m) => m[1] ?? '');
    return { principal: authnMetadata(['request.auth.claims', ...path], stringMatcher(v), true) };
  }
  switch (key) {
    case 'source.ip':
      return { principal: { direct_remote_ip: cidr(v) } };
    case 'remote.ip':
      return { principal: { remote_ip: cidr(v) } };
    case 'source.namespace':
      return { principal: authenticated(namespaceMatcher(v)) };
    case 'source.principal':
      return { principal: authenticated(stringMatcher(v, { prefix: 'spiffe://' })) };
    case 'source.serviceAccount':
      return { principal: SOURCE_PRINCIPAL['serviceAccounts']?.(v) ?? { any: true } };
    case 'request.auth.principal':
      return { principal: authnMetadata(['request.auth.principal'], stringMatcher(v)) };
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
  readonly httpOnly: ReadonlySet<string>;
  readonly or: (xs: T[]) => T;
  readonly and: (xs: T[]) => T;
  readonly not: (x: T) => T;
  readonly any: T;
}

const PRINCIPAL_FIELDS: FieldTable<Principal> = {
  make: SOURCE_PRINCIPAL,
  httpOnly: HTTP_ONLY_SOURCE,
  or: orIds,
  and: (ids) => ({ and_ids: { ids } }),
  not: (id) => ({ not_id: id }),
  any: { any: true },
};

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
      const matcher = table.or(values.map(make));
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
): RbacPolicy | undefined {
  const dropWhole = protocol === 'tcp' && action === 'ALLOW';
  const principals = translateEntries(
    (rule.from ?? []).map((f) => f.source),
    PRINCIPAL_FIELDS,
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
    addCondition(c, conditionIds, conditionRules);
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

function addCondition(c: AuthzCondition, ids: Principal[], rules: Permission[]): void {
  for (const [values, negate] of [
    [c.values, false],
    [c.notValues, true],
  ] as const) {
    if (values === undefined || values.length === 0) continue;
    const parts = values.map((v) => conditionValue(c.key, v));
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

/**
 * Translates the AuthorizationPolicies that apply to one workload into the
 * RBAC filters for `protocol`. `knownProviders` lists configured CUSTOM
 * providers; none exist yet, so CUSTOM policies are enforced as DENY.
 */
export function translateAuthorizationPolicies(
  policies: readonly AuthorizationPolicy[],
  protocol: Protocol,
  knownProviders: readonly string[] = [],
): AuthorizationFilters {
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
    if (action === 'CUSTOM' && knownProviders.includes(p.spec?.provider?.name ?? '')) continue;
    bucket.used = true;
    if (!dry) bucket.enforced = true;
    const target = dry ? bucket.shadow : bucket.rules;
    (p.spec?.rules ?? []).forEach((rule, i) => {
      const translated = translateRule(
        rule,
        action === 'ALLOW' ? 'ALLOW' : action === 'AUDIT' ? 'AUDIT' : 'DENY',
        protocol,
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
  if (deny !== undefined) out.deny = deny;
  if (allow !== undefined) out.allow = allow;
  if (audit !== undefined) out.audit = audit;
  return out;
}
