/** Public surface of the manifest audit. */
export * from './audit.js';
