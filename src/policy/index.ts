/**
 * Public surface of the mesh policy engines (issue 3, in progress): path
 * normalisation so far; PeerAuthentication, RequestAuthentication and
 * AuthorizationPolicy selection, translation to Envoy filters and evaluation
 * come next.
 */
export {
  normalizePath,
  PATH_NORMALIZATIONS,
  removeDotSegments,
  type NormalizedPath,
  type PathNormalization,
} from './path-normalization.js';
