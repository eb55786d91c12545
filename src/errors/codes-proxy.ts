/**
 * Error codes of the proxy area. Add codes here and document them in docs/errors.md.
 * Each is mapped to an HTTP status, Envoy response flags and a gRPC status in one
 * function: `proxyFailure()` in src/proxy/http/proxy-failure.ts.
 */
export const PROXY_ERRORS = {
  PAL_ERR_PROXY_BAD_REQUEST: {
    summary:
      'A request head was refused before routing (bad target, header checks): 400, flag DPE.',
    exit: 1,
  },
  PAL_ERR_PROXY_NO_ROUTE: {
    summary: 'No virtual host or route matched the request: 404, flag NR.',
    exit: 1,
  },
  PAL_ERR_PROXY_BLACKHOLE: {
    summary: 'The route sends the request to BlackHoleCluster: 502, flag NR.',
    exit: 1,
  },
  PAL_ERR_PROXY_NO_CLUSTER: {
    summary: 'The route names a cluster the proxy does not have: 503, flag NC.',
    exit: 1,
  },
  PAL_ERR_PROXY_NO_HEALTHY_UPSTREAM: {
    summary: 'The cluster has no endpoint to send to: 503, flag UH.',
    exit: 1,
  },
  PAL_ERR_PROXY_OVERFLOW: {
    summary: "The cluster's circuit breaker (max_requests) is open: 503, flag UO.",
    exit: 1,
  },
  PAL_ERR_PROXY_UPSTREAM_CONNECT: {
    summary: 'The upstream connection failed or was reset before a response: 503, flag UF.',
    exit: 1,
  },
  PAL_ERR_PROXY_UPSTREAM_TLS: {
    summary:
      'Upstream TLS failed (no usable SVID or bundle, or secure naming refused the peer): 503, flag UF.',
    exit: 1,
  },
  PAL_ERR_PROXY_TIMEOUT: {
    summary: "The route's timeout passed before the upstream answered: 504, flag UT.",
    exit: 1,
  },
  PAL_ERR_PROXY_RATE_LIMITED: {
    summary: 'The local rate limit refused the request: 429 (or its configured status), flag RL.',
    exit: 1,
  },
  PAL_ERR_PROXY_FAULT_ABORT: {
    summary: 'The fault filter aborted the request with its configured status: flag FI.',
    exit: 1,
  },
  PAL_ERR_PROXY_UPGRADE_REFUSED: {
    summary: "An HTTP upgrade type the route's upgrade_configs do not allow: 403, flag UPE.",
    exit: 1,
  },
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
