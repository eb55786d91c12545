/** Error codes of the identity area. Add codes here and document them in docs/errors.md. */
export const IDENTITY_ERRORS = {} as const;
