/**
 * The CA's directory on disk (`palisade ca init --dir DIR`):
 *   root-cert.pem   the root certificate (the trust anchor; shareable)
 *   root-key.pem    the root key, mode 0600 (absent when the root is offline)
 *   ca-cert.pem     an intermediate signed by an offline root (optional)
 *   ca-key.pem      its key, mode 0600
 *   token-key.pem   the ES256 key that signs service-account tokens, mode 0600
 *   ca.json         { trustDomain }
 * Issuance uses the intermediate when present, else the root.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PalisadeError } from '../errors/index.js';
import {
  createIntermediateCa,
  createRootCa,
  exportCaPem,
  type CaMaterial,
} from './certificate-authority.js';
import { importPrivateKeyPem } from './pem.js';
import { parseCertificates } from './x509.js';
import { createTokenIssuer, type TokenIssuer } from './service-account-tokens.js';
import { TrustBundle } from './trust-bundle.js';

export const CA_FILES = {
  rootCert: 'root-cert.pem',
  rootKey: 'root-key.pem',
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  tokenKey: 'token-key.pem',
  meta: 'ca.json',
} as const;

export interface InitCaOptions {
  readonly trustDomain?: string;
  readonly ttlMs?: number;
  /** Load a user-supplied root instead of creating one. */
  readonly rootCertPem?: string;
  readonly rootKeyPem?: string;
  /** Create an intermediate in `dir` signed by the root in this directory. */
  readonly intermediateOf?: string;
}

export interface LoadedCa {
  readonly trustDomain: string;
  /** The signer for SVIDs: the intermediate if present, else the root. */
  readonly signer: CaMaterial;
  readonly trustBundle: TrustBundle;
  readonly tokens: TokenIssuer;
}

function writeSecret(path: string, data: string): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function readRequired(dir: string, file: string): string {
  const p = join(dir, file);
  if (!existsSync(p))
    throw new PalisadeError(
      'PAL_ERR_CA_NOT_FOUND',
      `${p} does not exist (run palisade ca init --dir ${dir})`,
    );
  return readFileSync(p, 'utf8');
}

function writeTokenKey(dir: string): void {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeSecret(
    join(dir, CA_FILES.tokenKey),
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
}

/** Creates (or loads into) a CA directory. Refuses to overwrite an existing CA. */
export async function initCaDirectory(
  dir: string,
  options: InitCaOptions = {},
): Promise<{ trustDomain: string; files: string[] }> {
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, CA_FILES.rootCert)) || existsSync(join(dir, CA_FILES.caCert))) {
    throw new PalisadeError('PAL_ERR_USAGE', `${dir} already holds a CA; refusing to overwrite it`);
  }
  const files: string[] = [];
  let trustDomain = options.trustDomain ?? 'cluster.local';
  if (options.intermediateOf !== undefined) {
    const parentDir = options.intermediateOf;
    const parentMeta = JSON.parse(readRequired(parentDir, CA_FILES.meta)) as {
      trustDomain: string;
    };
    trustDomain = options.trustDomain ?? parentMeta.trustDomain;
    const rootCertPem = readRequired(parentDir, CA_FILES.rootCert);
    const root: CaMaterial = {
      cert:
        parseCertificates(rootCertPem)[0] ??
        (() => {
          throw new PalisadeError(
            'PAL_ERR_CERT_INVALID',
            `${parentDir}/root-cert.pem holds no certificate`,
          );
        })(),
      key: await importPrivateKeyPem(readRequired(parentDir, CA_FILES.rootKey)),
      chain: [],
    };
    const inter = await createIntermediateCa(root, {
      trustDomain,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    });
    const pem = await exportCaPem(inter);
    writeFileSync(join(dir, CA_FILES.rootCert), rootCertPem);
    writeFileSync(join(dir, CA_FILES.caCert), pem.certPem);
    writeSecret(join(dir, CA_FILES.caKey), pem.keyPem);
    files.push(CA_FILES.rootCert, CA_FILES.caCert, CA_FILES.caKey);
  } else if (options.rootCertPem !== undefined || options.rootKeyPem !== undefined) {
    if (options.rootCertPem === undefined || options.rootKeyPem === undefined) {
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        'loading a root needs both --root-cert and --root-key',
      );
    }
    const cert = parseCertificates(options.rootCertPem)[0];
    if (cert === undefined)
      throw new PalisadeError(
        'PAL_ERR_CERT_INVALID',
        'the root certificate file holds no PEM certificate',
      );
    await importPrivateKeyPem(options.rootKeyPem); // fails early on a bad key
    writeFileSync(join(dir, CA_FILES.rootCert), options.rootCertPem);
    writeSecret(join(dir, CA_FILES.rootKey), options.rootKeyPem);
    files.push(CA_FILES.rootCert, CA_FILES.rootKey);
  } else {
    const root = await createRootCa({
      trustDomain,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    });
    const pem = await exportCaPem(root);
    writeFileSync(join(dir, CA_FILES.rootCert), pem.certPem);
    writeSecret(join(dir, CA_FILES.rootKey), pem.keyPem);
    files.push(CA_FILES.rootCert, CA_FILES.rootKey);
  }
  writeTokenKey(dir);
  writeFileSync(join(dir, CA_FILES.meta), `${JSON.stringify({ trustDomain }, null, 2)}\n`);
  files.push(CA_FILES.tokenKey, CA_FILES.meta);
  return { trustDomain, files };
}

/** Loads a CA directory written by `initCaDirectory`. */
export async function loadCaDirectory(dir: string): Promise<LoadedCa> {
  const meta = existsSync(join(dir, CA_FILES.meta))
    ? (JSON.parse(readFileSync(join(dir, CA_FILES.meta), 'utf8')) as { trustDomain?: string })
    : {};
  const trustDomain = meta.trustDomain ?? 'cluster.local';
  const rootCerts = parseCertificates(readRequired(dir, CA_FILES.rootCert));
  const root = rootCerts[0];
  if (root === undefined)
    throw new PalisadeError('PAL_ERR_CERT_INVALID', `${dir}/root-cert.pem holds no certificate`);
  let signer: CaMaterial;
  if (existsSync(join(dir, CA_FILES.caCert))) {
    const cert = parseCertificates(readRequired(dir, CA_FILES.caCert))[0];
    if (cert === undefined)
      throw new PalisadeError('PAL_ERR_CERT_INVALID', `${dir}/ca-cert.pem holds no certificate`);
    signer = { cert, key: await importPrivateKeyPem(readRequired(dir, CA_FILES.caKey)), chain: [] };
  } else {
    signer = {
      cert: root,
      key: await importPrivateKeyPem(readRequired(dir, CA_FILES.rootKey)),
      chain: [],
    };
  }
  const tokenKeyPath = join(dir, CA_FILES.tokenKey);
  if (!existsSync(tokenKeyPath)) writeTokenKey(dir);
  const privateKey = createPrivateKey(readFileSync(tokenKeyPath, 'utf8'));
  const tokens = createTokenIssuer({ privateKey, publicKey: createPublicKey(privateKey) });
  return { trustDomain, signer, trustBundle: new TrustBundle(rootCerts), tokens };
}
