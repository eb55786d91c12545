/**
 * The RE2 patterns an AuthorizationPolicy value becomes in the proxy's RBAC
 * filter, built in one place so validation can size-check exactly what the
 * translation (src/policy) sends. Without that check a policy the API
 * accepted — e.g. a path of 400 `{*}` segments, or a 2,000-character
 * namespace — reached the proxy and was NACKed there; now it is refused at
 * the edge with its field path, as Istio refuses a StringMatch regex over
 * 1,024 bytes at validation (safe-regex.ts has the bounds). Both sides import
 * it through src/regex's surface, which loads no validator.
 */

/** Escapes RE2/JS metacharacters so the value matches literally. */
export const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Envoy's uri_template character classes (source/extensions/path/uri_template/
 * uri_template_internal.cc): `*` is one or more pchars of one segment, `**`
 * zero or more pchars and `/` (so `/allow/{**}` matches `/allow/` and
 * `/allow/admin/`, and `/store/{**}` matches `/store//cart`).
 */
const URI_TEMPLATE_LITERAL = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";
const URI_TEMPLATE_ONE = `[${URI_TEMPLATE_LITERAL}]+`;
const URI_TEMPLATE_ANY = `[${URI_TEMPLATE_LITERAL}/]*`;

/** True when an Istio path value is a template (`{*}`, `{**}`). */
export const isPathTemplate = (value: string): boolean =>
  value.includes('{*}') || value.includes('{**}');

/** The RE2 pattern of a path template (whole-value match). */
export function pathTemplateRegex(value: string): string {
  return value
    .split('/')
    .map((seg) =>
      seg === '{*}' ? URI_TEMPLATE_ONE : seg === '{**}' ? URI_TEMPLATE_ANY : escapeRegex(seg),
    )
    .join('/');
}

/** Istio's namespace matcher: the namespace segment of the peer's SPIFFE ID (`*`, `abc*`, `*abc`, exact). */
export function namespaceRegex(ns: string): string {
  if (ns === '*') return '.*/ns/[^/]+/.*';
  const body = ns.endsWith('*')
    ? `${escapeRegex(ns.slice(0, -1))}[^/]*`
    : ns.startsWith('*')
      ? `[^/]*${escapeRegex(ns.slice(1))}`
      : escapeRegex(ns);
  return `.*/ns/${body}/.*`;
}

/**
 * Istio's serviceAccountRegex (pilot/pkg/security/authz/model/generator.go):
 * `spiffe://<td>/ns/<ns>/` then optional pairs, `sa/<sa>`, optional pairs —
 * so `my-sa` does not match `my-sa-suffix`. A bare `<sa>` is in `namespace`.
 */
export function serviceAccountRegex(namespace: string, value: string): string {
  const slash = value.indexOf('/');
  const ns = slash < 0 ? namespace : value.slice(0, slash);
  const sa = slash < 0 ? value : value.slice(slash + 1);
  return `spiffe://.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?`;
}

/** `trustDomains` values with a wildcard as a pattern; an exact one is a prefix match (undefined). */
export function trustDomainRegex(td: string): string | undefined {
  if (td === '*') return 'spiffe://[^/]+/.*';
  if (td.endsWith('*')) return `spiffe://${escapeRegex(td.slice(0, -1))}[^/]*/.*`;
  if (td.startsWith('*')) return `spiffe://[^/]*${escapeRegex(td.slice(1))}/.*`;
  return undefined;
}
