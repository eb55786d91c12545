/** Traffic capture (`palisade proxy-init`): Istio-style iptables rules for a pod's network namespace. */
export {
  CAPTURE_CHAINS,
  DEFAULT_CAPTURE,
  INBOUND_PASSTHROUGH_SOURCE,
  SIDECAR_OWN_PORTS,
  builtinJumps,
  captureRules,
  validateCapture,
  type CaptureOptions,
} from './rules.js';
export { cleanCapture, cleanScript, installCapture, installScript, natTable } from './apply.js';
