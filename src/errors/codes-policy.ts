/** Error codes of the mesh policy area (Istio security policies). */
export const POLICY_ERRORS = {
  PAL_ERR_AUTHZ_REQUEST_INVALID: {
    summary: 'A request given to check authz is malformed; the message names the field.',
    exit: 2,
  },
} as const;
