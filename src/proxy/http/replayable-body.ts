/**
 * The request body kept for retries (retry-handler.ts): one function shared by
 * the node:http / node:http2 exchange and the raw-socket HTTP/1.1 one.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { ReplayableBody } from './types.js';

/**
 * Tees `req` into a live stream for the first attempt and a buffer of at
 * most `limit` bytes. A retry may start before the request has ended (an
 * upstream can answer early): its copy gets the kept bytes, then the rest.
 * A body beyond the limit is not retried (Envoy's per-request buffer limit).
 */
export function replayableBody(req: Readable, limit: number): ReplayableBody {
  const first = new PassThrough();
  const chunks: Buffer[] = [];
  const copies: PassThrough[] = [];
  let size = 0;
  let ended = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
    for (const copy of copies)
      if (size <= limit) copy.write(chunk);
      else copy.destroy(new Error('request body exceeded the retry buffer'));
    if (!first.write(chunk)) {
      req.pause();
      first.once('drain', () => req.resume());
    }
  });
  req.on('end', () => {
    ended = true;
    first.end();
    for (const copy of copies) copy.end();
  });
  req.on('error', (error) => {
    first.destroy(error);
    for (const copy of copies) copy.destroy(error);
  });
  return {
    first,
    replayable: () => size <= limit,
    replay: () => {
      const copy = new PassThrough();
      for (const chunk of chunks) copy.write(chunk);
      if (ended) copy.end();
      else copies.push(copy);
      return copy;
    },
  };
}
