/**
 * The whole inbound decision for one workload, as a sidecar makes it:
 * peer authentication (the TLS mode of the port) → JWT authentication →
 * authorization (CUSTOM → DENY → ALLOW; AUDIT only marks). Every step runs
 * the Envoy filter configs the control plane would send (translated once,
 * compiled once), so `palisade check authz` proves the data-plane logic.
 */
import { isIP } from 'node:net';
import type {
  AuthorizationPolicy,
  PeerAuthentication,
  RequestAuthentication,
} from '../api/security/index.js';
import {
  parseRbacPolicyName,
  translateAuthorizationPolicies,
  type AuthorizationFilters,
  type Protocol,
} from './authorization-translation.js';
import {
  createJwtAuthenticator,
  translateRequestAuthentications,
  type JwtAuthenticationConfig,
  type JwtAuthenticator,
  type JwtOutcome,
} from './jwt-authn.js';
import { normalizePath, type PathNormalization } from './path-normalization.js';
import {
  applicablePolicies,
  DEFAULT_ROOT_NAMESPACE,
  resolvePeerAuthentication,
  type Workload,
} from './policy-selection.js';
import {
  compileRbacFilter,
  headerRecord,
  type CompiledRbac,
  type RequestFacts,
} from './rbac-evaluator.js';

export interface SecurityPolicies {
  readonly peerAuthentications: readonly PeerAuthentication[];
  readonly requestAuthentications: readonly RequestAuthentication[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
}

export interface AuthorizerOptions {
  readonly rootNamespace?: string;
  readonly pathNormalization?: PathNormalization;
  /** meshConfig `trustDomain` and `trustDomainAliases` (principals match under each). */
  readonly trustDomain?: string;
  readonly trustDomainAliases?: readonly string[];
  /** How the original client address is taken from X-Forwarded-For (remoteIpBlocks, remote.ip). */
  readonly xff?: XffOptions;
  /**
   * meshConfig extension providers the sidecar enforces through ext_authz. They change only
   * {@link WorkloadAuthorizer.envoyFilters} (what the control plane sends); decisions still
   * count a CUSTOM match as a denial, since the provider's answer is not known here.
   */
  readonly knownProviders?: readonly string[];
  /** The same for TCP ports (HTTP-only providers build no TCP filter). */
  readonly knownTcpProviders?: readonly string[];
}

/**
 * Envoy's HTTP connection manager settings that decide the "trusted client
 * address" (docs: config/http/http_conn_man/headers, x-forwarded-for):
 * `xff_num_trusted_hops` and `use_remote_address`. Istio sets them on
 * gateways from meshConfig `defaultConfig.gatewayTopology.numTrustedProxies`.
 */
export interface XffOptions {
  readonly numTrustedHops?: number;
  readonly useRemoteAddress?: boolean;
}

/**
 * The trusted client address as Envoy computes it: with `use_remote_address`
 * false, the (N+1)th X-Forwarded-For address from the right (N =
 * xff_num_trusted_hops); with it true, the peer itself when N is 0, else the
 * Nth address from the right. Too few addresses, or one that is not an IP,
 * fall back to the peer address.
 */
export function trustedClientAddress(
  xff: string | undefined,
  peer: string | undefined,
  options: XffOptions = {},
): string | undefined {
  const n = options.numTrustedHops ?? 0;
  const remote = options.useRemoteAddress === true;
  if (remote && n === 0) return peer;
  if (xff === undefined) return peer;
  const list = xff
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const fromRight = remote ? n : n + 1;
  const pick = list[list.length - fromRight];
  if (pick === undefined || list.length < fromRight || isIP(pick) === 0) return peer;
  return pick;
}

export interface InboundRequest {
  /** Peer SPIFFE ID (from mTLS), or null for a plaintext peer. */
  readonly principal: string | null;
  readonly sourceIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort: number;
  readonly sni?: string;
  readonly protocol: Protocol;
  readonly method?: string;
  readonly host?: string;
  /** The request target as received (path and query). */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The original client address, when known outright (`check authz`);
   * otherwise it comes from X-Forwarded-For as the XFF options say.
   */
  readonly remoteIp?: string;
}

export interface Decision {
  readonly decision: 'ALLOW' | 'DENY';
  readonly status: 200 | 400 | 401 | 403 | 'connection-refused';
  readonly policy: string | null;
  readonly rule: number | null;
  readonly reason: string;
  /** Dry-run (shadow) result, when a dry-run policy matched. */
  readonly dryRun?: { readonly policy: string; readonly rule: number; readonly action: string };
  /** What the proxy must change on the request before forwarding (JWT outputs). */
  readonly headersToSet?: Readonly<Record<string, string>>;
  readonly headersToRemove?: readonly string[];
}

interface CompiledFilters {
  readonly custom?: CompiledRbac;
  readonly deny?: CompiledRbac;
  readonly allow?: CompiledRbac;
  readonly audit?: CompiledRbac;
  readonly raw: AuthorizationFilters;
  /** Decisions by role and the RBAC policy name that matched, built on first use (config-bound). */
  readonly decisions: Readonly<Record<'custom' | 'deny' | 'allow', Map<string, Decision>>>;
}

function compileFilters(raw: AuthorizationFilters): CompiledFilters {
  return {
    ...(raw.custom === undefined ? {} : { custom: compileRbacFilter(raw.custom) }),
    ...(raw.deny === undefined ? {} : { deny: compileRbacFilter(raw.deny) }),
    ...(raw.allow === undefined ? {} : { allow: compileRbacFilter(raw.allow) }),
    ...(raw.audit === undefined ? {} : { audit: compileRbacFilter(raw.audit) }),
    raw,
    decisions: { custom: new Map(), deny: new Map(), allow: new Map() },
  };
}

/**
 * `s.toLowerCase()`, and `s` itself when it has no upper-case ASCII letter and nothing beyond
 * ASCII: a proxy's header records are lower-case already, and `toLowerCase` was a runtime call
 * per field per request (~1 % of an inbound proxy).
 */
function lowerCased(s: string): string {
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c > 0x7e) return s.toLowerCase();
  }
  return s;
}

