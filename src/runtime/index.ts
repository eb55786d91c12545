/** Public surface of the local runtime (`palisade up`). */
export { allocateAddresses, assertPortFree } from './address-allocation.js';
export type {
  AddressAllocationOptions,
  InstanceAddress,
  WorkloadSlots,
} from './address-allocation.js';
