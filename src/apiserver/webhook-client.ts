/**
 * The HTTPS client behind every webhook the API server calls: token
 * authentication (TokenReview), authorization (SubjectAccessReview) and
 * admission (AdmissionReview). Targets come from a kubeconfig-format file
 * (`--authentication-token-webhook-config-file`,
 * `--authorization-webhook-config-file`: "the cluster is the remote service,
 * the user is the API server") or from a webhook configuration's
 * `clientConfig` (url + caBundle).
 *
 * Errors are worded as Go's net/http words them (`Post "URL": dial tcp
 * HOST:PORT: connect: connection refused`), because Kubernetes puts that
 * text into the Status a client sees.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PalisadeError } from '../errors/index.js';

export interface WebhookTarget {
  readonly url: string;
  /** PEM CA bundle for the server's certificate; system roots when absent. */
  readonly caPem?: string;
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  readonly token?: string;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

/**
 * Reads a webhook kubeconfig: the current context's cluster (`server`,
 * `certificate-authority[-data]`) and user (`client-certificate[-data]`,
 * `client-key[-data]`, `token`); without a current context, the first of each.
 * Relative file paths are relative to the kubeconfig, as client-go resolves them.
 */
export function readWebhookKubeconfig(flag: string, path: string): WebhookTarget {
  let doc: Record<string, unknown>;
  try {
    doc = rec(parseYaml(readFileSync(path, 'utf8')));
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${flag} ${path}: cannot read`, { cause });
  }
  const named = (list: unknown, name: string | undefined): Record<string, unknown> => {
    const items = Array.isArray(list) ? list.map(rec) : [];
    const hit = name === undefined ? items[0] : items.find((i) => i.name === name);
    return hit ?? {};
  };
  const contexts = Array.isArray(doc['contexts']) ? doc['contexts'].map(rec) : [];
  const current = typeof doc['current-context'] === 'string' ? doc['current-context'] : undefined;
  const ctx = rec(
    (current === undefined ? contexts[0] : contexts.find((c) => c.name === current))?.context,
  );
  const cluster = rec(
    named(doc.clusters, typeof ctx.cluster === 'string' ? ctx.cluster : undefined).cluster,
  );
  const user = rec(named(doc.users, typeof ctx.user === 'string' ? ctx.user : undefined).user);
  const base = dirname(path);
  const pem = (
    dataKey: string,
    fileKey: string,
    from: Record<string, unknown>,
  ): string | undefined => {
    const data = from[dataKey];
    if (typeof data === 'string' && data !== '')
      return Buffer.from(data, 'base64').toString('utf8');
    const file = from[fileKey];
    if (typeof file === 'string' && file !== '') {
      try {
        return readFileSync(resolve(base, file), 'utf8');
      } catch (cause) {
        throw new PalisadeError(
          'PAL_ERR_FILE_READ',
          `${flag} ${path}: ${fileKey} ${file}: cannot read`,
          {
            cause,
          },
        );
      }
    }
    return undefined;
  };
  const server = cluster.server;
  if (typeof server !== 'string' || !server.startsWith('https://'))
    throw new PalisadeError(
      'PAL_ERR_CONFIG_INVALID',
      `${flag} ${path}: clusters[].cluster.server: an https:// URL is required`,
    );
  const caPem = pem('certificate-authority-data', 'certificate-authority', cluster);
  const clientCertPem = pem('client-certificate-data', 'client-certificate', user);
  const clientKeyPem = pem('client-key-data', 'client-key', user);
  return {
    url: server,
    ...(caPem === undefined ? {} : { caPem }),
    ...(clientCertPem === undefined ? {} : { clientCertPem }),
    ...(clientKeyPem === undefined ? {} : { clientKeyPem }),
    ...(typeof user.token === 'string' && user.token !== '' ? { token: user.token } : {}),
  };
}

/** A failed call, its message worded as Go's client words it. */
export class WebhookCallError extends Error {}

/** Parses a Go duration as Kubernetes flags take it (`2m`, `30s`, `1h30m`, `500ms`). */
export function parseDuration(flag: string, text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    matched = re.lastIndex;
  }
  if (text === '0') return 0;
  if (matched !== text.length || text === '')
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `${flag} ${JSON.stringify(text)}: expected a duration like 2m or 30s`,
    );
  return total;
}

/**
 * POSTs a JSON review and returns the decoded JSON answer. `timeoutMs`
 * bounds the whole exchange; Kubernetes adds `?timeout=` to the URL so
 * the webhook knows its budget, and so do we.
 */
export function postReview(
  target: WebhookTarget,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const url = new URL(target.url);
  const seconds = Math.max(1, Math.round(timeoutMs / 1000));
  url.searchParams.set('timeout', `${String(seconds)}s`);
  const shown = `Post ${JSON.stringify(url.toString())}`;
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': String(payload.length),
          ...(target.token === undefined ? {} : { authorization: `Bearer ${target.token}` }),
        },
        ...(target.caPem === undefined ? {} : { ca: target.caPem }),
        ...(target.clientCertPem === undefined ? {} : { cert: target.clientCertPem }),
        ...(target.clientKeyPem === undefined ? {} : { key: target.clientKeyPem }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 3 * 1024 * 1024) {
            req.destroy(new WebhookCallError(`${shown}: response body too large`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code >= 300) {
            reject(
              new WebhookCallError(
                `the server responded with status ${String(code)}: ${text.slice(0, 200)}`,
              ),
            );
            return;
          }
          try {
            resolvePromise(JSON.parse(text) as unknown);
          } catch {
            reject(new WebhookCallError(`the response body could not be decoded as JSON`));
          }
        });
        res.on('error', (e) => {
          reject(new WebhookCallError(`${shown}: ${e.message}`));
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new WebhookCallError(`${shown}: context deadline exceeded`));
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e instanceof WebhookCallError) {
        reject(e);
        return;
      }
      const addr = `${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port === '' ? '443' : url.port}`;
      if (e.code === 'ECONNREFUSED')
        reject(new WebhookCallError(`${shown}: dial tcp ${addr}: connect: connection refused`));
      else if (e.code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(e.code))
        reject(new WebhookCallError(`${shown}: tls: failed to verify certificate: ${e.message}`));
      else reject(new WebhookCallError(`${shown}: ${e.message}`));
    });
    req.end(payload);
  });
}
