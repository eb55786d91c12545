/** Error codes of the control area. Add codes here and document them in docs/errors.md. */
export const CONTROL_ERRORS = {} as const;
