/** Public surface of the NetworkPolicy engine. */
export * from './network-policy-engine.js';
export * from './admin-network-policy.js';
