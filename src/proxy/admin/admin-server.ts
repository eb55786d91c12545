/**
 * The proxy's admin endpoint, bound to 127.0.0.1 only (docs/xds-contract.md
 * "Admin"): `/ready` (200 once a listener config was accepted, 503 before),
 * `/config_dump` (the accepted resources and versions, as Envoy's admin
 * shows them per type).
 */
import * as http from 'node:http';
import type { AdsClient } from '../xds-client/ads-client.js';

export interface AdminServerOptions {
  ads: AdsClient;
}

/** Starts nothing; returns the admin HTTP server (listen on 127.0.0.1 only). */
export function createAdminServer(options: AdminServerOptions): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    if (path === '/ready') {
      const ready = options.ads.snapshot.listener.size > 0;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
      return;
    }
    if (path === '/config_dump') {
      const { snapshot, versions } = options.ads;
      json(200, {
        connected: options.ads.connected,
        configs: Object.fromEntries(
          Object.entries(snapshot).map(([kind, resources]) => [
            kind,
            {
              version_info: versions[kind as keyof typeof versions],
              // Secrets carry key material: names only.
              resources:
                kind === 'secret'
                  ? [...resources.keys()].map((name) => ({ name }))
                  : [...resources.values()],
            },
          ]),
        ),
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
}
