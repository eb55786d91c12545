/**
 * Shared pieces of the resource compilers: the field allow-list check (oneof
 * aware), the extension @type check and the RE2 check of every config regex.
 * The proxy implements a defined subset of Envoy's API (docs/xds-contract.md);
 * a field or filter outside it NACKs the whole response (fail closed).
 */
import { EXTENSION_TYPE_URLS } from '../../xds/index.js';
import { rewriteProblem, safeRegexProblem } from '../../regex/index.js';

/**
 * Extensions the outbound listener implements. Others (ext_authz, Lua,
 * global rate limit, …) are NACKed until their filter lands: accepting a filter and
 * not enforcing it would fail open.
 */
export const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.fault,
  EXTENSION_TYPE_URLS.cors,
  EXTENSION_TYPE_URLS.corsPolicy,
  EXTENSION_TYPE_URLS.localRateLimit,
  EXTENSION_TYPE_URLS.upstreamTls,
  EXTENSION_TYPE_URLS.httpProtocolOptions,
]);

/** Extensions the gateway listeners implement (checked field by field in gateway-validation). */
export const GATEWAY_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpRbac,
  EXTENSION_TYPE_URLS.jwtAuthn,
  EXTENSION_TYPE_URLS.httpExtAuthz,
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.fault,
  EXTENSION_TYPE_URLS.cors,
  EXTENSION_TYPE_URLS.downstreamTls,
  EXTENSION_TYPE_URLS.tcpProxy,
  EXTENSION_TYPE_URLS.tlsInspector,
  EXTENSION_TYPE_URLS.localRateLimit,
]);

/** Extensions the inbound listeners implement (checked field by field in inbound-validation). */
export const INBOUND_EXTENSIONS: ReadonlySet<string> = new Set([
  EXTENSION_TYPE_URLS.httpConnectionManager,
  EXTENSION_TYPE_URLS.router,
  EXTENSION_TYPE_URLS.httpRbac,
  EXTENSION_TYPE_URLS.networkRbac,
  EXTENSION_TYPE_URLS.jwtAuthn,
  EXTENSION_TYPE_URLS.httpExtAuthz,
  EXTENSION_TYPE_URLS.networkExtAuthz,
  EXTENSION_TYPE_URLS.tcpProxy,
  EXTENSION_TYPE_URLS.downstreamTls,
  EXTENSION_TYPE_URLS.tlsInspector,
  EXTENSION_TYPE_URLS.localRateLimit,
]);

export function unsupportedKeys(object: unknown, allowed: ReadonlySet<string>): string[] {
  if (!isRecord(object)) return [];
  return Object.keys(object).filter(
    (key) => !allowed.has(key) && !isOneofDiscriminator(object, key),
  );
}

/**
 * Every config regex — `safe_regex` string matchers (routes, headers, query
 * parameters, CORS origins, RBAC), `regex_rewrite` pattern and substitution —
 * is NACKed unless RE2 accepts it within the length and program-size bounds
 * (src/regex; Envoy rejects such a config too, so nothing half-applies).
 */
export function collectRegexProblems(value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collectRegexProblems(v, `${path}[${String(i)}]`, problems);
    });
    return;
  }
  if (!isRecord(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const at = path === '' ? key : `${path}.${key}`;
    if ((key === 'safe_regex' || key === 'safe_regex_match') && isRecord(child)) {
      const regex = child['regex'];
      const problem =
        typeof regex === 'string' ? safeRegexProblem(regex) : 'regex must be a string';
      if (problem !== undefined) problems.push(`${at}.regex: ${problem}`);
      continue;
    }
    if (key === 'regex_rewrite' && isRecord(child)) {
      const pattern = isRecord(child['pattern']) ? child['pattern']['regex'] : undefined;
      const substitution = child['substitution'];
      const problem =
        typeof pattern !== 'string'
          ? 'pattern.regex must be a string'
          : rewriteProblem(pattern, typeof substitution === 'string' ? substitution : '');
      if (problem !== undefined) problems.push(`${at}: ${problem}`);
      continue;
    }
    collectRegexProblems(child, at, problems);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `key` is a oneof discriminator (protobufjs `oneofs: true`) (its value names a sibling field). */
export function isOneofDiscriminator(object: Record<string, unknown>, key: string): boolean {
  const value = object[key];
  return typeof value === 'string' && value !== key && value in object;
}

/** Every `typed_config`/`typed_extension_protocol_options` @type must be one we implement. */
export function collectUnsupportedExtensions(
  value: unknown,
  path: string,
  problems: string[],
  supported: ReadonlySet<string> = SUPPORTED_EXTENSIONS,
): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      collectUnsupportedExtensions(item, `${path}[${String(index)}]`, problems, supported);
    });
    return;
  }
  if (!isRecord(value)) return;
  const type = value['@type'];
  if (typeof type === 'string' && path !== '' && !supported.has(type)) {
    problems.push(`${path}: unsupported extension ${type}`);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    collectUnsupportedExtensions(child, path === '' ? key : `${path}.${key}`, problems, supported);
  }
}

/**
 * Pushes `<at>: unsupported field <key>` for each field of `object` outside `allowed`
 * (oneof aware). Lists of shared-type fields are built with `fieldsOf`/`allFieldsOf`
 * (src/xds/fields.ts), so the compiler checks them against the type both ends build.
 */
export function checkFields(
  object: unknown,
  allowed: Iterable<string>,
  at: string,
  problems: string[],
): void {
  for (const key of unsupportedKeys(object, new Set(allowed)))
    problems.push(`${at}: unsupported field ${key}`);
}
