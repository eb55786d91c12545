/** Palisade's library surface: each area's public index. */
export * as api from './api/index.js';
export * as errors from './errors/index.js';
