/**
 * Regular expressions that come from config, in linear time.
 *
 * Envoy's `safe_regex` (RegexMatcher with the Google RE2 engine) and Istio's
 * `StringMatch.regex` are RE2: matching time is linear in the input, and RE2
 * rejects what would need backtracking (backreferences, lookaround,
 * possessive quantifiers, atomic groups). V8's own RegExp backtracks, so a
 * pattern such as `/(a+)+` against `/aaaa…!` takes exponential time and stalls
 * the event loop. Every config-supplied pattern in Palisade (route, header,
 * query and authority matchers, `regex_rewrite`, RBAC string matchers, CORS
 * origins) is compiled here, by `re2js` (a pure-JS port of RE2/J, the Go and
 * Java RE2 family; the same syntax Istio's control plane validates with Go's
 * `regexp`). Patterns written by Palisade itself may stay native.
 *
 * Bounds, each with an upstream precedent:
 * - length: at most {@link MAX_REGEX_LENGTH} UTF-8 bytes (Istio's validation:
 *   "regex is too large, max length allowed is 1024");
 * - program size: at most {@link MAX_REGEX_PROGRAM_SIZE} instructions (Envoy's
 *   runtime key `re2.max_program_size.error_level`; Envoy's default is 100,
 *   Istio set 1024 per regex until 1.12 and now 32768 — Palisade keeps 1024
 *   because matching cost is program size × input length and this engine is
 *   JavaScript; docs/policy.md gives the measured worst case).
 *
 * re2js is loaded on first use, so a proxy whose config has no regex never
 * pays its memory (about 1.5 MB RSS).
 */
import { createRequire } from 'node:module';
import type * as Re2 from 're2js';
import { PalisadeError } from '../errors/index.js';

/** Longest pattern accepted, in UTF-8 bytes (Istio: `len(re) > 1024` is rejected). */
export const MAX_REGEX_LENGTH = 1024;
/** Largest compiled RE2 program accepted (Envoy: `re2.max_program_size.error_level`). */
export const MAX_REGEX_PROGRAM_SIZE = 1024;
/** Compiled patterns kept for reuse (validation and matching share them). */
const CACHE_LIMIT = 2048;

/** How a pattern is compiled; Envoy's safe_regex uses none of these (RE2 defaults). */
export interface SafeRegexOptions {
  /** `(?i)`: case-insensitive. */
  readonly ignoreCase?: boolean;
  /** `(?s)`: `.` also matches `\n`. */
  readonly dotAll?: boolean;
}

/** An RE2 rewrite string compiled against its pattern (`\0`–`\9` groups, `\\` a backslash). */
export interface SafeRewrite {
  readonly parts: readonly (string | number)[];
}

/** A compiled config regex. */
export interface SafeRegex {
  readonly source: string;
  /** RE2 program size (instructions), as Envoy's `re2.program_size` histogram. */
  readonly programSize: number;
  /** Number of capturing groups. */
  readonly groupCount: number;
  /** Whole-value match: Envoy's safe_regex and Istio's StringMatch.regex match the entire value. */
  fullMatch(value: string): boolean;
  /**
   * Every non-overlapping match replaced (RE2::GlobalReplace, as Envoy's
   * `regex_rewrite` applies it to the path).
   */
  replaceAll(value: string, rewrite: SafeRewrite): string;
}

let engine: typeof Re2 | undefined;
/** re2js, loaded once on first use (synchronously: config is compiled before it is ACKed). */
function re2(): typeof Re2 {
  engine ??= createRequire(import.meta.url)('re2js') as typeof Re2;
  return engine;
}

/** Why a pattern RE2 refused is not RE2, for constructs users bring from PCRE/JavaScript. */
function nonRe2Construct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const next = pattern[i + 1] ?? '';
    if (c === '\\') {
      if (!inClass && /[1-9]/.test(next)) return `backreference "\\${next}"`;
      if (!inClass && next === 'k') return 'named backreference "\\k"';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && next === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=')) return 'lookahead "(?="';
      if (rest.startsWith('!')) return 'negative lookahead "(?!"';
      if (rest === '<=') return 'lookbehind "(?<="';
      if (rest === '<!') return 'negative lookbehind "(?<!"';
      if (rest.startsWith('>')) return 'atomic group "(?>"';
    }
    if ((c === '*' || c === '+' || c === '?' || c === '}') && next === '+')
      return `possessive quantifier "${c}+"`;
  }
  return undefined;
}

function invalid(pattern: string, reason: string): PalisadeError<'PAL_ERR_REGEX_INVALID'> {
  return new PalisadeError(
    'PAL_ERR_REGEX_INVALID',
    `invalid regex ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern)}: ${reason}`,
    { details: { reason } },
  );
}

/** Builds the engine's flags for `options`. */
function flagsOf(options: SafeRegexOptions): number {
  const { RE2JS } = re2();
  return (
    (options.ignoreCase === true ? RE2JS.CASE_INSENSITIVE : 0) |
    (options.dotAll === true ? RE2JS.DOTALL : 0)
  );
}

