/**
 * Failure containment for the request path: an unexpected exception while
 * handling one request or connection closes that request's stream or
 * connection and is logged; it never reaches the process (a proxy that
 * crashes on input is an outage any client can cause). Handlers run through
 * these wrappers at every entry point — request, upgrade, CONNECT, accepted
 * connection — and every promise a handler starts ends in a catch here.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import type { AnyRequest, AnyResponse } from '../h2-downstream.js';

/** Runs `fn`; a throw or a rejection destroys `socket` (and is logged). */
export function containSocket(
  socket: Duplex,
  logger: Logger | undefined,
  what: string,
  fn: () => void | Promise<void>,
): void {
  const fail = (error: unknown): void => {
    logger?.error({ err: error, where: what }, 'unexpected error: connection closed');
    socket.destroy();
  };
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(fail);
  } catch (error) {
    fail(error);
  }
}

/**
 * Runs a request handler; a throw or a rejection answers 500 when nothing was
 * sent yet on HTTP/2 (the stream only), else closes the request's stream or
 * HTTP/1.1 connection (its framing can no longer be trusted).
 */
export function containRequest(
  req: AnyRequest,
  res: AnyResponse,
  logger: Logger | undefined,
  what: string,
  fn: () => void | Promise<void>,
): void {
  const fail = (error: unknown): void => {
    logger?.error(
      { err: error, where: what, method: req.method, path: req.url },
      'unexpected error: request closed',
    );
    if ('stream' in req) {
      if (!res.headersSent && !req.stream.destroyed) {
        try {
          res.writeHead(500, { 'content-length': 0 });
          res.end();
          return;
        } catch {
          // fall through to the reset
        }
      }
      req.stream.destroy();
      return;
    }
    req.socket.destroy();
  };
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(fail);
  } catch (error) {
    fail(error);
  }
}
