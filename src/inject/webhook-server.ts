/**
 * The injector as a mutating admission webhook: an HTTPS server answering
 * `admission.k8s.io/v1` AdmissionReview POSTs on `/inject` (Istio's path)
 * with `allowed: true` and, when the pod gets a sidecar, a base64 JSONPatch
 * (`patchType: JSONPatch`). It never refuses a pod: a pod it cannot read is
 * let through unchanged, as Istio's injector does, so a broken injector
 * cannot block workloads whose webhook says `failurePolicy: Ignore`.
 * Which namespaces are sent to it is the MutatingWebhookConfiguration's
 * business (`namespaceSelector` on `istio-injection=enabled`), so it works
 * unchanged behind a real kube-apiserver.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { injectionPatch, skipReason, type InjectOptions } from './sidecar.js';

export interface InjectorServer {
  readonly url: string;
  close(): Promise<void>;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

/** The AdmissionReview answer for one request. */
export function reviewResponse(review: unknown, options: InjectOptions): Record<string, unknown> {
  const request = rec(rec(review).request);
  const uid = typeof request.uid === 'string' ? request.uid : '';
  const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' };
  const kind = rec(request.kind);
  const pod = rec(request.object);
  const namespace =
    typeof request.namespace === 'string'
      ? request.namespace
      : typeof rec(pod.metadata).namespace === 'string'
        ? String(rec(pod.metadata).namespace)
        : 'default';
  if (kind.kind !== 'Pod' || kind.group !== '' || request.operation !== 'CREATE')
    return { ...base, response: { uid, allowed: true } };
  if (skipReason(pod, namespace) !== undefined)
    return { ...base, response: { uid, allowed: true } };
  const patch = injectionPatch(pod, namespace, options);
  return {
    ...base,
    response: {
      uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    },
  };
}

export async function startInjectorWebhook(
  options: InjectOptions & { host: string; port: number; certPem: string; keyPem: string },
): Promise<InjectorServer> {
  const server: Server = createServer(
    { cert: options.certPem, key: options.keyPem, minVersion: 'TLSv1.2' },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method === 'GET' && (path === '/healthz' || path === '/ready')) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      if (req.method !== 'POST' || !(path === '/inject' || path.startsWith('/inject/'))) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 3 * 1024 * 1024) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => {
        let review: unknown;
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res
            .writeHead(400, { 'content-type': 'text/plain' })
            .end('the body is not an AdmissionReview');
          return;
        }
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(reviewResponse(review, options)));
      });
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `https://${host}:${String(port)}/inject`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}
