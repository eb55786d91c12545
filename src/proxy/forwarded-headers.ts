/**
 * Which headers a proxy hop passes on (RFC 9110 §7.6.1): hop-by-hop fields
 * and every field the `Connection` header names stay on their connection;
 * HTTP/2 pseudo-headers are rebuilt by the next hop's codec. `te: trailers`
 * is the exception Envoy makes — gRPC needs it end to end.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { headerRecord } from '../policy/evaluation.js';
import { connectionOptions } from './http1/head-parser.js';
// Hop-by-hop headers never forwarded, plus proxy-only ones: one list with the transport's.
import { HOP_BY_HOP } from './http1/serializer.js';

const isPseudo = (name: string): boolean => name.charCodeAt(0) === 58;

/** The fields a `Connection` header names (they stay on their hop); undefined without one. */
function connectionNamed(
  connection: string | readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (connection === undefined) return undefined;
  return new Set(
    connectionOptions(typeof connection === 'string' ? connection : connection.join(',')),
  );
}

/**
 * A request's headers as the next hop gets them (before the hop adds its own), without the
 * fields `drop` names (ones the hop replaces or keeps to itself). One pass, no per-request
 * set unless the request has a `Connection` header.
 */
export function forwardedRequestHeaders(
  headers: IncomingHttpHeaders,
  drop?: ReadonlySet<string>,
): OutgoingHttpHeaders {
  const named = connectionNamed(headers.connection);
  const out: OutgoingHttpHeaders = headerRecord<OutgoingHttpHeaders[string]>();
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isPseudo(name)) continue;
    if (named?.has(name) === true || drop?.has(name) === true) continue;
    if (!HOP_BY_HOP.has(name) || (name === 'te' && value === 'trailers')) out[name] = value;
  }
  return out;
}

/**
 * Response headers or trailers as the downstream gets them (`undefined` when none), without
 * the fields `drop` names. Leaving them out of the copy, not deleting them after, keeps the
 * record a fast-mode object (a delete turns it into a dictionary).
 */
export function forwardedResponseHeaders(
  headers: Record<string, string | string[] | undefined> | undefined,
  drop?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const out = headerRecord<string | string[]>();
  if (headers === undefined) return out;
  // The fields a `Connection` header names stay on their hop, as for requests.
  const named = connectionNamed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || isPseudo(name)) continue;
    if (drop?.has(name) !== true && named?.has(name) !== true) out[name] = value;
  }
  return out;
}

/**
 * The trailers a proxy relays at the end of a response: a trailers-only gRPC
 * answer's status fields (re-sent as trailers), then the upstream's trailers
 * without hop-by-hop fields. Undefined when there are none, as for most
 * responses: nothing is built for them.
 */
export function relayedTrailers(
  trailersOnly: Record<string, string | string[]> | undefined,
  trailers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> | undefined {
  if (trailersOnly === undefined && !hasFields(trailers)) return undefined;
  const relayed = { ...trailersOnly, ...forwardedResponseHeaders(trailers) };
  return hasFields(relayed) ? relayed : undefined;
}

function hasFields(record: Readonly<Record<string, unknown>>): boolean {
  for (const name in record) if (Object.hasOwn(record, name)) return true;
  return false;
}
