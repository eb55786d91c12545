/** Error codes of the kubernetes area. Add codes here and document them in docs/errors.md. */
export const KUBERNETES_ERRORS = {
  PAL_ERR_K8S_POD_NOT_FOUND: {
    summary: 'A pod named on the command line (NS/POD) is not in the given cluster files.',
    exit: 2,
  },
  PAL_ERR_K8S_REQUEST_INVALID: {
    summary:
      'An authorization request (auth can-i --requests) is malformed; the entry and field are named.',
    exit: 2,
  },
} as const;
