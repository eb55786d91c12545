/**
 * Evaluates Envoy RBAC configs (envoy.config.rbac.v3) against the facts of a
 * connection and request — the same configs the control plane sends to
 * proxies. Each config is compiled once into closures; evaluation allocates
 * nothing per request beyond the facts themselves. Semantics follow Envoy's
 * RBAC filter docs: a policy matches when any permission AND any principal
 * match; an ALLOW filter allows when some policy matches; a DENY filter
 * denies when some policy matches.
 */
import { BlockList, isIP } from 'node:net';
import { compileSafeRegex } from '../regex/index.js';
import type {
  CidrRange,
  HeaderMatcher,
  MetadataMatcher,
  Permission,
  Principal,
  RbacFilterConfig,
  StringMatcher,
  ValueMatcher,
} from './envoy-rbac.js';

/** What is known about one connection and (for HTTP) one request. */
/** The prototype of {@link headerRecord}s: no fields at all, and none can be added. */
const NO_FIELDS: object = Object.freeze(Object.create(null) as object);

/**
 * An empty record of header fields by name: nothing inherited, so a field the message did
 * not carry (`constructor`, `toString`, `__proto__`…) reads as absent, and
 * `record['__proto__'] = v` is an ordinary field (on a plain object it would set the
 * prototype, or be dropped). Used for every header record built from a peer's fields: the
 * policy's request headers and the proxy's forwarded and upstream-response fields.
 * (Object.create(null) would do the same but gives V8 a dictionary-mode object, ~20 %
 * slower per decision.)
 */
export function headerRecord<V = string>(): Record<string, V> {
  return Object.create(NO_FIELDS) as Record<string, V>;
}

