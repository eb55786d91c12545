/** Public surface of the API server: its stores, the server and its PKI. */
export * from './store/types.js';
export { openEmbeddedStore, type EmbeddedStoreOptions } from './store/embedded-store.js';
