/** Sidecar injection: the policy, the patch and the mutating admission webhook serving it. */
export { injectionPatch, skipReason, type InjectOptions, type JsonPatchOp } from './sidecar.js';
export { reviewResponse, startInjectorWebhook, type InjectorServer } from './webhook-server.js';
