/** Error codes of the runtime area. Add codes here and document them in docs/errors.md. */
export const RUNTIME_ERRORS = {
  PAL_ERR_RUNTIME_PORT_TAKEN: {
    summary:
      'A port the local mesh needs is already in use; the message names the port and the process.',
    exit: 1,
  },
  PAL_ERR_RUNTIME_ADDRESS_SPACE: {
    summary:
      'Workload instances do not fit the loopback address plan, or an address cannot be bound.',
    exit: 1,
  },
  PAL_ERR_RUNTIME_NOT_READY: {
    summary:
      'The local mesh did not become ready (a process kept crashing or a readiness check timed out); everything was stopped.',
    exit: 1,
  },
  PAL_ERR_RUNTIME_CAPTURE: {
    summary:
      'Installing or removing the traffic-capture rules (iptables) failed; the message names the command and its error.',
    exit: 1,
  },
  PAL_ERR_RUNTIME_ISOLATION: {
    summary:
      'Network-namespace isolation is unavailable or its setup failed (not root, no `ip netns`, a pod namespace or bridge could not be created); the message says which.',
    exit: 1,
  },
} as const;
