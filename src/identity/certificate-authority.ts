/**
 * Palisade's certificate authority: roots, intermediates and X509-SVIDs.
 *
 * Follows the X509-SVID standard (X509-SVID.md): a leaf carries exactly one
 * URI SAN (§2), basicConstraints CA=false (§4.1), digitalSignature and no
 * keyCertSign/cRLSign (§4.3); signing certificates carry CA=true and
 * keyCertSign (§4.1, §4.3). Serial numbers come from a CSPRNG; notBefore is
 * backdated for clock skew; a leaf never outlives its signer.
 */
import { KeyObject, randomBytes, sign, webcrypto } from 'node:crypto';
import { PalisadeError } from '../errors/index.js';
import { EC_ALGORITHM, exportPrivateKeyPem, generateKeyPair, wrapPem } from './pem.js';
import type { CryptoKey } from './pem.js';
import { x509 } from './x509.js';
import { ECDSA_WITH_SHA256, PALISADE_SUBJECT, sanExtension } from './x509-der.js';
import { parseSpiffeId } from './spiffe-id.js';
import { bitString, bytesOf, children, integer, readElement, seq, time, tlv } from './der.js';

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
  /** The subject's public key; or give its SPKI DER in `publicKeySpki` (from a CSR). */
  readonly publicKey?: CryptoKey;
  readonly publicKeySpki?: Uint8Array;
  /** With `publicKeySpki`: whether the key is RSA (adds keyEncipherment). */
  readonly publicKeyIsRsa?: boolean;
  readonly ttlMs?: number;
  /** For tests of expiry handling: an explicit validity window. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Optional DNS SANs (X509-SVID §2 allows them); none by default. */
  readonly dnsNames?: readonly string[];
  /** Optional IP SANs, for a server reached by address (the control plane's xDS port). */
  readonly ipAddresses?: readonly string[];
}

/** Per-CA parts of the SVID template, computed once (issuer name, AKI, signing key). */
interface SignerTemplate {
  readonly issuerName: Buffer;
  readonly authorityKeyId: Buffer;
  readonly signingKey: KeyObject;
  readonly chainPem: string;
}

const templates = new WeakMap<CaMaterial, Promise<SignerTemplate>>();

// Constant DER pieces of every SVID (X509-SVID §4; RFC 5280 §4.1).
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
let constantExtensions: { ec: Buffer; rsa: Buffer } | undefined;

function svidExtensions(): { ec: Buffer; rsa: Buffer } {
  if (constantExtensions === undefined) {
    const bc = Buffer.from(new x509.BasicConstraintsExtension(false, undefined, true).rawData);
    const eku = Buffer.from(
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]).rawData,
    );
    const kuEc = Buffer.from(
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true).rawData,
    );

    const kuRsa = Buffer.from(
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ).rawData,
    );
    constantExtensions = {
      ec: Buffer.concat([bc, kuEc, eku]),
      rsa: Buffer.concat([bc, kuRsa, eku]),
    };
  }
  return constantExtensions;
}

async function buildTemplate(ca: CaMaterial): Promise<SignerTemplate> {
  const der = new Uint8Array(ca.cert.rawData);
  const [tbs] = children(der, readElement(der));
  if (tbs === undefined) throw new Error('CA certificate has no TBSCertificate');
  const fields = children(der, tbs);
  const first = fields[0]?.tag === 0xa0 ? 1 : 0; // explicit version present
  const subject = fields[first + 4];
  if (subject === undefined) throw new Error('CA certificate has no subject');
  const aki = await x509.AuthorityKeyIdentifierExtension.create(ca.cert);
  const chain =
    ca.chain.length === 0 && isSelfSigned(ca.cert)
      ? []
      : [ca.cert, ...ca.chain.filter((c) => !isSelfSigned(c))];
  return {
    issuerName: Buffer.from(bytesOf(der, subject)),
    authorityKeyId: Buffer.from(aki.rawData),
    signingKey: KeyObject.from(ca.key),
    chainPem: chain.map((c) => `${c.toString('pem')}\n`).join(''),
  };
}

/**
 * Issues an X509-SVID for `spiffeId` over `publicKey` (or its SPKI DER),
 * signed by `ca`. The TBSCertificate is built from a per-CA template and
 * signed with node:crypto: this is the CA's hot path (one call per CSR).
 */
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
  let template = templates.get(ca);
  if (template === undefined) {
    template = buildTemplate(ca);
    templates.set(ca, template);
  }
  const t = await template;
  const now = Date.now();
  // Certificates carry whole seconds; round so the returned dates equal the encoded ones.
  const notBefore = new Date(
    Math.floor((options.notBefore ?? new Date(now - CLOCK_SKEW_MS)).getTime() / 1000) * 1000,
  );
  const wanted = options.notAfter ?? new Date(now + (options.ttlMs ?? DEFAULT_SVID_TTL_MS));
  const notAfter = new Date(
    Math.floor(Math.min(wanted.getTime(), ca.cert.notAfter.getTime()) / 1000) * 1000,
  );
  const serial = randomSerial();
  const spki =
    options.publicKeySpki ??
    new Uint8Array(
      await webcrypto.subtle.exportKey(
        'spki',
        options.publicKey as Parameters<typeof webcrypto.subtle.exportKey>[1],
      ),
    );
  const isRsa =
    options.publicKey?.algorithm.name.startsWith('RSA') ?? options.publicKeyIsRsa === true;
  const extensions = Buffer.concat([
    isRsa ? svidExtensions().rsa : svidExtensions().ec,
    t.authorityKeyId,
    sanExtension([parsed.id.uri], options.dnsNames ?? [], options.ipAddresses ?? []),
  ]);
  const tbs = seq(
    VERSION_V3,
    integer(Buffer.from(serial, 'hex')),
    ECDSA_WITH_SHA256,
    t.issuerName,
    seq(time(notBefore), time(notAfter)),
    PALISADE_SUBJECT,
    spki,
    tlv(0xa3, seq(extensions)),
  );
  const signature = sign('sha256', tbs, t.signingKey); // ECDSA signatures are DER (RFC 5480 §2.2.3)
  const certDer = seq(tbs, ECDSA_WITH_SHA256, bitString(signature));
  const leafPem = wrapPem('CERTIFICATE', certDer);
  let cert: x509.X509Certificate | undefined;
  return {
    get cert(): x509.X509Certificate {
      cert ??= new x509.X509Certificate(certDer);
      return cert;
    },
    certChainPem: leafPem + t.chainPem,
    serial,
    notBefore,
    notAfter,
  };
}

/** The CA certificate and key as PEM (for `palisade ca init`). */
export async function exportCaPem(ca: CaMaterial): Promise<{ certPem: string; keyPem: string }> {
  return { certPem: `${ca.cert.toString('pem')}\n`, keyPem: await exportPrivateKeyPem(ca.key) };
}