function build(pattern: string, options: SafeRegexOptions): SafeRegex {
  if (pattern === '') throw invalid(pattern, 'must not be empty');
  const bytes = Buffer.byteLength(pattern, 'utf8');
  if (bytes > MAX_REGEX_LENGTH)
    throw invalid(
      pattern,
      `${String(bytes)} bytes long; at most ${String(MAX_REGEX_LENGTH)} are allowed`,
    );
  const { RE2JS } = re2();
  let compiled: Re2.RE2JS;
  try {
    compiled = RE2JS.compile(pattern, flagsOf(options));
  } catch (err) {
    const construct = nonRe2Construct(pattern);
    const detail = err instanceof Error ? err.message : String(err);
    throw invalid(
      pattern,
      construct === undefined
        ? `not RE2 syntax (${detail})`
        : `${construct} is not supported: RE2 matches in linear time and has no backreferences, lookaround or possessive quantifiers (${detail})`,
    );
  }
  const programSize = compiled.programSize();
  if (programSize > MAX_REGEX_PROGRAM_SIZE)
    throw invalid(
      pattern,
      `RE2 program size ${String(programSize)} exceeds the maximum ${String(MAX_REGEX_PROGRAM_SIZE)} (simplify the regex, e.g. smaller repeat counts)`,
    );
  const groupCount = compiled.groupCount();
  return {
    source: pattern,
    programSize,
    groupCount,
    fullMatch: (value) => compiled.testExact(value),
    replaceAll: (value, rewrite) => {
      // RE2::GlobalReplace: like JavaScript's replace with /g, except that an
      // empty match right where the previous match ended is skipped
      // ("a*" over "baaac" gives "-b-c-", not "-b--c-").
      const m = compiled.matcher(value);
      let out = '';
      let copied = 0;
      let lastEnd = -1;
      while (m.find()) {
        const start = m.start();
        const end = m.end();
        if (start === end && start === lastEnd) continue;
        out += value.slice(copied, start);
        for (const part of rewrite.parts)
          out += typeof part === 'string' ? part : (m.group(part) ?? '');
        copied = end;
        lastEnd = end;
      }
      return out + value.slice(copied);
    },
  };
}

const cache = new Map<string, SafeRegex>();

/**
 * Compiles a config regex (RE2 syntax) or throws PAL_ERR_REGEX_INVALID with
 * the reason. Compiled patterns are cached by source and options.
 */
export function compileSafeRegex(pattern: string, options: SafeRegexOptions = {}): SafeRegex {
  const key = `${options.ignoreCase === true ? 'i' : ''}${options.dotAll === true ? 's' : ''}:${pattern}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const regex = build(pattern, options);
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (oldest.done !== true) cache.delete(oldest.value);
  }
  cache.set(key, regex);
  return regex;
}

/** The reason `pattern` is not an acceptable config regex, or undefined when it is. */
export function safeRegexProblem(
  pattern: string,
  options: SafeRegexOptions = {},
): string | undefined {
  try {
    compileSafeRegex(pattern, options);
    return undefined;
  } catch (err) {
    if (err instanceof PalisadeError && typeof err.details?.['reason'] === 'string')
      return err.details['reason'];
    throw err;
  }
}

/**
 * Compiles an RE2 rewrite string (`\1` is group 1, `\0` the whole match, `\\`
 * a backslash; any other escape is an error, as RE2::Rewrite rejects it) for
 * `regex`. A group the pattern does not have is an error: RE2::GlobalReplace
 * would silently not rewrite at all.
 */
export function compileRewrite(substitution: string, regex: SafeRegex): SafeRewrite {
  const parts: (string | number)[] = [];
  let literal = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution.charAt(i);
    if (c !== '\\') {
      literal += c;
      continue;
    }
    const next = substitution[i + 1];
    i++;
    if (next === '\\') {
      literal += '\\';
      continue;
    }
    if (next !== undefined && next >= '0' && next <= '9') {
      const group = Number(next);
      if (group > regex.groupCount)
        throw invalid(
          regex.source,
          `the rewrite ${JSON.stringify(substitution)} uses group \\${next} but the regex has ${String(regex.groupCount)} capturing group(s)`,
        );
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push(group);
      continue;
    }
    throw invalid(
      regex.source,
      `the rewrite ${JSON.stringify(substitution)} has an invalid escape "\\${next ?? ''}" (only \\0-\\9 and \\\\ are allowed)`,
    );
  }
  if (literal !== '') parts.push(literal);
  return { parts };
}

/** The reason a `regex_rewrite` (pattern + substitution) is unacceptable, or undefined. */
export function rewriteProblem(pattern: string, substitution: string): string | undefined {
  try {
    compileRewrite(substitution, compileSafeRegex(pattern));
    return undefined;
  } catch (err) {
    if (err instanceof PalisadeError && typeof err.details?.['reason'] === 'string')
      return err.details['reason'];
    throw err;
  }
}
