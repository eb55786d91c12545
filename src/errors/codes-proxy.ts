/** Error codes of the proxy area. Add codes here and document them in docs/errors.md. */
export const PROXY_ERRORS = {
  PAL_ERR_HTTP1_BAD_RESPONSE: {
    summary:
      'An upstream HTTP/1.1 response broke RFC 9112 framing or a limit; the connection was closed.',
    exit: 1,
  },
  PAL_ERR_HTTP1_UPSTREAM_RESET: {
    summary: 'An upstream HTTP/1.1 connection failed or closed before the response ended.',
    exit: 1,
  },
  PAL_ERR_HTTP1_UPSTREAM_TIMEOUT: {
    summary: 'An upstream sent no response head within the response timeout.',
    exit: 1,
  },
  PAL_ERR_HTTP1_POOL_OVERFLOW: {
    summary:
      'An upstream pool had every connection busy and its pending queue full (or was closed).',
    exit: 1,
  },
} as const;
