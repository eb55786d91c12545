/**
 * Consistent-hash load balancing as Envoy does it for Istio's
 * `loadBalancer.consistentHash`: the route's `hash_policy` list turns a
 * request into a 64-bit-ish hash (header, cookie, source IP, query
 * parameter; policies combine as Envoy's do — rotate left 1, xor — and a
 * `terminal` policy that produced a hash stops the list), and the cluster's
 * `RING_HASH` (a ring of `minimum_ring_size` points, default 1024) or
 * `MAGLEV` (Google's Maglev lookup table, `table_size` default 65537) maps
 * the hash to an endpoint. Both are built over the endpoints that are usable
 * (not ejected) and cached per endpoint set, so a host leaving moves only
 * its own share of keys. A request without a hash value (header absent,
 * …) gets a random endpoint, as in Envoy. A cookie policy with a `ttl`
 * generates the cookie when the request has none (Envoy's sticky session).
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { list, rec, str } from '../../xds/index.js';
import { headerValue } from '../envoy-values.js';

/** A request's hash, and a cookie to set on its response when the policy generated one. */
export interface RequestHash {
  readonly hash: number | undefined;
  readonly setCookie: string | undefined;
}

/** FNV-1a over UTF-16 code units, 32 bits (stable, fast; not security-relevant). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32) so nearby keys spread over the ring.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function cookieValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function seconds(duration: unknown): number | undefined {
  const d = rec(duration);
  if (d['seconds'] === undefined && d['nanos'] === undefined) return undefined;
  return Number(d['seconds'] ?? 0) + Number(d['nanos'] ?? 0) / 1e9;
}

/** The hash of a request under a route's `hash_policy` (undefined hash: no policy produced one). */
export function requestHash(
  policies: unknown,
  headers: IncomingHttpHeaders,
  path: string,
  sourceIp: string | undefined,
): RequestHash {
  let hash: number | undefined;
  let setCookie: string | undefined;
  for (const policy of list(policies)) {
    let key: string | undefined;
    if ('header' in policy) key = headerValue(headers, str(rec(policy['header'])['header_name']));
    else if ('cookie' in policy) {
      const cookie = rec(policy['cookie']);
      const name = str(cookie['name']);
      key = cookieValue(headers, name);
      const ttl = seconds(cookie['ttl']);
      if (key === undefined && ttl !== undefined && name !== '') {
        key = randomBytes(8).toString('hex');
        const cookiePath = str(cookie['path']);
        setCookie =
          `${name}=${key}` +
          (ttl > 0 ? `; Max-Age=${String(Math.floor(ttl))}` : '') +
          (cookiePath === '' ? '' : `; Path=${cookiePath}`) +
          '; HttpOnly';
      }
    } else if ('connection_properties' in policy) {
      if (rec(policy['connection_properties'])['source_ip'] === true) key = sourceIp;
    } else if ('query_parameter' in policy) {
      const name = str(rec(policy['query_parameter'])['name']);
      const q = path.indexOf('?');
      if (q !== -1) {
        const value = new URLSearchParams(path.slice(q + 1)).get(name);
        key = value ?? undefined;
      }
    }
    if (key === undefined) continue;
    const h = fnv1a(key);
    hash = hash === undefined ? h : (((hash << 1) | (hash >>> 31)) ^ h) >>> 0;
    if (policy['terminal'] === true) break;
  }
  return { hash, setCookie };
}

/** The hash-policy kinds the proxy implements (others are NACKed). */
export const HASH_POLICY_KINDS: ReadonlySet<string> = new Set([
  'header',
  'cookie',
  'connection_properties',
  'query_parameter',
]);

interface Ring {
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
}

const rings = new Map<string, Ring>();
const tables = new Map<string, Uint32Array>();
const MAX_CACHED = 256;
const EMPTY = 0xffffffff;

function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= MAX_CACHED) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
  return value;
}

function ringFor(keys: readonly string[], minimumSize: number): Ring {
  const cacheKey = `${String(minimumSize)}|${keys.join(',')}`;
  const hit = rings.get(cacheKey);
  if (hit !== undefined) return hit;
  const perHost = Math.max(1, Math.ceil(minimumSize / keys.length));
  const entries: [number, number][] = [];
  keys.forEach((key, owner) => {
    for (let r = 0; r < perHost; r += 1) entries.push([fnv1a(`${key}_${String(r)}`), owner]);
  });
  entries.sort((a, b) => a[0] - b[0]);
  return remember(rings, cacheKey, {
    points: Uint32Array.from(entries, (e) => e[0]),
    owners: Uint32Array.from(entries, (e) => e[1]),
  });
}

/** Maglev's lookup table (Eisenbud et al., NSDI '16 §3.4): each host fills its permutation in turn. */
function maglevFor(keys: readonly string[], size: number): Uint32Array {
  const cacheKey = `${String(size)}|${keys.join(',')}`;
  const hit = tables.get(cacheKey);
  if (hit !== undefined) return hit;
  const n = keys.length;
  const offsets = Uint32Array.from(keys, (k) => fnv1a(`${k}#offset`) % size);
  const skips = Uint32Array.from(keys, (k) => (fnv1a(`${k}#skip`) % (size - 1)) + 1);
  const next = new Uint32Array(n);
  const table = new Uint32Array(size).fill(EMPTY);
  // size is prime (validated) and 1 ≤ skip < size, so each permutation visits every slot.
  const slotOf = (i: number): number =>
    ((offsets[i] ?? 0) + (next[i] ?? 0) * (skips[i] ?? 1)) % size;
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i += 1) {
      let slot = slotOf(i);
      while (table[slot] !== EMPTY) {
        next[i] = (next[i] ?? 0) + 1;
        slot = slotOf(i);
      }
      table[slot] = i;
      next[i] = (next[i] ?? 0) + 1;
      filled += 1;
    }
  }
  return remember(tables, cacheKey, table);
}

/**
 * The index into `keys` (the usable endpoints, `host:port`) for `hash` under
 * the cluster's RING_HASH or MAGLEV config; random without a hash.
 */
export function hashPick(
  lbPolicy: string,
  tableSize: number,
  keys: readonly string[],
  hash: number | undefined,
): number {
  if (keys.length <= 1 || hash === undefined) return keys.length <= 1 ? 0 : randomInt(keys.length);
  if (lbPolicy === 'MAGLEV') {
    const table = maglevFor(keys, tableSize);
    return table[hash % tableSize] ?? 0;
  }
  const ring = ringFor(keys, Math.min(tableSize, 8_388_608));
  // First point at or after the hash, wrapping (Envoy's ring lookup).
  let lo = 0;
  let hi = ring.points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ring.points[mid] ?? 0) < hash) lo = mid + 1;
    else hi = mid;
  }
  return ring.owners[lo === ring.points.length ? 0 : lo] ?? 0;
}
