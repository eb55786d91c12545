/** Network-namespace isolation of `palisade up --isolation netns`: pods on a bridge, service VIPs. */
export { cidrHost, parseCidr, type Cidr } from './cidr.js';
export {
  chooseIsolation,
  cleanLeftovers,
  createNodeNetwork,
  meshTag,
  netnsProblem,
  teardownRecord,
  type IsolationMode,
  type IsolationRecord,
  type NodeNetwork,
  type NodeNetworkOptions,
  type Pod,
} from './pod-network.js';
export {
  assignClusterIps,
  podHostsFile,
  withClusterIps,
  writeClusterIps,
  type ServiceVip,
} from './service-ips.js';
export { createPods, POD_ADMIN_PORT, PROXY_UID, type MeshPods, type PodsOptions } from './pods.js';