/** `s.toUpperCase()`, and `s` itself when it needs no change (a method as sent: `GET`). */
function upperCased(s: string): string {
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || c > 0x7e) return s.toUpperCase();
  }
  return s;
}

function named(name: string): { policy: string; rule: number } {
  return parseRbacPolicyName(name) ?? { policy: name, rule: 0 };
}

/** Inputs of {@link EnvoyPolicyEvaluator}: the Envoy filter configs of one inbound port. */
export interface EnvoyPolicyConfig {
  /** The jwt_authn config, when RequestAuthentications apply. */
  readonly jwt: JwtAuthenticationConfig | undefined;
  /** RBAC filters of the HTTP filter chain, by role. */
  readonly http: AuthorizationFilters;
  /** RBAC filters of the network (TCP) filter chain, by role. */
  readonly tcp: AuthorizationFilters;
  readonly pathNormalization?: PathNormalization;
  /** `ns/name` of the RequestAuthentication, named in 401 decisions. */
  readonly requestAuthentication?: string | null;
  /** The HTTP connection manager's X-Forwarded-For settings. */
  readonly xff?: XffOptions;
}

/** A request after peer authentication: the peer principal is final. */
export type AuthenticatedRequest = Omit<InboundRequest, 'principal'> & {
  readonly principal: string | null;
};

/**
 * Runs the Envoy filter configs of one inbound port on a request: jwt_authn,
 * then RBAC (CUSTOM → DENY → ALLOW; AUDIT only marks). The proxy builds one
 * from the filters it receives over xDS; `check authz` from the translation.
 */
export class EnvoyPolicyEvaluator {
  readonly #normalization: PathNormalization;
  readonly #http: CompiledFilters;
  readonly #tcp: CompiledFilters;
  readonly #jwt: JwtAuthenticator;
  readonly #jwtConfigured: boolean;
  readonly #requestAuthentication: string | null;
  readonly #xff: XffOptions;

  constructor(config: EnvoyPolicyConfig) {
    this.#xff = config.xff ?? {};
    this.#normalization = config.pathNormalization ?? 'BASE';
    this.#http = compileFilters(config.http);
    this.#tcp = compileFilters(config.tcp);
    this.#jwt = createJwtAuthenticator(config.jwt);
    this.#jwtConfigured = config.jwt !== undefined;
    this.#requestAuthentication = config.requestAuthentication ?? null;
  }

