/** Public surface of the manifest audit. */
export * from './audit.js';
export { manifestStartLines } from './locations.js';
