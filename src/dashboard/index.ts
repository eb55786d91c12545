/**
 * Public surface of the dashboard: the service graph computed from proxy
 * metrics, the security view, the live data of a running mesh, and the HTTP
 * server `palisade dashboard` and `palisade up` start.
 */
export { parsePrometheusText, type Sample } from './prometheus-text.js';
export {
  computeServiceGraph,
  computeWorkloadStats,
  histogramQuantile,
  type GraphEdge,
  type GraphNode,
  type MeshWorkload,
  type ProxyScrape,
  type ServiceGraph,
  type WorkloadStats,
} from './service-graph.js';
export {
  meshWorkloads,
  readConfigObjects,
  readMeshState,
  trustDomainOf,
  type MeshState,
} from './mesh-topology.js';
export { createMeshData, scrapeAll, type MeshData, type MeshDataOptions } from './mesh-data.js';
export { securityView, type SecurityView, type WorkloadSecurity } from './security-view.js';
export {
  isLoopbackAddress,
  startDashboardServer,
  tokenMatches,
  type DashboardServer,
  type DashboardServerOptions,
} from './dashboard-server.js';
