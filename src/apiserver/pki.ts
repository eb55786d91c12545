/**
 * The API server's PKI in its data directory, made on first start:
 *   pki/ca.crt, pki/ca.key            the cluster CA (serving and client certificates)
 *   pki/apiserver.crt, .key           the serving certificate (localhost, 127.0.0.1, the listen host)
 *   pki/admin.crt, .key               CN=admin, O=system:masters (cluster-admin by group)
 *   pki/sa.key                        the ES256 key that signs service-account tokens
 *   admin.kubeconfig                  the admin user, the CA embedded
 * Keys are mode 0600. Kubernetes: "PKI certificates and requirements" — a
 * client certificate's CN is the user name and each O a group.
 */
import 'reflect-metadata';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { stringify } from 'yaml';
import {
  createTlsCa,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  issueServerCertificate,
  randomSerial,
  type PemCertificate,
} from '../identity/index.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SKEW_MS = 5 * 60 * 1000;

export interface ApiServerPki {
  readonly ca: PemCertificate;
  readonly serving: PemCertificate;
  readonly admin: PemCertificate;
  readonly saPrivateKey: KeyObject;
  readonly saPublicKey: KeyObject;
  /** Path of the admin kubeconfig. */
  readonly adminKubeconfig: string;
}

function writeSecret(path: string, data: string): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Escapes a value for an X.500 name string (RFC 4514 §2.4). */
function rdnValue(v: string): string {
  return v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
}

/** A client certificate: CN is the user, each organization a group. */
export async function issueClientCertificate(
  ca: PemCertificate,
  options: { readonly user: string; readonly groups?: readonly string[]; readonly ttlMs?: number },
): Promise<PemCertificate> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const keys = await generateKeyPair(true);
  const now = Date.now();
  const subject = [
    `CN=${rdnValue(options.user)}`,
    ...(options.groups ?? []).map((g) => `O=${rdnValue(g)}`),
  ].join(', ');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: caCert.subject,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + (options.ttlMs ?? 365 * 24 * 3600 * 1000)),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** A kubeconfig for one user of the server (client certificate or token). */
export function kubeconfig(options: {
  readonly server: string;
  readonly caPem: string;
  readonly user: string;
  readonly client?: PemCertificate;
  readonly token?: string;
}): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'palisade',
        cluster: { server: options.server, 'certificate-authority-data': b64(options.caPem) },
      },
    ],
    users: [
      {
        name: options.user,
        user: {
          ...(options.client === undefined
            ? {}
            : {
                'client-certificate-data': b64(options.client.certPem),
                'client-key-data': b64(options.client.keyPem),
              }),
          ...(options.token === undefined ? {} : { token: options.token }),
        },
      },
    ],
    contexts: [{ name: 'palisade', context: { cluster: 'palisade', user: options.user } }],
    'current-context': 'palisade',
  });
}

function loadPair(dir: string, name: string): PemCertificate | undefined {
  const c = join(dir, `${name}.crt`);
  const k = join(dir, `${name}.key`);
  if (!existsSync(c) || !existsSync(k)) return undefined;
  return { certPem: readFileSync(c, 'utf8'), keyPem: readFileSync(k, 'utf8') };
}

function savePair(dir: string, name: string, p: PemCertificate): void {
  writeFileSync(join(dir, `${name}.crt`), p.certPem);
  writeSecret(join(dir, `${name}.key`), p.keyPem);
}

/**
 * Loads the PKI from `dataDir`, creating what is missing. The serving
 * certificate is reissued when the listen host is not among its names.
 */
export async function ensurePki(
  dataDir: string,
  host: string,
  server: string,
): Promise<ApiServerPki> {
  const dir = join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let ca = loadPair(dir, 'ca');
  if (ca === undefined) {
    ca = await createTlsCa('palisade-apiserver-ca', 10 * 365 * 24 * 3600 * 1000);
    savePair(dir, 'ca', ca);
  }
  const dnsNames = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'];
  const ips = ['127.0.0.1', '::1'];
  if (isIP(host) !== 0 && !ips.includes(host)) ips.push(host);
  else if (isIP(host) === 0 && !dnsNames.includes(host)) dnsNames.push(host);
  let serving = loadPair(dir, 'apiserver');
  const names =
    serving === undefined
      ? ''
      : (new x509.X509Certificate(serving.certPem)
          .getExtension(x509.SubjectAlternativeNameExtension)
          ?.names.toJSON()
          .map((n) => n.value)
          .join(',') ?? '');
  if (serving === undefined || !names.split(',').includes(host)) {
    serving = await issueServerCertificate(ca, { dnsNames, ips, ttlMs: 365 * 24 * 3600 * 1000 });
    savePair(dir, 'apiserver', serving);
  }
  let admin = loadPair(dir, 'admin');
  if (admin === undefined) {
    admin = await issueClientCertificate(ca, { user: 'admin', groups: ['system:masters'] });
    savePair(dir, 'admin', admin);
  }
  const saPath = join(dir, 'sa.key');
  if (!existsSync(saPath)) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeSecret(saPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  }
  const saPrivateKey = createPrivateKey(readFileSync(saPath, 'utf8'));
  const adminKubeconfig = join(dataDir, 'admin.kubeconfig');
  writeSecret(
    adminKubeconfig,
    kubeconfig({ server, caPem: ca.certPem, user: 'admin', client: admin }),
  );
  return {
    ca,
    serving,
    admin,
    saPrivateKey,
    saPublicKey: createPublicKey(saPrivateKey),
    adminKubeconfig,
  };
}
