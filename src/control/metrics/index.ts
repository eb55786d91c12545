/** The control plane's monitoring surface (istiod's :15014 `/metrics` equivalent). */
export {
  createControlMetrics,
  startMonitoringServer,
  type ControlMetricEvent,
  type ControlMetrics,
  type MonitoringServer,
} from './control-metrics.js';
