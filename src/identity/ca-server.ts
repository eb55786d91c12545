/**
 * The CSR signing service: HTTPS, one endpoint.
 *
 *   POST /v1/sign   Authorization: Bearer <service-account token>
 *                   {"csr": "<PEM>", "ttl": "1h"?}
 *   200 {"certChain": "<leaf+chain PEM>", "trustBundle": "<roots PEM>"}
 *   4xx {"error": {"code": "PAL_ERR_…", "message": "…"}}
 *
 * The token proves a service account; the CA signs only that account's
 * SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`). Bodies over 64 KiB are refused
 * with 413 before they are read in full. The server presents an SVID of its
 * own (`spiffe://<td>/ns/palisade-system/sa/palisade-ca`), verifiable with
 * the trust bundle.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPalisadeError, type ErrorCode } from '../errors/index.js';
import { issueSvid } from './certificate-authority.js';
import { signCsr } from './csr-signing.js';
import type { LoadedCa } from './ca-directory.js';
import { parseDuration } from './duration.js';
import { exportPrivateKeyPem, generateKeyPair } from './pem.js';
import { DEFAULT_TOKEN_AUDIENCE } from './service-account-tokens.js';
import { workloadSpiffeId } from './spiffe-id.js';
import { SERVER_TLS_DEFAULTS } from './tls-policy.js';

export const MAX_REQUEST_BYTES = 64 * 1024;
/** Longest SVID lifetime a caller may ask for. */
export const MAX_SVID_TTL_MS = 7 * 24 * 3600 * 1000;

export interface CaServerOptions {
  readonly ca: LoadedCa;
  readonly host?: string;
  readonly port?: number;
  readonly audience?: string;
  /** Called after every decision, for logs and tests. */
  readonly onDecision?: (d: { spiffeId?: string; code?: ErrorCode; serial?: string }) => void;
}

export interface CaServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  PAL_ERR_TOKEN_MISSING: 401,
  PAL_ERR_TOKEN_INVALID: 401,
  PAL_ERR_CA_IDENTITY_MISMATCH: 403,
  PAL_ERR_CSR_EXTRA_SAN: 403,
  PAL_ERR_CSR_MALFORMED: 400,
  PAL_ERR_CSR_SIGNATURE_INVALID: 400,
  PAL_ERR_CSR_KEY_UNSUPPORTED: 400,
  PAL_ERR_CA_REQUEST_TOO_LARGE: 413,
  PAL_ERR_USAGE: 400,
};

class HttpFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > MAX_REQUEST_BYTES) {
      reject(
        new HttpFailure(
          'PAL_ERR_CA_REQUEST_TOO_LARGE',
          `request body exceeds ${MAX_REQUEST_BYTES} bytes`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(
          new HttpFailure(
            'PAL_ERR_CA_REQUEST_TOO_LARGE',
            `request body exceeds ${MAX_REQUEST_BYTES} bytes`,
          ),
        );
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** Starts the CSR signing service; resolves once it listens. */
export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const { ca } = options;
  const audience = options.audience ?? DEFAULT_TOKEN_AUDIENCE;
  const serverKeys = await generateKeyPair(true);
  const serverCert = await issueSvid(ca.signer, {
    spiffeId: workloadSpiffeId({
      trustDomain: ca.trustDomain,
      namespace: 'palisade-system',
      serviceAccount: 'palisade-ca',
    }),
    publicKey: serverKeys.publicKey,
    dnsNames: ['localhost'],
    ttlMs: 365 * 24 * 3600 * 1000,
  });
  const trustBundlePem = ca.trustBundle.toPem();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url !== '/v1/sign') {
      send(res, 404, {
        error: { code: 'PAL_ERR_USAGE', message: `no such endpoint ${String(req.url)}` },
      });
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, { error: { code: 'PAL_ERR_USAGE', message: 'use POST' } });
      return;
    }
    try {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer\s+(\S+)$/.exec(auth);
      const body = await readBody(req);
      if (m?.[1] === undefined)
        throw new HttpFailure(
          'PAL_ERR_TOKEN_MISSING',
          'missing "Authorization: Bearer <service-account token>"',
        );
      const claims = await ca.tokens.verify(m[1], audience);
      let parsed: { csr?: unknown; ttl?: unknown };
      try {
        parsed = JSON.parse(body) as { csr?: unknown; ttl?: unknown };
      } catch {
        throw new HttpFailure('PAL_ERR_CSR_MALFORMED', 'request body is not JSON');
      }
      if (typeof parsed.csr !== 'string')
        throw new HttpFailure('PAL_ERR_CSR_MALFORMED', 'request body needs "csr": a PEM string');
      let ttlMs: number | undefined;
      if (parsed.ttl !== undefined) {
        if (typeof parsed.ttl !== 'string')
          throw new HttpFailure('PAL_ERR_USAGE', '"ttl" must be a duration string like "1h"');
        ttlMs = Math.min(parseDuration(parsed.ttl), MAX_SVID_TTL_MS);
      }
      const entitled = workloadSpiffeId({
        trustDomain: ca.trustDomain,
        namespace: claims.namespace,
        serviceAccount: claims.serviceAccount,
      });
      const issued = await signCsr(ca.signer, parsed.csr, {
        entitledSpiffeId: entitled,
        ...(ttlMs === undefined ? {} : { ttlMs }),
      });
      options.onDecision?.({ spiffeId: entitled, serial: issued.serial });
      send(res, 200, { certChain: issued.certChainPem, trustBundle: trustBundlePem });
    } catch (err) {
      const code: ErrorCode =
        err instanceof HttpFailure
          ? err.code
          : isPalisadeError(err)
            ? err.code
            : 'PAL_ERR_INTERNAL';
      const message =
        err instanceof Error && code !== 'PAL_ERR_INTERNAL' ? err.message : 'internal error';
      options.onDecision?.({ code });
      if (!res.headersSent) send(res, STATUS[code] ?? 500, { error: { code, message } });
    }
  };

  const server: Server = createServer(
    {
      cert: serverCert.certChainPem,
      key: await exportPrivateKeyPem(serverKeys.privateKey),
      // TLS 1.2+, AEAD suites only (the token and CSR travel here).
      ...SERVER_TLS_DEFAULTS,
    },
    (req, res) => {
      void handle(req, res);
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
