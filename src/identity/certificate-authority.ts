/**
 * Palisade's certificate authority: roots, intermediates and X509-SVIDs.
 *
 * Follows the X509-SVID standard (X509-SVID.md): a leaf carries exactly one
 * URI SAN (§2), basicConstraints CA=false (§4.1), digitalSignature and no
 * keyCertSign/cRLSign (§4.3); signing certificates carry CA=true and
 * keyCertSign (§4.1, §4.3). Serial numbers come from a CSPRNG; notBefore is
 * backdated for clock skew; a leaf never outlives its signer.
 */
import { randomBytes } from 'node:crypto';
import { PalisadeError } from '../errors/index.js';
import { EC_ALGORITHM, exportPrivateKeyPem, generateKeyPair, x509 } from './pem.js';
import type { CryptoKey } from './pem.js';
import { parseSpiffeId } from './spiffe-id.js';

/** Default SVID lifetime (Istio: 24h). */
export const DEFAULT_SVID_TTL_MS = 24 * 3600 * 1000;
/** Default root lifetime: 10 years. */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3600 * 1000;
/** notBefore is backdated this much so peers with slightly slow clocks accept new certs. */
export const CLOCK_SKEW_MS = 60 * 1000;

/** A CA's signing material. The key never leaves this object except via `exportKeyPem`. */
export interface CaMaterial {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
  /** Certificates between this CA and the root (empty for a root), leaf-most first. */
  readonly chain: readonly x509.X509Certificate[];
}

export interface IssuedCertificate {
  readonly cert: x509.X509Certificate;
  /** Leaf then chain (intermediates), PEM. */
  readonly certChainPem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface CreateRootOptions {
  readonly trustDomain: string;
  readonly ttlMs?: number;
  /** Subject organisation (default "Palisade"). */
  readonly organization?: string;
}

/** A positive serial number of 16 random bytes (RFC 5280 §4.1.2.2: ≤ 20 octets, positive). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

function checkTrustDomain(trustDomain: string): string {
  const r = parseSpiffeId(`spiffe://${trustDomain}`);
  if (!r.ok || r.id.path !== '') {
    throw new PalisadeError(
      'PAL_ERR_SPIFFE_ID_INVALID',
      `invalid trust domain ${JSON.stringify(trustDomain)}: ${r.ok ? 'must not contain a path' : r.error}`,
    );
  }
  return trustDomain;
}

/** Creates a self-signed root CA (ECDSA P-256, CA:true, keyCertSign|cRLSign). */
export async function createRootCa(options: CreateRootOptions): Promise<CaMaterial> {
  const trustDomain = checkTrustDomain(options.trustDomain);
  const keys = await generateKeyPair(true);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=${options.organization ?? 'Palisade'}, CN=Palisade root CA for ${trustDomain}`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + (options.ttlMs ?? DEFAULT_ROOT_TTL_MS)),
    signingAlgorithm: EC_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      // X509-SVID §3: a signing certificate should carry the trust domain's SPIFFE ID.
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });
  return { cert, key: keys.privateKey, chain: [] };
}

/** Creates an intermediate CA signed by `parent` (so the root can be kept offline). */
export async function createIntermediateCa(
  parent: CaMaterial,
  options: { readonly trustDomain: string; readonly ttlMs?: number },
): Promise<CaMaterial> {
  const trustDomain = checkTrustDomain(options.trustDomain);
  const keys = await generateKeyPair(true);
  const now = Date.now();
  const notAfter = Math.min(
    now + (options.ttlMs ?? DEFAULT_ROOT_TTL_MS / 2),
    parent.cert.notAfter.getTime(),
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `O=Palisade, CN=Palisade intermediate CA for ${trustDomain}`,
    issuer: parent.cert.subject,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: parent.key,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parent.cert),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });
  return {
    cert,
    key: keys.privateKey,
    chain: [parent.cert, ...parent.chain].filter((c) => !isSelfSigned(c)),
  };
}

function isSelfSigned(cert: x509.X509Certificate): boolean {
  return cert.subject === cert.issuer;
}

export interface IssueSvidOptions {
  readonly spiffeId: string;
  readonly publicKey: CryptoKey;
  readonly ttlMs?: number;
  /** For tests of expiry handling: an explicit validity window. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Optional DNS SANs (X509-SVID §2 allows them); none by default. */
  readonly dnsNames?: readonly string[];
}

/** Issues an X509-SVID for `spiffeId` over `publicKey`, signed by `ca`. */
export async function issueSvid(
  ca: CaMaterial,
  options: IssueSvidOptions,
): Promise<IssuedCertificate> {
  const parsed = parseSpiffeId(options.spiffeId);
  if (!parsed.ok) {
    throw new PalisadeError(
      'PAL_ERR_SPIFFE_ID_INVALID',
      `invalid SPIFFE ID ${JSON.stringify(options.spiffeId)}: ${parsed.error}`,
    );
  }
  if (parsed.id.path === '') {
    throw new PalisadeError(
      'PAL_ERR_SPIFFE_ID_INVALID',
      `invalid SPIFFE ID ${JSON.stringify(options.spiffeId)}: a leaf SVID needs a path (X509-SVID §3.1)`,
    );
  }
  const now = Date.now();
  const notBefore = options.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const wanted = options.notAfter ?? new Date(now + (options.ttlMs ?? DEFAULT_SVID_TTL_MS));
  const notAfter = new Date(Math.min(wanted.getTime(), ca.cert.notAfter.getTime()));
  const serial = randomSerial();
  const isRsa = options.publicKey.algorithm.name.startsWith('RSA');
  // X509-SVID §4.3: digitalSignature; RSA keys also keyEncipherment.
  const usages: number = isRsa
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: 'O=Palisade',
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: EC_ALGORITHM,
    publicKey: options.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- KeyUsageFlags is a bit set: OR-ed flags are valid values
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: parsed.id.uri },
        ...(options.dnsNames ?? []).map((d) => ({ type: 'dns' as const, value: d })),
      ]),
    ],
  });
  const chain =
    ca.chain.length === 0 && isSelfSigned(ca.cert)
      ? []
      : [ca.cert, ...ca.chain.filter((c) => !isSelfSigned(c))];
  const certChainPem = [cert, ...chain].map((c) => `${c.toString('pem')}\n`).join('');
  return { cert, certChainPem, serial: cert.serialNumber, notBefore, notAfter };
}

/** The CA certificate and key as PEM (for `palisade ca init`). */
export async function exportCaPem(ca: CaMaterial): Promise<{ certPem: string; keyPem: string }> {
  return { certPem: `${ca.cert.toString('pem')}\n`, keyPem: await exportPrivateKeyPem(ca.key) };
}
