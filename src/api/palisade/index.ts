/** Public surface of Palisade's own kinds (`palisade.dev/v1alpha1`). */
export * from './schemas.js';
export { isPalisadeObject, validatePalisadeResource } from './validate.js';
