/** Error codes of the mesh policy area (Istio security policies). */
export const POLICY_ERRORS = {
  PAL_ERR_AUTHZ_REQUEST_INVALID: {
    summary: 'A request given to check authz is malformed; the message names the field.',
    exit: 2,
  },
  PAL_ERR_REGEX_INVALID: {
    summary:
      'A regular expression from config is not RE2 syntax, or exceeds the length or program-size bound; the message gives the reason.',
    exit: 2,
  },
} as const;
