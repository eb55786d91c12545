/**
 * Route matching (route.v3.RouteMatch): path, prefix or safe_regex (with
 * `case_sensitive`), header matchers (string match, presence, invert) and
 * query parameter matchers, compiled once when the route configuration is
 * accepted and evaluated per request without re-reading the resource.
 * Envoy's StringMatcher is here too (exact, prefix, suffix, contains,
 * safe_regex; ignore_case).
 */
import { compileSafeRegex, type SafeRegex } from '../../regex/index.js';
import { headerValue } from '../envoy-values.js';
import type { RouteRequest } from '../http/types.js';

type R = Record<string, unknown>;
const isRecord = (v: unknown): v is R => typeof v === 'object' && v !== null && !Array.isArray(v);
const records = (v: unknown): R[] => (Array.isArray(v) ? v.filter(isRecord) : []);

/**
 * The RE2 regex of a `safe_regex` (full match, linear time). Resource validation NACKs any
 * pattern that does not compile, so null (never matches) is only reached by unvalidated input.
 */
function compileRegex(holder: Record<string, unknown>): SafeRegex | null {
  const source = holder['regex'];
  if (typeof source !== 'string') return null;
  try {
    return compileSafeRegex(source);
  } catch {
    return null;
  }
}

/** A StringMatcher compiled: its kind, its (case-folded) operand, its regex. */
export interface StringMatcherConfig {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex' | 'never';
  readonly value: string;
  readonly ignoreCase: boolean;
  readonly regex: SafeRegex | null;
}

export function compileStringMatcher(matcher: Record<string, unknown>): StringMatcherConfig {
  const ignoreCase = matcher['ignore_case'] === true;
  const norm = (s: unknown): string =>
    typeof s === 'string' ? (ignoreCase ? s.toLowerCase() : s) : '';
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const)
    if (kind in matcher) return { kind, value: norm(matcher[kind]), ignoreCase, regex: null };
  const regex = matcher['safe_regex'];
  if (isRecord(regex)) return { kind: 'regex', value: '', ignoreCase, regex: compileRegex(regex) };
  return { kind: 'never', value: '', ignoreCase, regex: null };
}

export function stringMatches(m: StringMatcherConfig, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case 'exact':
      return v === m.value;
    case 'prefix':
      return v.startsWith(m.value);
    case 'suffix':
      return v.endsWith(m.value);
    case 'contains':
      return v.includes(m.value);
    case 'regex':
      return m.regex?.fullMatch(value) === true;
    case 'never':
      return false;
  }
}

/** A route's `match`, compiled. */
export interface RouteMatcherConfig {
  readonly caseSensitive: boolean;
  /** `path` and `prefix`, case-folded when the match is case-insensitive. */
  readonly path: string | undefined;
  readonly prefix: string | undefined;
  readonly regex: SafeRegex | null | undefined;
  readonly headers: readonly {
    readonly name: string;
    /** The value's matcher; undefined: the header need only be present. */
    readonly string: StringMatcherConfig | undefined;
    readonly invert: boolean;
  }[];
  readonly query: readonly {
    readonly name: string;
    readonly string: StringMatcherConfig | undefined;
  }[];
}

export function compileMatch(match: Record<string, unknown>): RouteMatcherConfig {
  const cs = match['case_sensitive'];
  const caseSensitive = !(cs === false || (isRecord(cs) && cs['value'] === false));
  const fold = (v: unknown): string | undefined =>
    typeof v === 'string' ? (caseSensitive ? v : v.toLowerCase()) : undefined;
  const regex = match['safe_regex'];
  return {
    caseSensitive,
    path: fold(match['path']),
    prefix: fold(match['prefix']),
    regex: isRecord(regex) ? compileRegex(regex) : undefined,
    headers: records(match['headers']).map((h) => ({
      name: typeof h['name'] === 'string' ? h['name'] : '',
      string:
        h['present_match'] !== true && isRecord(h['string_match'])
          ? compileStringMatcher(h['string_match'])
          : undefined,
      invert: h['invert_match'] === true,
    })),
    query: records(match['query_parameters']).map((q) => ({
      name: typeof q['name'] === 'string' ? q['name'] : '',
      string: isRecord(q['string_match']) ? compileStringMatcher(q['string_match']) : undefined,
    })),
  };
}

export function matches(match: RouteMatcherConfig, request: RouteRequest): boolean {
  const queryAt = request.path.indexOf('?');
  const path = queryAt === -1 ? request.path : request.path.slice(0, queryAt);
  const p = match.caseSensitive ? path : path.toLowerCase();
  if (match.path !== undefined && p !== match.path) return false;
  if (match.prefix !== undefined && !p.startsWith(match.prefix)) return false;
  if (match.regex !== undefined && match.regex?.fullMatch(path) !== true) return false;
  for (const header of match.headers) {
    const value = headerValue(request.headers, header.name);
    let ok =
      header.string === undefined
        ? value !== undefined
        : value !== undefined && stringMatches(header.string, value);
    if (header.invert) ok = !ok;
    if (!ok) return false;
  }
  if (match.query.length === 0) return true;
  const params = new URLSearchParams(queryAt === -1 ? '' : request.path.slice(queryAt + 1));
  for (const query of match.query) {
    const value = params.get(query.name);
    if (value === null) return false;
    if (query.string !== undefined && !stringMatches(query.string, value)) return false;
  }
  return true;
}
