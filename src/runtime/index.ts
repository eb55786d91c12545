/** Public surface of the local runtime (`palisade up`). */
export { allocateAddresses, assertPortFree } from './address-allocation.js';
export type {
  AddressAllocationOptions,
  InstanceAddress,
  WorkloadSlots,
} from './address-allocation.js';
export { backoffDelay, createSupervisor } from './supervisor.js';
export type { ProcessSpec, Supervisor, SupervisorEvent, SupervisorOptions } from './supervisor.js';
export {
  findMeshState,
  objectFileName,
  readMeshDir,
  startMesh,
  writeConfigDir,
  type MeshInfo,
  type MeshPod,
  type MeshOptions,
  type MeshProxy,
  type RunningMesh,
} from './mesh-runtime.js';
export { findOnPath, freeLoopbackPort } from './observability.js';
export {
  chooseIsolation,
  cleanLeftovers,
  netnsProblem,
  withClusterIps,
  type IsolationMode,
  type IsolationRecord,
} from './netns/index.js';
export { meshApiClient, replyMessage, type MeshApiClient, type MeshApiInfo } from './mesh-api.js';
export {
  cleanCapture,
  DEFAULT_CAPTURE,
  installCapture,
  installScript,
  validateCapture,
  type CaptureOptions,
} from './capture/index.js';
