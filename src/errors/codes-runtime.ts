/** Error codes of the runtime area. Add codes here and document them in docs/errors.md. */
export const RUNTIME_ERRORS = {} as const;
