/** Validation of Istio's networking kinds: schema plus Istio's semantic rules, with field paths. */
import { rewriteProblem, safeRegexProblem } from '../../regex/index.js';
import { grpcStatusCode } from './grpc-status.js';
import { createValidator, joinPath, type ValidationIssue } from '../validation.js';
import {
  DestinationRuleSchema,
  GatewaySchema,
  ServiceEntrySchema,
  SidecarSchema,
  VirtualServiceSchema,
  WorkloadEntrySchema,
  type DestinationRule,
  type Gateway,
  type NetworkingResource,
  type ServiceEntry,
  type VirtualService,
} from './schemas.js';

const validators = {
  VirtualService: createValidator(VirtualServiceSchema),
  DestinationRule: createValidator(DestinationRuleSchema),
  Gateway: createValidator(GatewaySchema),
  ServiceEntry: createValidator(ServiceEntrySchema),
  Sidecar: createValidator(SidecarSchema),
  WorkloadEntry: createValidator(WorkloadEntrySchema),
} as const;

export type NetworkingKind = keyof typeof validators;
export const NETWORKING_KINDS = Object.keys(validators) as NetworkingKind[];

/**
 * A StringMatch's `regex` must be RE2 (what Envoy's safe_regex runs) within the
 * bounds of src/regex, as Istio's validateStringMatchRegexp rejects it ("Istio
 * uses RE2 style regex-based match"); an empty regex is rejected too.
 */
function checkRegex(value: object | undefined, path: string, issues: ValidationIssue[]): void {
  if (value === undefined || !('regex' in value) || typeof value.regex !== 'string') return;
  const problem = safeRegexProblem(value.regex);
  if (problem !== undefined)
    issues.push({
      path: `${path}.regex`,
      message: `invalid regular expression ${JSON.stringify(value.regex)}: ${problem} (RE2 syntax, https://github.com/google/re2/wiki/Syntax)`,
    });
}

/** Every regex of one HTTP route: matches, CORS origins and uriRegexRewrite (Istio validateHTTPRoute). */
function checkRouteRegexes(
  r: NonNullable<VirtualService['spec']['http']>[number],
  p: string,
  issues: ValidationIssue[],
): void {
  (r.match ?? []).forEach((m, j) => {
    const mp = joinPath(joinPath(p, 'match'), j);
    checkRegex(m.uri, `${mp}.uri`, issues);
    checkRegex(m.scheme, `${mp}.scheme`, issues);
    checkRegex(m.method, `${mp}.method`, issues);
    checkRegex(m.authority, `${mp}.authority`, issues);
    for (const [h, v] of Object.entries(m.headers ?? {}))
      checkRegex(v, joinPath(`${mp}.headers`, h), issues);
    // Istio: `regex: "*"` in withoutHeaders is not a regex; it means "header present".
    for (const [h, v] of Object.entries(m.withoutHeaders ?? {}))
      if (!('regex' in v) || v.regex !== '*')
        checkRegex(v, joinPath(`${mp}.withoutHeaders`, h), issues);
    for (const [q, v] of Object.entries(m.queryParams ?? {}))
      checkRegex(v, joinPath(`${mp}.queryParams`, q), issues);
  });
  (r.corsPolicy?.allowOrigins ?? []).forEach((o, k) => {
    checkRegex(o, joinPath(`${p}.corsPolicy.allowOrigins`, k), issues);
  });
  const rr = r.rewrite?.uriRegexRewrite;
  if (rr !== undefined) {
    const at = `${p}.rewrite.uriRegexRewrite`;
    if (rr.rewrite === '')
      issues.push({
        path: `${at}.rewrite`,
        message: 'must not be empty (uriRegexRewrite needs both match and rewrite)',
      });
    const problem = safeRegexProblem(rr.match);
    if (problem !== undefined)
      issues.push({
        path: `${at}.match`,
        message: `invalid regular expression ${JSON.stringify(rr.match)}: ${problem} (RE2 syntax, https://github.com/google/re2/wiki/Syntax)`,
      });
    else {
      const rewrite = rewriteProblem(rr.match, rr.rewrite);
      if (rewrite !== undefined) issues.push({ path: `${at}.rewrite`, message: rewrite });
    }
  }
}

function semanticVirtualService(vs: VirtualService, issues: ValidationIssue[]): void {
  const delegate = vs.spec.hosts === undefined || vs.spec.hosts.length === 0;
  if (delegate && (vs.spec.gateways ?? []).length > 0)
    issues.push({ path: 'spec.hosts', message: 'a VirtualService bound to gateways needs hosts' });
  (vs.spec.http ?? []).forEach((r, i) => {
    const p = joinPath('spec.http', i);
    const kinds = [
      r.route !== undefined,
      r.redirect !== undefined,
      r.directResponse !== undefined,
      r.delegate !== undefined,
    ].filter(Boolean).length;
    if (kinds === 0)
      issues.push({
        path: p,
        message: 'an HTTP route needs one of route, redirect, directResponse or delegate',
      });
    if (kinds > 1)
      issues.push({
        path: p,
        message: 'route, redirect, directResponse and delegate are mutually exclusive',
      });
    if (r.redirect !== undefined && r.rewrite !== undefined)
      issues.push({ path: `${p}.rewrite`, message: 'rewrite cannot be used with redirect' });
    if (r.route !== undefined && r.route.length === 0)
      issues.push({ path: `${p}.route`, message: 'must not be empty' });
    if ((r.route ?? []).length > 1 && (r.route ?? []).every((d) => (d.weight ?? 0) === 0)) {
      issues.push({
        path: `${p}.route`,
        message:
          'with several destinations, weights are required (they are normalised by their sum)',
      });
    }
    (r.match ?? []).forEach((m, j) => {
      const mp = joinPath(joinPath(p, 'match'), j);
      for (const h of Object.keys(m.headers ?? {})) {
        if (h !== h.toLowerCase())
          issues.push({
            path: joinPath(`${mp}.headers`, h),
            message: 'header names must be lower case',
          });
      }
    });
    checkRouteRegexes(r, p, issues);
    const abort = r.fault?.abort;
    if (
      abort !== undefined &&
      (abort.httpStatus === undefined) === (abort.grpcStatus === undefined)
    ) {
      issues.push({
        path: `${p}.fault.abort`,
        message: 'set exactly one of httpStatus or grpcStatus',
      });
    }
    if (abort?.grpcStatus !== undefined && grpcStatusCode(abort.grpcStatus) === undefined)
      issues.push({
        path: `${p}.fault.abort.grpcStatus`,
        message: `unknown gRPC status ${JSON.stringify(abort.grpcStatus)} (use a name in capitals such as "UNAVAILABLE")`,
      });
    if (r.fault?.delay !== undefined && r.fault.delay.fixedDelay === undefined)
      issues.push({ path: `${p}.fault.delay.fixedDelay`, message: 'required field is missing' });
    if (
      r.retries?.attempts !== undefined &&
      r.retries.attempts > 0 &&
      r.retries.perTryTimeout === '0s'
    ) {
      issues.push({ path: `${p}.retries.perTryTimeout`, message: 'must be greater than 0' });
    }
  });
}

