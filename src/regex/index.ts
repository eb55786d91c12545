/** Public surface of config regexes: RE2 semantics in linear time (Envoy's safe_regex). */
export {
  compileRewrite,
  compileSafeRegex,
  MAX_REGEX_LENGTH,
  MAX_REGEX_PROGRAM_SIZE,
  rewriteProblem,
  safeRegexProblem,
  type SafeRegex,
  type SafeRegexOptions,
  type SafeRewrite,
} from './safe-regex.js';
