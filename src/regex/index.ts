/**
 * Public surface of config regexes: RE2 semantics in linear time (Envoy's safe_regex), and
 * the patterns an AuthorizationPolicy value becomes.
 */
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
export {
  escapeRegex,
  isPathTemplate,
  namespaceRegex,
  pathTemplateRegex,
  serviceAccountRegex,
  trustDomainRegex,
} from './authz-regex.js';
