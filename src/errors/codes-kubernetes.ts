/** Error codes of the kubernetes area. Add codes here and document them in docs/errors.md. */
export const KUBERNETES_ERRORS = {} as const;
