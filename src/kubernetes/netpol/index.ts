/** Public surface of the NetworkPolicy engine. */
export * from './network-policy-engine.js';
