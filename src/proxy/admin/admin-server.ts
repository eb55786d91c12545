/**
 * The proxy's admin endpoint, bound to 127.0.0.1 only (docs/xds-contract.md
 * "Admin"): `/ready` (200 once a listener config was accepted, 503 before),
 * `/config_dump` (the accepted resources and versions, as Envoy's admin
 * shows them per type), `/certs` (the workload certificate: SPIFFE ID,
 * serial, validity; and the trust bundle — never key material).
 */
import * as http from 'node:http';
import { X509Certificate } from 'node:crypto';
import type { SvidSource } from '../../identity/index.js';
import type { MeshMetrics } from '../../telemetry/index.js';
import type { SecretStore } from '../tls/secrets.js';
import type { AdsClient } from '../xds-client/ads-client.js';

export interface AdminServerOptions {
  ads: AdsClient;
  /** Istio standard metrics, served on /stats/prometheus. */
  metrics?: MeshMetrics;
  secrets?: SecretStore;
  svid?: SvidSource;
}

/** Certificate facts for `/certs` (Envoy's admin shows the same per certificate). */
function describeCerts(pem: string): object[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => {
    const cert = new X509Certificate(block);
    return {
      serial_number: cert.serialNumber.toLowerCase(),
      subject_alt_names: (cert.subjectAltName ?? '').split(/,\s*/).filter((s) => s !== ''),
      subject: cert.subject,
      valid_from: new Date(cert.validFrom).toISOString(),
      expiration_time: new Date(cert.validTo).toISOString(),
      days_until_expiration: Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000),
    };
  });
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
      // Ready once a listener update (possibly empty, e.g. an idle gateway) was accepted.
      const ready = options.ads.versions.listener !== '';
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
      return;
    }
    if (path === '/stats/prometheus' && options.metrics !== undefined) {
      const registry = options.metrics.registry;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (path === '/certs') {
      const own = options.secrets?.get('default')?.tlsCertificate;
      const roots = options.secrets?.get('ROOTCA')?.validationContext;
      json(200, {
        spiffe_id: options.svid?.spiffeId ?? null,
        certificates: [
          {
            cert_chain: own === undefined ? [] : describeCerts(own.certChainPem),
            ca_cert: roots === undefined ? [] : describeCerts(roots.trustedCaPem),
          },
        ],
      });
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
