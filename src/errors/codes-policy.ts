/** Error codes of the policy area. Add codes here and document them in docs/errors.md. */
export const POLICY_ERRORS = {} as const;