export interface RequestFacts {
  /** The peer's SPIFFE ID from its verified certificate; null for a plaintext peer. */
  readonly principal: string | null;
  /** The direct peer address. */
  readonly sourceIp?: string;
  /** The original client address (X-Forwarded-For, trusted hops). */
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort?: number;
  readonly sni?: string;
  /** Lower-case request headers including `:method`, `:authority`, `:path`; absent for TCP. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The normalised path (no query). */
  readonly path?: string;
  /** Dynamic metadata by filter (`istio_authn`: request.auth.*). */
  readonly metadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

type Check = (f: RequestFacts) => boolean;

function compileString(m: StringMatcher): (s: string | undefined) => boolean {
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if ('exact' in m) {
    const want = norm(m.exact);
    return (s) => s !== undefined && norm(s) === want;
  }
  if ('prefix' in m) {
    const want = norm(m.prefix);
    return (s) => s !== undefined && norm(s).startsWith(want);
  }
  if ('suffix' in m) {
    const want = norm(m.suffix);
    return (s) => s !== undefined && norm(s).endsWith(want);
  }
  if ('contains' in m) {
    const want = norm(m.contains);
    return (s) => s !== undefined && norm(s).includes(want);
  }
  // RE2 (Envoy's safe_regex), linear time: the whole value must match. The
  // flags are this evaluator's (dot matches newline; ignore_case folds).
  const re = compileSafeRegex(m.safe_regex.regex, { dotAll: true, ignoreCase: ic });
  return (s) => s !== undefined && re.fullMatch(s);
}

function compileCidr(c: CidrRange): (ip: string | undefined) => boolean {
  const list = new BlockList();
  const family = isIP(c.address_prefix) === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(
    c.address_prefix,
    typeof c.prefix_len === 'number' ? c.prefix_len : c.prefix_len.value,
    family,
  );
  return (ip) => {
    if (ip === undefined) return false;
    const v = isIP(ip);
    if (v === 0) return false;
    return list.check(ip, v === 6 ? 'ipv6' : 'ipv4');
  };
}

function compileHeader(h: HeaderMatcher): Check {
  const name = h.name.toLowerCase();
  let check: (v: string | undefined) => boolean;
  if (h.string_match !== undefined) check = compileString(h.string_match);
  else if (h.present_match !== undefined) {
    const want = h.present_match;
    check = (v) => (v !== undefined) === want;
  } else check = (v) => v !== undefined;
  const invert = h.invert_match === true;
  return (f) => {
    const value = f.headers?.[name];
    // Envoy: an absent header never matches, even inverted (unless present_match).
    if (value === undefined && h.present_match === undefined) return false;
    return check(value) !== invert;
  };
}

function compileValue(v: ValueMatcher): (x: unknown) => boolean {
  if ('string_match' in v) {
    const s = compileString(v.string_match);
    return (x) => typeof x === 'string' && s(x);
  }
  if ('list_match' in v) {
    const inner = compileValue(v.list_match.one_of);
    // A scalar claim is treated as a one-element list (Istio: claims may be string or list of string).
    return (x) => (Array.isArray(x) ? x.some(inner) : inner(x));
  }
  const want = v.present_match;
  return (x) => (x !== undefined && x !== null) === want;
}

function lookup(root: unknown, keys: readonly string[]): unknown {
  let cur = root;
  for (const k of keys) {
    // Own properties only: a policy key such as `__proto__` or `constructor` finds nothing.
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Compiles an RBAC Permission into a predicate. */
export function compilePermission(p: Permission): Check {
  if ('any' in p) return () => true;
  if ('and_rules' in p) {
    const all = p.and_rules.rules.map(compilePermission);
    return (f) => all.every((c) => c(f));
  }
  if ('or_rules' in p) {
    const any = p.or_rules.rules.map(compilePermission);
    return (f) => any.some((c) => c(f));
  }
  if ('not_rule' in p) {
    const inner = compilePermission(p.not_rule);
    return (f) => !inner(f);
  }
  if ('header' in p) return compileHeader(p.header);
  if ('url_path' in p) {
    const s = compileString(p.url_path.path);
    return (f) => f.path !== undefined && s(f.path);
  }
  if ('destination_ip' in p) {
    const c = compileCidr(p.destination_ip);
    return (f) => c(f.destinationIp);
  }
  if ('destination_port' in p) {
    const port = p.destination_port;
    return (f) => f.destinationPort === port;
  }
  if ('destination_port_range' in p) {
    const start = p.destination_port_range.start ?? 0;
    const end = p.destination_port_range.end ?? 0;
    return (f) =>
      f.destinationPort !== undefined && f.destinationPort >= start && f.destinationPort < end;
  }
  if ('metadata' in p) return compileMetadata(p.metadata);
  if ('requested_server_name' in p) {
    const sni = compileString(p.requested_server_name);
    return (f) => sni(f.sni);
  }
  // A kind this evaluator does not know must reject the whole config (never match-nothing).
  throw new Error(`unsupported RBAC permission kind ${kindOf(p)}`);
}

/** The field name of an unknown RBAC permission/principal, for the rejection reason. */
function kindOf(value: unknown): string {
  // Decoded protos also name the set oneof member (`identifier`, `rule`): report just the kind.
  const keys =
    typeof value === 'object' && value !== null
      ? Object.keys(value)
          .filter((k) => k !== 'identifier' && k !== 'rule')
          .slice(0, 3)
          .join(',')
      : '';
  return keys === '' ? '(none set)' : JSON.stringify(keys);
}

/** Envoy's MetadataMatcher on the request's dynamic metadata of one filter. */
function compileMetadata(m: MetadataMatcher): Check {
  const keys = m.path.map((k) => k.key);
  const check = compileValue(m.value);
  return (f) => {
    const md = f.metadata?.[m.filter];
    if (md === undefined) return false;
    // Istio's istio_authn keys are flat ("request.auth.claims") then nested claim names.
    return check(lookup(md, keys));
  };
}

/** Compiles an RBAC Principal into a predicate. */
export function compilePrincipal(p: Principal): Check {
  if ('any' in p) return () => true;
  if ('and_ids' in p) {
    const all = p.and_ids.ids.map(compilePrincipal);
    return (f) => all.every((c) => c(f));
  }
  if ('or_ids' in p) {
    const any = p.or_ids.ids.map(compilePrincipal);
    return (f) => any.some((c) => c(f));
  }
  if ('not_id' in p) {
    const inner = compilePrincipal(p.not_id);
    return (f) => !inner(f);
  }
  if ('authenticated' in p) {
    // A plaintext peer has no principal: it never matches `authenticated`.
    const s = compileString(p.authenticated.principal_name);
    return (f) => f.principal !== null && s(f.principal);
  }
  if ('direct_remote_ip' in p) {
    const c = compileCidr(p.direct_remote_ip);
    return (f) => c(f.sourceIp);
  }
  if ('remote_ip' in p) {
    const c = compileCidr(p.remote_ip);
    return (f) => c(f.remoteIp ?? f.sourceIp);
  }
  if ('header' in p) return compileHeader(p.header);
  if (!('metadata' in p)) throw new Error(`unsupported RBAC principal kind ${kindOf(p)}`);
  return compileMetadata(p.metadata);
}

export interface CompiledRbac {
  /** The first matching enforced policy's name, or undefined. */
  readonly match: (f: RequestFacts) => string | undefined;
  /** The first matching shadow (dry-run) policy's name, or undefined. */
  readonly shadowMatch: (f: RequestFacts) => string | undefined;
  readonly enforced: boolean;
  readonly action: 'ALLOW' | 'DENY' | 'LOG' | undefined;
}

/**
 * The exact peer principals a Principal can match, when it can only match
 * those (an `authenticated` exact matcher, possibly ANDed with more); else
 * undefined. Used to index policies by principal.
 */
function requiredPrincipals(p: Principal): Set<string> | undefined {
  if ('authenticated' in p) {
    const m = p.authenticated.principal_name;
    return 'exact' in m && m.ignore_case !== true ? new Set([m.exact]) : undefined;
  }
  if ('and_ids' in p) {
    let best: Set<string> | undefined;
    for (const id of p.and_ids.ids) {
      const s = requiredPrincipals(id);
      if (s !== undefined && (best === undefined || s.size < best.size)) best = s;
    }
    return best;
  }
  if ('or_ids' in p) return unionAll(p.or_ids.ids);
  return undefined;
}

function unionAll(ids: readonly Principal[]): Set<string> | undefined {
  if (ids.length === 0) return undefined;
  const out = new Set<string>();
  for (const id of ids) {
    const s = requiredPrincipals(id);
    if (s === undefined) return undefined;
    for (const v of s) out.add(v);
  }
  return out;
}

interface CompiledPolicy {
  readonly name: string;
  readonly order: number;
  readonly check: (f: RequestFacts) => boolean;
}

function compilePolicies(
  policies: RbacFilterConfig['rules'],
): (f: RequestFacts) => string | undefined {
  if (policies === undefined) return () => undefined;
  const sorted = Object.entries(policies.policies).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)); // Envoy evaluates policies in name order
  const unindexed: CompiledPolicy[] = [];
  const byPrincipal = new Map<string, CompiledPolicy[]>();
  sorted.forEach(([name, p], order) => {
    const perms = p.permissions.map(compilePermission);
    const princ = p.principals.map(compilePrincipal);
    const compiled: CompiledPolicy = {
      name,
      order,
      check: (f) => perms.some((c) => c(f)) && princ.some((c) => c(f)),
    };
    const required = unionAll(p.principals);
    if (required === undefined) {
      unindexed.push(compiled);
    } else {
      for (const id of required) {
        const list = byPrincipal.get(id);
        if (list === undefined) byPrincipal.set(id, [compiled]);
        else list.push(compiled);
      }
    }
  });
  const empty: CompiledPolicy[] = [];
  return (f) => {
    // Only policies that can match this peer, merged with the unindexed ones in name order.
    const indexed = f.principal === null ? empty : (byPrincipal.get(f.principal) ?? empty);
    let i = 0;
    let j = 0;
    while (i < indexed.length || j < unindexed.length) {
      const a = indexed[i];
      const b = unindexed[j];
      const next = a !== undefined && (b === undefined || a.order < b.order) ? a : b;
      if (next === undefined) break;
      if (next === a) i++;
      else j++;
      if (next.check(f)) return next.name;
    }
    return undefined;
  };
}

/** Compiles an RBAC filter config once; the result is called per request. */
export function compileRbacFilter(config: RbacFilterConfig): CompiledRbac {
  return {
    match: compilePolicies(config.rules),
    shadowMatch: compilePolicies(config.shadow_rules),
    enforced: config.rules !== undefined,
    action: config.rules?.action ?? config.shadow_rules?.action,
  };
}
