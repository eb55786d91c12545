/** Error codes of the proxy area. Add codes here and document them in docs/errors.md. */
export const PROXY_ERRORS = {} as const;
