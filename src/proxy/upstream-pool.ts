/**
 * undici's connection Pool, without the rest of undici. `import { Pool } from
 * 'undici'` also loads fetch, WebSocket, EventSource, the cache and the mock
 * agents (~9 MB of every proxy's resident memory); the proxy only calls
 * `dispatch()`, which Pool has on its own. undici publishes no package
 * "exports", so its files are importable; the lockfile pins the version and
 * every proxy test goes through this Pool.
 */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

export const Pool = createRequire(import.meta.url)(
  'undici/lib/dispatcher/pool.js',
) as typeof UndiciPool;
export type Pool = UndiciPool;