function semanticDestinationRule(dr: DestinationRule, issues: ValidationIssue[]): void {
  const seen = new Set<string>();
  (dr.spec.subsets ?? []).forEach((s, i) => {
    if (seen.has(s.name))
      issues.push({
        path: joinPath(joinPath('spec.subsets', i), 'name'),
        message: `duplicate subset name ${JSON.stringify(s.name)}`,
      });
    seen.add(s.name);
  });
  const tls = dr.spec.trafficPolicy?.tls;
  if (
    tls?.mode === 'MUTUAL' &&
    tls.credentialName === undefined &&
    (tls.clientCertificate === undefined || tls.privateKey === undefined)
  ) {
    issues.push({
      path: 'spec.trafficPolicy.tls',
      message: 'MUTUAL needs credentialName or clientCertificate and privateKey',
    });
  }
}

function semanticGateway(gw: Gateway, issues: ValidationIssue[]): void {
  gw.spec.servers.forEach((s, i) => {
    const p = joinPath('spec.servers', i);
    const mode = s.tls?.mode;
    const proto = (s.port.protocol ?? '').toUpperCase();
    if ((proto === 'HTTPS' || proto === 'TLS') && s.tls === undefined)
      issues.push({ path: `${p}.tls`, message: `a ${proto} server needs tls settings` });
    if (
      (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') &&
      s.tls?.credentialName === undefined &&
      (s.tls?.serverCertificate === undefined || s.tls.privateKey === undefined)
    ) {
      issues.push({
        path: `${p}.tls`,
        message: `${mode} needs credentialName or serverCertificate and privateKey`,
      });
    }
    if (
      (mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') &&
      s.tls?.credentialName === undefined &&
      s.tls?.caCertificates === undefined
    ) {
      issues.push({
        path: `${p}.tls`,
        message: `${mode} needs caCertificates or a credentialName holding ca.crt`,
      });
    }
  });
}

function semanticServiceEntry(se: ServiceEntry, issues: ValidationIssue[]): void {
  const res = se.spec.resolution ?? 'NONE';
  if (
    res === 'STATIC' &&
    (se.spec.endpoints ?? []).length === 0 &&
    se.spec.workloadSelector === undefined
  ) {
    issues.push({
      path: 'spec.endpoints',
      message: 'STATIC resolution needs endpoints or a workloadSelector',
    });
  }
  (se.spec.endpoints ?? []).forEach((e, i) => {
    if (e.address === undefined)
      issues.push({
        path: joinPath(joinPath('spec.endpoints', i), 'address'),
        message: 'required field is missing',
      });
  });
  if (res !== 'NONE') {
    se.spec.hosts.forEach((h, i) => {
      if (h.startsWith('*'))
        issues.push({
          path: joinPath('spec.hosts', i),
          message: `wildcard host ${JSON.stringify(h)} needs resolution NONE`,
        });
    });
  }
}

export function isNetworkingObject(
  object: unknown,
): object is { apiVersion: string; kind: NetworkingKind } {
  if (typeof object !== 'object' || object === null) return false;
  const o = object as { apiVersion?: unknown; kind?: unknown };
  return (
    typeof o.apiVersion === 'string' &&
    o.apiVersion.startsWith('networking.istio.io/') &&
    typeof o.kind === 'string' &&
    o.kind in validators
  );
}

/** Validates one networking object; returns it typed, or every issue. */
export function validateNetworkingResource(
  object: unknown,
): { ok: true; value: NetworkingResource } | { ok: false; issues: readonly ValidationIssue[] } {
  if (!isNetworkingObject(object))
    return {
      ok: false,
      issues: [{ path: 'kind', message: 'not a networking.istio.io kind Palisade supports' }],
    };
  const r = validators[object.kind](object);
  if (!r.ok) return r;
  const issues: ValidationIssue[] = [];
  const value = r.value;
  switch (value.kind) {
    case 'VirtualService':
      semanticVirtualService(value, issues);
      break;
    case 'DestinationRule':
      semanticDestinationRule(value, issues);
      break;
    case 'Gateway':
      semanticGateway(value, issues);
      break;
    case 'ServiceEntry':
      semanticServiceEntry(value, issues);
      break;
    case 'Sidecar':
    case 'WorkloadEntry':
      break;
  }
  return issues.length === 0 ? { ok: true, value } : { ok: false, issues };
}
