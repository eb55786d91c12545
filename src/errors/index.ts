/** Public surface of the error registry. */
export { PalisadeError, isPalisadeError, type PalisadeErrorOptions } from './palisade-error.js';
export { ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './registry.js';