  /** The RBAC filter configs for a protocol. */
  rbacFilters(protocol: Protocol): AuthorizationFilters {
    return protocol === 'http' ? this.#http.raw : this.#tcp.raw;
  }

  async decide(req: AuthenticatedRequest): Promise<Decision> {
    const begun = this.#begin(req);
    if ('decision' in begun) return begun.decision;
    const { http } = begun;
    const jwt = await this.#jwt.authenticate({ headers: http.headers, query: http.query });
    return this.#authorizeHttp(req, http, jwt);
  }

  /**
   * The decision when it needs no waiting (TCP, or HTTP without jwt_authn to run — a JWT
   * check may fetch keys), else undefined: {@link decide} gives the same answer either way,
   * and a proxy skips a promise per request on the common path.
   */
  decideNow(req: AuthenticatedRequest): Decision | undefined {
    const begun = this.#begin(req);
    return 'decision' in begun ? begun.decision : undefined;
  }

  /** The decision, or the facts of an HTTP request that waits for jwt_authn first. */
  #begin(req: AuthenticatedRequest): { decision: Decision } | { http: HttpFacts } {
    // One fixed-shape facts object per request (absent facts are undefined, which every
    // matcher reads as absent); decisions come from per-policy caches (authorize below).
    if (req.protocol === 'tcp')
      return {
        decision: authorize(
          this.#tcp,
          {
            principal: req.principal,
            sourceIp: req.sourceIp,
            remoteIp: undefined,
            destinationIp: req.destinationIp,
            destinationPort: req.destinationPort,
            sni: req.sni,
            headers: undefined,
            path: undefined,
            metadata: undefined,
          },
          undefined,
        ),
      };
    const http = this.#httpFacts(req);
    if ('decision' in http) return http;
    const { headers } = http;
    // Istio: CORS preflight requests skip JWT authentication (browsers send no credentials on them).
    const preflight =
      headers[':method'] === 'OPTIONS' &&
      headers['origin'] !== undefined &&
      headers['access-control-request-method'] !== undefined;
    if (this.#jwtConfigured && !preflight) return { http };
    return { decision: this.#authorizeHttp(req, http, NO_JWT) };
  }

  /** An HTTP request's path and header facts, or the 400 for a path that does not normalise. */
  #httpFacts(req: AuthenticatedRequest): HttpFacts | { decision: Decision } {
    const target = req.path ?? '/';
    const normalized = normalizePath(target, this.#normalization);
    if (!normalized.ok)
      return {
        decision: {
          decision: 'DENY',
          status: 400,
          policy: null,
          rule: null,
          reason: `bad request path: ${normalized.reason}`,
        },
      };
    // No prototype: a header the request did not send reads as absent, whatever its name.
    const headers = headerRecord();
    const given = req.headers;
    if (given !== undefined)
      for (const k in given) {
        const v = given[k];
        if (v !== undefined) headers[lowerCased(k)] = v;
      }
    const method = upperCased(req.method ?? 'GET');
    headers[':method'] = method;
    headers[':authority'] = req.host ?? headers['host'] ?? '';
    headers[':path'] = target;
    return { headers, path: normalized.path, query: normalized.query };
  }

  #authorizeHttp(req: AuthenticatedRequest, http: HttpFacts, jwt: JwtOutcome): Decision {
    if (jwt.status === 401) {
      return {
        decision: 'DENY',
        status: 401,
        policy: this.#requestAuthentication,
        rule: null,
        reason: `invalid JWT: ${jwt.reason}`,
      };
    }
    const { headers } = http;
    return authorize(
      this.#http,
      {
        principal: req.principal,
        sourceIp: req.sourceIp,
        remoteIp:
          req.remoteIp ?? trustedClientAddress(headers['x-forwarded-for'], req.sourceIp, this.#xff),
        destinationIp: req.destinationIp,
        destinationPort: req.destinationPort,
        sni: req.sni,
        headers,
        path: http.path,
        metadata: jwt === NO_JWT ? NO_JWT_METADATA : { istio_authn: jwt.metadata },
      },
      jwt,
    );
  }
}

/** What {@link EnvoyPolicyEvaluator} reads of an HTTP request besides its connection. */
interface HttpFacts {
  readonly headers: Record<string, string>;
  readonly path: string;
  readonly query: string;
}

/** jwt_authn's outcome when it does not run (no RequestAuthentication, or a CORS preflight). */
const NO_JWT = Object.freeze({
  status: 200,
  metadata: Object.freeze({}),
  headersToSet: Object.freeze({}),
  headersToRemove: Object.freeze([]),
} as const);
const NO_JWT_METADATA = Object.freeze({ istio_authn: NO_JWT.metadata });

/** What the HTTP decision carries from jwt_authn (the headers it sets and removes). */
type JwtOutput = Pick<Required<Decision>, 'headersToSet' | 'headersToRemove'>;

/**
 * RBAC on one request: CUSTOM → DENY → ALLOW, with the first dry-run (shadow) match noted.
 * The decision for a matched policy is built once per policy and reused; only a request with
 * a dry-run match or JWT outputs gets an object of its own. A request with neither (the
 * usual one) allocates nothing here.
 */
function authorize(f: CompiledFilters, facts: RequestFacts, jwt: JwtOutput | undefined): Decision {
  const dryRun = shadowOf(f.custom, 'CUSTOM', facts) ?? shadowOf(f.deny, 'DENY', facts);
  const custom = f.custom?.match(facts);
  if (custom !== undefined) return finish(decisionFor(f, 'custom', custom), dryRun, jwt);
  const deny = f.deny?.match(facts);
  if (deny !== undefined) return finish(decisionFor(f, 'deny', deny), dryRun, jwt);
  const dry = dryRun ?? shadowOf(f.allow, 'ALLOW', facts);
  if (f.allow === undefined || !f.allow.enforced) return finish(NO_ALLOW_POLICY, dry, jwt);
  const allow = f.allow.match(facts);
  if (allow !== undefined) return finish(decisionFor(f, 'allow', allow), dry, jwt);
  return finish(NOTHING_ALLOWED, dry, jwt);
}

const NO_ALLOW_POLICY: Decision = Object.freeze({
  decision: 'ALLOW',
  status: 200,
  policy: null,
  rule: null,
  reason: 'allowed: no ALLOW policy applies to this workload',
});
const NOTHING_ALLOWED: Decision = Object.freeze({
  decision: 'DENY',
  status: 403,
  policy: null,
  rule: null,
  reason: 'denied: ALLOW policies apply to this workload and none matched (RBAC: access denied)',
});

function shadowOf(
  c: CompiledRbac | undefined,
  action: string,
  facts: RequestFacts,
): Decision['dryRun'] {
  const m = c?.shadowMatch(facts);
  return m === undefined ? undefined : { ...named(m), action };
}

/** The decision when the `role` filter's policy `name` matched (cached per filter and role). */
function decisionFor(
  f: CompiledFilters,
  role: 'custom' | 'deny' | 'allow',
  name: string,
): Decision {
  const known = f.decisions[role].get(name);
  if (known !== undefined) return known;
  const n = named(name);
  const d: Decision = Object.freeze(
    role === 'custom'
      ? {
          decision: 'DENY',
          status: 403,
          ...n,
          reason: `denied by CUSTOM policy ${n.policy} rule ${String(n.rule)} (no external authorizer configured for its provider: fail closed)`,
        }
      : role === 'deny'
        ? {
            decision: 'DENY',
            status: 403,
            ...n,
            reason: `denied by DENY policy ${n.policy} rule ${String(n.rule)}`,
          }
        : {
            decision: 'ALLOW',
            status: 200,
            ...n,
            reason: `allowed by ALLOW policy ${n.policy} rule ${String(n.rule)}`,
          },
  );
  f.decisions[role].set(name, d);
  return d;
}

/** `d` with the dry-run match and jwt_authn's header changes, in Decision's field order. */
function finish(d: Decision, dryRun: Decision['dryRun'], jwt: JwtOutput | undefined): Decision {
  if (dryRun === undefined && jwt === undefined) return d;
  if (dryRun === undefined && jwt === NO_JWT) {
    const cached = WITH_NO_JWT.get(d);
    if (cached !== undefined) return cached;
  }
  const out: {
    -readonly [K in keyof Decision]: Decision[K];
  } = { decision: d.decision, status: d.status, policy: d.policy, rule: d.rule, reason: d.reason };
  if (dryRun !== undefined) out.dryRun = dryRun;
  if (jwt !== undefined) {
    out.headersToSet = jwt.headersToSet;
    out.headersToRemove = jwt.headersToRemove;
  }
  if (dryRun === undefined && jwt === NO_JWT) WITH_NO_JWT.set(d, Object.freeze(out));
  return out;
}

/** The HTTP form of each cached decision when jwt_authn did not run (no own outputs). */
const WITH_NO_JWT = new WeakMap<Decision, Decision>();

/** The authorizer for one workload: translate and compile once, decide per request. */
export class WorkloadAuthorizer {
  readonly #policies: SecurityPolicies;
  readonly #workload: Workload;
  readonly #root: string;
  readonly #evaluator: EnvoyPolicyEvaluator;
  readonly #jwt: JwtAuthenticationConfig | undefined;
  readonly #envoy: { readonly http: AuthorizationFilters; readonly tcp: AuthorizationFilters };

