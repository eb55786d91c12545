/** Public surface of the control plane. */
export { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
export {
  callDebug,
  DEBUG_TOKEN_FILE,
  type DebugAccess,
  type ProxyConfigReply,
  type ProxySyncStatus,
  type SyncStatusReply,
} from './debug/debug-service.js';
export {
  compileProxy,
  gatewayBindPort,
  type CompileInputs,
  type MeshSettings,
  type ProxyResources,
} from './compiler/compile-proxy.js';
export { GATEWAY_LABELS, type ProxyNode, type ProxyType } from './compiler/proxy-node.js';
export {
  enforcedProviders,
  extAuthzHttpFilters,
  jwtAuthnFilter,
  OUTBOUND_PORT,
  rbacFilters,
} from './compiler/listeners.js';
export { buildRegistry, serviceHostname, type Registry } from './registry/service-registry.js';
export {
  createSnapshot,
  formatProblem,
  validateManifests,
  type ConfigProblem,
  type ConfigSnapshot,
} from './config/config-snapshot.js';
