/**
 * SPIFFE IDs: parsing, validation and formatting exactly per the SPIFFE-ID
 * standard (SPIFFE-ID.md §2: scheme, trust domain, path; §2.3 length), plus
 * Istio's `spiffe://<td>/ns/<ns>/sa/<sa>` form. Every rejection names the rule.
 */

/** A parsed, valid SPIFFE ID. */
export interface SpiffeId {
  readonly trustDomain: string;
  /** The path, `''` or starting with `/` (`/ns/default/sa/web`). */
  readonly path: string;
  /** The canonical string form. */
  readonly uri: string;
}

/** Istio's workload identity: namespace and service account in a trust domain. */
export interface WorkloadIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export type SpiffeIdResult =
  { readonly ok: true; readonly id: SpiffeId } | { readonly ok: false; readonly error: string };

/** SPIFFE-ID §2.3: implementations must support, and should not generate, more than 2048 bytes. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** SPIFFE-ID §2.3 (RFC 3986 host): a trust domain name is at most 255 bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = 'spiffe://';
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT_CHAR = /^[a-zA-Z0-9._-]$/;

function fail(error: string): SpiffeIdResult {
  return { ok: false, error };
}

/** Checks a trust domain name (SPIFFE-ID §2.1); returns the broken rule or undefined. */
export function trustDomainError(td: string): string | undefined {
  if (td.length === 0)
    return 'trust domain is missing (SPIFFE-ID §2.1: the host part must not be empty)';
  if (Buffer.byteLength(td, 'utf8') > MAX_TRUST_DOMAIN_BYTES) {
    return `trust domain exceeds ${MAX_TRUST_DOMAIN_BYTES} bytes (SPIFFE-ID §2.3)`;
  }
  for (const ch of td) {
    if (ch === '%')
      return 'trust domain must not contain percent-encoded characters (SPIFFE-ID §2.1)';
    if (!TRUST_DOMAIN_CHAR.test(ch)) {
      if (/[A-Z]/.test(ch)) return 'trust domain must be lowercase (SPIFFE-ID §2.1)';
      return `trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores; found ${JSON.stringify(ch)} (SPIFFE-ID §2.1)`;
    }
  }
  return undefined;
}

/** Checks a path (SPIFFE-ID §2.2); `''` is valid. Returns the broken rule or undefined. */
export function pathError(path: string): string | undefined {
  if (path === '') return undefined;
  if (!path.startsWith('/')) return 'path must start with "/" (SPIFFE-ID §2.2)';
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] ?? '';
    if (seg === '') {
      return i === segments.length - 1
        ? 'path must not have a trailing "/" (SPIFFE-ID §2.2)'
        : 'path must not contain empty segments (SPIFFE-ID §2.2)';
    }
    if (seg === '.' || seg === '..')
      return 'path must not contain "." or ".." segments (SPIFFE-ID §2.2)';
    for (const ch of seg) {
      if (ch === '%') return 'path must not contain percent-encoded characters (SPIFFE-ID §2.2)';
      if (!PATH_SEGMENT_CHAR.test(ch)) {
        return `path segment characters are limited to letters, numbers, dots, dashes, and underscores; found ${JSON.stringify(ch)} (SPIFFE-ID §2.2)`;
      }
    }
  }
  return undefined;
}

/** Parses and validates a SPIFFE ID, naming the first rule it breaks. Never throws. */
export function parseSpiffeId(input: string): SpiffeIdResult {
  if (typeof input !== 'string') return fail('SPIFFE ID must be a string');
  if (input.length === 0) return fail('SPIFFE ID is empty');
  if (Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_BYTES) {
    return fail(`SPIFFE ID exceeds ${MAX_SPIFFE_ID_BYTES} bytes (SPIFFE-ID §2.3)`);
  }
  if (!input.startsWith(SCHEME)) {
    if (input.toLowerCase().startsWith(SCHEME))
      return fail('scheme must be lowercase "spiffe" (SPIFFE-ID §2)');
    return fail('scheme is missing or invalid: a SPIFFE ID starts with "spiffe://" (SPIFFE-ID §2)');
  }
  const rest = input.slice(SCHEME.length);
  if (rest.includes('#')) return fail('fragment is not allowed (SPIFFE-ID §2)');
  if (rest.includes('?')) return fail('query is not allowed (SPIFFE-ID §2)');
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (authority.includes('@'))
    return fail('userinfo is not allowed in the trust domain (SPIFFE-ID §2.1)');
  if (authority.includes(':'))
    return fail('port is not allowed in the trust domain (SPIFFE-ID §2.1)');
  const tdError = trustDomainError(authority);
  if (tdError !== undefined) return fail(tdError);
  const pError = pathError(path);
  if (pError !== undefined) return fail(pError);
  return { ok: true, id: { trustDomain: authority, path, uri: input } };
}

/** Parses a SPIFFE ID or throws an Error naming the rule broken. */
export function mustParseSpiffeId(input: string): SpiffeId {
  const r = parseSpiffeId(input);
  if (!r.ok) throw new Error(`invalid SPIFFE ID ${JSON.stringify(input)}: ${r.error}`);
  return r.id;
}

/** Formats a SPIFFE ID from a trust domain and path segments, validating both. */
export function formatSpiffeId(trustDomain: string, ...segments: readonly string[]): string {
  const bad = segments.find((s) => s.includes('/'));
  if (bad !== undefined)
    throw new Error(`path segment ${JSON.stringify(bad)} must not contain "/" (SPIFFE-ID §2.2)`);
  const uri = `${SCHEME}${trustDomain}${segments.map((s) => `/${s}`).join('')}`;
  return mustParseSpiffeId(uri).uri;
}

/** Istio's workload SPIFFE ID: `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export function workloadSpiffeId(identity: WorkloadIdentity): string {
  return formatSpiffeId(
    identity.trustDomain,
    'ns',
    identity.namespace,
    'sa',
    identity.serviceAccount,
  );
}

/** Reads Istio's `/ns/<ns>/sa/<sa>` form back; undefined for any other path. */
export function parseWorkloadIdentity(id: SpiffeId | string): WorkloadIdentity | undefined {
  const parsed = typeof id === 'string' ? parseSpiffeId(id) : ({ ok: true, id } as const);
  if (!parsed.ok) return undefined;
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(parsed.id.path);
  if (m === null) return undefined;
  return { trustDomain: parsed.id.trustDomain, namespace: m[1] ?? '', serviceAccount: m[2] ?? '' };
}