  constructor(policies: SecurityPolicies, workload: Workload, options: AuthorizerOptions = {}) {
    this.#policies = policies;
    this.#workload = workload;
    this.#root = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    const authz = applicablePolicies(policies.authorizationPolicies, workload, this.#root);
    const requestAuthn = applicablePolicies(policies.requestAuthentications, workload, this.#root);
    const ra = requestAuthn[0];
    const translation = {
      ...(options.trustDomain === undefined ? {} : { trustDomain: options.trustDomain }),
      ...(options.trustDomainAliases === undefined
        ? {}
        : { trustDomainAliases: options.trustDomainAliases }),
    };
    this.#jwt = translateRequestAuthentications(requestAuthn);
    this.#envoy = {
      http: translateAuthorizationPolicies(authz, 'http', {
        ...translation,
        knownProviders: options.knownProviders ?? [],
      }),
      tcp: translateAuthorizationPolicies(authz, 'tcp', {
        ...translation,
        knownProviders: options.knownTcpProviders ?? [],
      }),
    };
    this.#evaluator = new EnvoyPolicyEvaluator({
      jwt: this.#jwt,
      http: translateAuthorizationPolicies(authz, 'http', translation),
      tcp: translateAuthorizationPolicies(authz, 'tcp', translation),
      pathNormalization: options.pathNormalization ?? 'BASE',
      ...(options.xff === undefined ? {} : { xff: options.xff }),
      requestAuthentication:
        ra === undefined ? null : `${ra.metadata.namespace ?? 'default'}/${ra.metadata.name}`,
    });
  }

  /** The jwt_authn config for this workload, when RequestAuthentications apply. */
  jwtConfig(): JwtAuthenticationConfig | undefined {
    return this.#jwt;
  }

  /** The Envoy RBAC filter configs for a protocol, as decisions use them (CUSTOM as deny). */
  rbacFilters(protocol: Protocol): AuthorizationFilters {
    return this.#evaluator.rbacFilters(protocol);
  }

  /** The authorization filter configs the control plane sends (ext_authz for known providers). */
  envoyFilters(protocol: Protocol): AuthorizationFilters {
    return this.#envoy[protocol];
  }

  async decide(req: InboundRequest): Promise<Decision> {
    const pa = resolvePeerAuthentication(
      this.#policies.peerAuthentications,
      this.#workload,
      req.destinationPort,
      this.#root,
    );
    if (pa.mode === 'STRICT' && req.principal === null) {
      return {
        decision: 'DENY',
        status: 'connection-refused',
        policy: pa.policy,
        rule: null,
        reason: `plaintext connection refused: mTLS is ${pa.reason}`,
      };
    }
    // On a DISABLE port the connection is plaintext: the peer's identity is not known.
    return this.#evaluator.decide({
      ...req,
      principal: pa.mode === 'DISABLE' ? null : req.principal,
    });
  }
}

export function createWorkloadAuthorizer(
  policies: SecurityPolicies,
  workload: Workload,
  options: AuthorizerOptions = {},
): WorkloadAuthorizer {
  return new WorkloadAuthorizer(policies, workload, options);
}
