/**
 * The workload side of identity (what a proxy runs): generate a key pair in
 * this process (the private key never leaves it), send a CSR with the
 * service-account token to the CA, and keep the SVID fresh — rotate at about
 * half its lifetime with random jitter, retry with exponential backoff while
 * the CA is down and the current certificate is still valid, and publish each
 * new certificate for hot reload into live TLS servers and clients.
 */
import { randomInt, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import { PalisadeError } from '../errors/index.js';
import { createCsr } from './csr.js';
import { exportPrivateKeyPem, generateKeyPair, pemBlocks } from './pem.js';
import { peerSpiffeIds, spiffeServerIdentityCheck } from './secure-naming.js';
import { workloadSpiffeId } from './spiffe-id.js';

export interface SvidSnapshot {
  readonly spiffeId: string;
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly trustBundlePem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface SvidSourceOptions {
  /** The CA's base URL, e.g. https://127.0.0.1:15012 */
  readonly caUrl: string;
  /** Roots that verify the CA server's certificate. */
  readonly caTrustBundlePem: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /**
   * The service-account token, a function read at each CSR (projected tokens
   * rotate: a renewal must present the token the kubelet wrote last), or a
   * file read at each request.
   */
  readonly token?: string | (() => string);
  readonly tokenFile?: string;
  /** Requested lifetime, e.g. "24h" (the CA may cap it). */
  readonly ttl?: string;
  /** Fraction of lifetime after which to rotate (default 0.5) and jitter fraction (default 0.1). */
  readonly rotateAt?: number;
  readonly jitter?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Events: 'rotated' (SvidSnapshot), 'error' is never emitted — failures go to 'retry' (Error, delayMs). */
export class SvidSource extends EventEmitter {
  readonly #options: SvidSourceOptions;
  readonly #spiffeId: string;
  #current: SvidSnapshot | undefined;
  #context: SecureContext | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #failures = 0;

  constructor(options: SvidSourceOptions) {
    super();
    this.#options = options;
    this.#spiffeId = workloadSpiffeId({
      trustDomain: options.trustDomain,
      namespace: options.namespace,
      serviceAccount: options.serviceAccount,
    });
  }

  get spiffeId(): string {
    return this.#spiffeId;
  }

  /** The current SVID; throws before the first one arrives. */
  get current(): SvidSnapshot {
    if (this.#current === undefined)
      throw new PalisadeError('PAL_ERR_CA_UNAVAILABLE', 'no SVID yet');
    return this.#current;
  }

  /** A SecureContext with the current cert, key and trust bundle (rebuilt on rotation). */
  secureContext(): SecureContext {
    if (this.#context === undefined)
      throw new PalisadeError('PAL_ERR_CA_UNAVAILABLE', 'no SVID yet');
    return this.#context;
  }

  /** Fetches the first SVID (retrying with backoff) and schedules rotation. */
  async start(): Promise<SvidSnapshot> {
    for (;;) {
      try {
        const snap = await this.#fetch();
        this.#install(snap);
        return snap;
      } catch (err) {
        if (this.#closed) throw err;
        const delay = this.#backoff();
        this.emit('retry', err, delay);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Stops rotation. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  #backoff(): number {
    const min = this.#options.minBackoffMs ?? 200;
    const max = this.#options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, min * 2 ** this.#failures);
    this.#failures += 1;
    return base / 2 + randomInt(Math.max(1, Math.floor(base / 2)));
  }

  #install(snap: SvidSnapshot): void {
    this.#failures = 0;
    this.#current = snap;
    this.#context = createSecureContext({
      cert: snap.certChainPem,
      key: snap.keyPem,
      ca: snap.trustBundlePem,
    });
    this.emit('rotated', snap);
    this.#schedule(this.#rotationDelay(snap));
  }

  #rotationDelay(snap: SvidSnapshot): number {
    // Measure the lifetime from when the certificate arrived, not from its
    // notBefore, which the CA backdates for clock skew.
    const start = Math.max(snap.notBefore.getTime(), Date.now());
    const life = Math.max(0, snap.notAfter.getTime() - start);
    const at = this.#options.rotateAt ?? 0.5;
    const jitter = this.#options.jitter ?? 0.1;
    const jitterMs = Math.floor(life * jitter);
    const target = start + life * at - jitterMs / 2 + (jitterMs > 0 ? randomInt(jitterMs) : 0);
    return Math.max(0, target - Date.now());
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.#rotate();
    }, delayMs);
    this.#timer.unref();
  }

  async #rotate(): Promise<void> {
    try {
      this.#install(await this.#fetch());
    } catch (err) {
      // Keep the current certificate while it is valid; retry sooner than it expires.
      const delay = this.#backoff();
      const remaining = (this.#current?.notAfter.getTime() ?? 0) - Date.now();
      this.emit('retry', err, Math.min(delay, Math.max(50, remaining / 2)));
      this.#schedule(Math.min(delay, Math.max(50, remaining / 2)));
    }
  }

  #token(): string {
    const token = this.#options.token;
    if (typeof token === 'function') return token();
    if (token !== undefined) return token;
    if (this.#options.tokenFile !== undefined)
      return readFileSync(this.#options.tokenFile, 'utf8').trim();
    throw new PalisadeError('PAL_ERR_TOKEN_MISSING', 'SvidSource needs a token or tokenFile');
  }

  async #fetch(): Promise<SvidSnapshot> {
    const keys = await generateKeyPair(true);
    const { csrPem } = await createCsr(this.#spiffeId, { keys });
    const body = JSON.stringify({
      csr: csrPem,
      ...(this.#options.ttl === undefined ? {} : { ttl: this.#options.ttl }),
    });
    const caId = workloadSpiffeId({
      trustDomain: this.#options.trustDomain,
      namespace: 'palisade-system',
      serviceAccount: 'palisade-ca',
    });
    const response = await postJson(
      `${this.#options.caUrl}/v1/sign`,
      body,
      this.#token(),
      this.#options.caTrustBundlePem,
      [caId],
    );
    // node:crypto's parser, not the ASN.1 library: a proxy reads only the SAN, serial and dates.
    const leafPem = pemBlocks(response.certChain)[0];
    const leaf = leafPem === undefined ? undefined : new X509Certificate(leafPem);
    const ids = peerSpiffeIds({ subjectaltname: leaf?.subjectAltName ?? '' });
    if (leaf === undefined || ids.length !== 1 || ids[0] !== this.#spiffeId) {
      throw new PalisadeError(
        'PAL_ERR_CA_UNAVAILABLE',
        'the CA returned a certificate for another identity',
      );
    }
    return {
      spiffeId: this.#spiffeId,
      certChainPem: response.certChain,
      keyPem: await exportPrivateKeyPem(keys.privateKey),
      trustBundlePem: response.trustBundle,
      serial: leaf.serialNumber.toLowerCase(),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
  }
}

function postJson(
  url: string,
  body: string,
  token: string,
  caPem: string,
  allowedIds: readonly string[],
): Promise<{ certChain: string; trustBundle: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: caPem,
        checkServerIdentity: spiffeServerIdentityCheck(allowedIds),
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          'content-length': Buffer.byteLength(body),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            const parsed = JSON.parse(text) as {
              certChain?: string;
              trustBundle?: string;
              error?: { code: string; message: string };
            };
            if (
              res.statusCode === 200 &&
              typeof parsed.certChain === 'string' &&
              typeof parsed.trustBundle === 'string'
            ) {
              resolve({ certChain: parsed.certChain, trustBundle: parsed.trustBundle });
            } else {
              reject(
                new PalisadeError(
                  'PAL_ERR_CA_UNAVAILABLE',
                  `CA refused (${String(res.statusCode)}): ${parsed.error?.code ?? ''} ${parsed.error?.message ?? text}`,
                ),
              );
            }
          } catch {
            reject(
              new PalisadeError(
                'PAL_ERR_CA_UNAVAILABLE',
                `CA answered ${String(res.statusCode)} with a non-JSON body`,
              ),
            );
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('CA request timed out')));
    req.on('error', (e) => {
      reject(
        new PalisadeError('PAL_ERR_CA_UNAVAILABLE', `CA unreachable: ${e.message}`, { cause: e }),
      );
    });
    req.end(body);
  });
}

/** Creates an SvidSource (call `start()` to fetch the first SVID). */
export function createSvidSource(options: SvidSourceOptions): SvidSource {
  return new SvidSource(options);
}
