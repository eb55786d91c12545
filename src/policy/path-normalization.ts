/**
 * Request path normalisation before authorization, as Istio documents it
 * ("Authorization Policy Normalization", meshConfig.pathNormalization):
 *
 * - NONE: the path as received.
 * - BASE (default): RFC 3986 §6.2.2 normalisation as Envoy's `normalize_path`
 *   does it — percent-encoded unreserved characters are decoded, remaining
 *   escapes are written in upper case, `\` becomes `/`, and `.`/`..` segments
 *   are resolved (RFC 3986 §5.2.4).
 * - MERGE_SLASHES: BASE, then runs of `/` are merged.
 * - DECODE_AND_MERGE_SLASHES: MERGE_SLASHES, and `%2F`/`%5C` (either case) are
 *   decoded first, so an escaped slash cannot hide a segment boundary.
 *
 * The query and fragment are not part of the matched path. `%00`, malformed
 * escapes and paths that do not start with `/` are rejected with 400 (fail
 * closed) — Envoy rejects them too rather than guess.
 */

export const PATH_NORMALIZATIONS = [
  'NONE',
  'BASE',
  'MERGE_SLASHES',
  'DECODE_AND_MERGE_SLASHES',
] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

export type NormalizedPath =
  | { readonly ok: true; readonly path: string; readonly query: string }
  | { readonly ok: false; readonly status: 400; readonly reason: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX = /^[0-9A-Fa-f]{2}$/;

function bad(reason: string): NormalizedPath {
  return { ok: false, status: 400, reason };
}

/** RFC 3986 §5.2.4 remove_dot_segments on an absolute path. */
export function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  // segments[0] is '' for an absolute path.
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] ?? '';
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return `/${out.join('/')}`;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;

/** True when normalisation leaves `path` (which starts with `/`) unchanged. */
function isNormal(path: string, mergeSlashes: boolean): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return false;
    if (c === SLASH && i + 1 < path.length) {
      const next = path.charCodeAt(i + 1);
      if (next === DOT || (mergeSlashes && next === SLASH)) return false;
    }
  }
  return true;
}

/**
 * Normalises the path part of a request target (`/a/b?x=1#f`) for policy
 * matching and forwarding.
 */
export function normalizePath(target: string, mode: PathNormalization = 'BASE'): NormalizedPath {
  const hash = target.indexOf('#');
  const noFragment = hash === -1 ? target : target.slice(0, hash);
  const q = noFragment.indexOf('?');
  const rawPath = q === -1 ? noFragment : noFragment.slice(0, q);
  const query = q === -1 ? '' : noFragment.slice(q + 1);
  if (rawPath.includes('\u0000')) return bad('path contains a NUL byte');
  if (/%00/.test(rawPath)) return bad('path contains %00');
  if (mode === 'NONE') return { ok: true, path: rawPath, query };
  if (!rawPath.startsWith('/') && !rawPath.startsWith('\\')) return bad('path must start with "/"');
  // Most paths have nothing to normalise: no escape, no backslash, no dot segment (every
  // one follows a `/`) and, when slashes merge, no `//`. They are their own normal form.
  if (isNormal(rawPath, mode !== 'BASE')) return { ok: true, path: rawPath, query };

  const decodeSlashes = mode === 'DECODE_AND_MERGE_SLASHES';
  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath[i] ?? '';
    if (ch !== '%') {
      decoded += ch === '\\' ? '/' : ch;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return bad(`malformed percent-escape "%${hex}"`);
    const code = parseInt(hex, 16);
    if (code === 0) return bad('path contains %00');
    const c = String.fromCharCode(code);
    if (UNRESERVED.test(c)) decoded += c;
    else if (decodeSlashes && (c === '/' || c === '\\')) decoded += '/';
    else decoded += `%${hex.toUpperCase()}`;
    i += 2;
  }
  let path = removeDotSegments(decoded);
  if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES')
    path = path.replace(/\/{2,}/g, '/');
  return { ok: true, path, query };
}
