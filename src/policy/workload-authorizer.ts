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
} from './jwt-authn.js';
import { normalizePath, type PathNormalization } from './path-normalization.js';
import {
  applicablePolicies,
  DEFAULT_ROOT_NAMESPACE,
  resolvePeerAuthentication,
  type Workload,
} from './policy-selection.js';
import { compileRbacFilter, type CompiledRbac, type RequestFacts } from './rbac-evaluator.js';

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
}

function compileFilters(raw: AuthorizationFilters): CompiledFilters {
  return {
    ...(raw.custom === undefined ? {} : { custom: compileRbacFilter(raw.custom) }),
    ...(raw.deny === undefined ? {} : { deny: compileRbacFilter(raw.deny) }),
    ...(raw.allow === undefined ? {} : { allow: compileRbacFilter(raw.allow) }),
    ...(raw.audit === undefined ? {} : { audit: compileRbacFilter(raw.audit) }),
    raw,
  };
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
  readonly #requestAuthentication: string | null;
  readonly #xff: XffOptions;

  constructor(config: EnvoyPolicyConfig) {
    this.#xff = config.xff ?? {};
    this.#normalization = config.pathNormalization ?? 'BASE';
    this.#http = compileFilters(config.http);
    this.#tcp = compileFilters(config.tcp);
    this.#jwt = createJwtAuthenticator(config.jwt);
    this.#requestAuthentication = config.requestAuthentication ?? null;
  }

  /** The RBAC filter configs for a protocol. */
  rbacFilters(protocol: Protocol): AuthorizationFilters {
    return protocol === 'http' ? this.#http.raw : this.#tcp.raw;
  }

  async decide(req: AuthenticatedRequest): Promise<Decision> {
    const base = {
      principal: req.principal,
      ...(req.sourceIp === undefined ? {} : { sourceIp: req.sourceIp }),
      ...(req.destinationIp === undefined ? {} : { destinationIp: req.destinationIp }),
      destinationPort: req.destinationPort,
      ...(req.sni === undefined ? {} : { sni: req.sni }),
    };
    if (req.protocol === 'tcp') return authorize(this.#tcp, base, {});

    const target = req.path ?? '/';
    const normalized = normalizePath(target, this.#normalization);
    if (!normalized.ok)
      return {
        decision: 'DENY',
        status: 400,
        policy: null,
        rule: null,
        reason: `bad request path: ${normalized.reason}`,
      };
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    headers[':method'] = (req.method ?? 'GET').toUpperCase();
    headers[':authority'] = req.host ?? headers['host'] ?? '';
    headers[':path'] = target;
    // Istio: CORS preflight requests skip JWT authentication (browsers send no credentials on them).
    const preflight =
      headers[':method'] === 'OPTIONS' &&
      headers['origin'] !== undefined &&
      headers['access-control-request-method'] !== undefined;
    const jwt = preflight
      ? ({ status: 200, metadata: {}, headersToSet: {}, headersToRemove: [] } as const)
      : await this.#jwt.authenticate({ headers, query: normalized.query });
    if (jwt.status === 401) {
      return {
        decision: 'DENY',
        status: 401,
        policy: this.#requestAuthentication,
        rule: null,
        reason: `invalid JWT: ${jwt.reason}`,
      };
    }
    const remoteIp =
      req.remoteIp ?? trustedClientAddress(headers['x-forwarded-for'], req.sourceIp, this.#xff);
    const facts: RequestFacts = {
      ...base,
      ...(remoteIp === undefined ? {} : { remoteIp }),
      headers,
      path: normalized.path,
      metadata: { istio_authn: jwt.metadata },
    };
    return authorize(this.#http, facts, {
      headersToSet: jwt.headersToSet,
      headersToRemove: jwt.headersToRemove,
    });
  }
}

function authorize(
  f: CompiledFilters,
  facts: RequestFacts,
  extra: Pick<Decision, 'headersToSet' | 'headersToRemove'>,
): Decision {
  let dryRun: Decision['dryRun'];
  const shadow = (c: CompiledRbac | undefined, action: string): void => {
    const m = c?.shadowMatch(facts);
    if (m !== undefined && dryRun === undefined) dryRun = { ...named(m), action };
  };
  shadow(f.custom, 'CUSTOM');
  shadow(f.deny, 'DENY');
  const withDry = (d: Decision): Decision => ({
    ...d,
    ...(dryRun === undefined ? {} : { dryRun }),
    ...extra,
  });

  const custom = f.custom?.match(facts);
  if (custom !== undefined) {
    const n = named(custom);
    return withDry({
      decision: 'DENY',
      status: 403,
      ...n,
      reason: `denied by CUSTOM policy ${n.policy} rule ${n.rule} (no external authorizer configured for its provider: fail closed)`,
    });
  }
  const deny = f.deny?.match(facts);
  if (deny !== undefined) {
    const n = named(deny);
    return withDry({
      decision: 'DENY',
      status: 403,
      ...n,
      reason: `denied by DENY policy ${n.policy} rule ${n.rule}`,
    });
  }
  shadow(f.allow, 'ALLOW');
  if (f.allow === undefined || !f.allow.enforced) {
    return withDry({
      decision: 'ALLOW',
      status: 200,
      policy: null,
      rule: null,
      reason: 'allowed: no ALLOW policy applies to this workload',
    });
  }
  const allow = f.allow.match(facts);
  if (allow !== undefined) {
    const n = named(allow);
    return withDry({
      decision: 'ALLOW',
      status: 200,
      ...n,
      reason: `allowed by ALLOW policy ${n.policy} rule ${n.rule}`,
    });
  }
  return withDry({
    decision: 'DENY',
    status: 403,
    policy: null,
    rule: null,
    reason: 'denied: ALLOW policies apply to this workload and none matched (RBAC: access denied)',
  });
}

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
