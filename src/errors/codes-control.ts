/** Error codes of the control area. Add codes here and document them in docs/errors.md. */
export const CONTROL_ERRORS = {
  PAL_ERR_CONTROL_CONFIG_INVALID: {
    summary:
      'The control plane config failed validation; every problem is named and nothing was applied.',
    exit: 2,
  },
  PAL_ERR_CONTROL_UNAUTHENTICATED: {
    summary: 'An xDS stream had no valid service-account token, or a token for another identity.',
    exit: 1,
  },
  PAL_ERR_CONTROL_PERMISSION_DENIED: {
    summary:
      "The control plane's debug API refused the caller: no or a wrong operator token (debug-token in the state dir).",
    exit: 1,
  },
  PAL_ERR_CONTROL_UNREACHABLE: {
    summary: 'The control plane could not be reached at the given address.',
    exit: 1,
  },
  PAL_ERR_CONTROL_CONFIG_API: {
    summary:
      'The control plane could not read its config from the API server of --kubeconfig (unreachable, refused or not answering in time).',
    exit: 1,
  },
} as const;
