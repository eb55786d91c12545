/**
 * CSR checks before issuance: the CA signs only the one SPIFFE ID the
 * caller's credential entitles. A CSR with a bad signature, another identity,
 * extra names or an unsupported key is refused and nothing is issued.
 */
import { createPublicKey, verify } from 'node:crypto';
import { PalisadeError } from '../errors/index.js';
import { bytesOf, children, readElement, valueOf } from './der.js';
import { issueSvid, type CaMaterial, type IssuedCertificate } from './certificate-authority.js';
import { EC_ALGORITHM, generateKeyPair, x509 } from './pem.js';
import type { Algorithm, CryptoKeyPair } from './pem.js';

/** Largest CSR accepted, in bytes of PEM. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface SignCsrOptions {
  /** The SPIFFE ID the caller is entitled to (from its verified credential). */
  readonly entitledSpiffeId: string;
  readonly ttlMs?: number;
}

function parseCsr(csrPem: string): x509.Pkcs10CertificateRequest {
  if (csrPem.length > MAX_CSR_BYTES) {
    throw new PalisadeError('PAL_ERR_CA_REQUEST_TOO_LARGE', `CSR exceeds ${MAX_CSR_BYTES} bytes`);
  }
  if (!csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new PalisadeError(
      'PAL_ERR_CSR_MALFORMED',
      'CSR must be PEM ("BEGIN CERTIFICATE REQUEST")',
    );
  }
  try {
    return new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw new PalisadeError(
      'PAL_ERR_CSR_MALFORMED',
      `CSR could not be parsed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

function keyProblem(
  alg: Algorithm & { namedCurve?: string; modulusLength?: number },
): string | undefined {
  if (alg.name === 'ECDSA')
    return alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384'
      ? undefined
      : `ECDSA curve ${String(alg.namedCurve)} is not supported (use P-256 or P-384)`;
  if (alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS') {
    return (alg.modulusLength ?? 0) >= 2048
      ? undefined
      : `RSA keys must be at least 2048 bits, got ${String(alg.modulusLength)}`;
  }
  return `key algorithm ${alg.name} is not supported`;
}

const SIGNATURE_HASHES: Record<string, string> = {
  // ecdsa-with-SHA256/384, sha256/384WithRSAEncryption (RFC 5758 §3.2, RFC 4055 §5)
  '06082a8648ce3d040302': 'sha256',
  '06082a8648ce3d040303': 'sha384',
  '06092a864886f70d01010b': 'sha256',
  '06092a864886f70d01010c': 'sha384',
};

/**
 * Verifies the CSR's self-signature (PKCS #10 §4.2) with node:crypto over the
 * exact CertificationRequestInfo bytes. Any malformed structure is a failure.
 */
function verifyCsrSignature(csr: x509.Pkcs10CertificateRequest): boolean {
  try {
    const der = new Uint8Array(csr.rawData);
    const [info, algorithm, signature] = children(der, readElement(der));
    if (info === undefined || algorithm === undefined || signature?.tag !== 0x03) return false;
    const [oid] = children(der, algorithm);
    if (oid === undefined) return false;
    const hash = SIGNATURE_HASHES[Buffer.from(bytesOf(der, oid)).toString('hex')];
    const bits = valueOf(der, signature);
    if (hash === undefined || bits[0] !== 0) return false;
    const key = createPublicKey({
      key: Buffer.from(csr.publicKey.rawData),
      format: 'der',
      type: 'spki',
    });
    return verify(hash, bytesOf(der, info), key, bits.subarray(1));
  } catch {
    return false;
  }
}

/** Checks a CSR against the entitled identity and issues the SVID. */
export async function signCsr(
  ca: CaMaterial,
  csrPem: string,
  options: SignCsrOptions,
): Promise<IssuedCertificate> {
  const csr = parseCsr(csrPem);
  if (!verifyCsrSignature(csr)) {
    throw new PalisadeError(
      'PAL_ERR_CSR_SIGNATURE_INVALID',
      'CSR signature does not verify with the key it carries',
    );
  }
  const problem = keyProblem(csr.publicKey.algorithm as Algorithm & { namedCurve?: string });
  if (problem !== undefined) throw new PalisadeError('PAL_ERR_CSR_KEY_UNSUPPORTED', problem);

  const sans = csr.extensions.filter(
    (e): e is x509.SubjectAlternativeNameExtension =>
      e instanceof x509.SubjectAlternativeNameExtension,
  );
  const names = sans.flatMap((e) => e.names.items);
  const uris = names.filter((n) => n.type === 'url').map((n) => n.value);
  const others = names.filter((n) => n.type !== 'url');
  if (uris.length === 0) {
    throw new PalisadeError(
      'PAL_ERR_CA_IDENTITY_MISMATCH',
      `CSR carries no URI SAN; it may only ask for ${options.entitledSpiffeId}`,
    );
  }
  const asked = uris.find((u) => u !== options.entitledSpiffeId);
  if (asked !== undefined) {
    throw new PalisadeError(
      'PAL_ERR_CA_IDENTITY_MISMATCH',
      `CSR asks for ${JSON.stringify(asked)} but the credential entitles only ${JSON.stringify(options.entitledSpiffeId)}`,
    );
  }
  if (uris.length > 1 || others.length > 0) {
    throw new PalisadeError(
      'PAL_ERR_CSR_EXTRA_SAN',
      `CSR must carry exactly one SAN (the URI ${options.entitledSpiffeId}); found ${names.map((n) => `${n.type}:${n.value}`).join(', ')}`,
    );
  }
  return issueSvid(ca, {
    spiffeId: options.entitledSpiffeId,
    publicKeySpki: new Uint8Array(csr.publicKey.rawData),
    publicKeyIsRsa: (csr.publicKey.algorithm as { name: string }).name.startsWith('RSA'),
    ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
  });
}

/** Makes a key pair (non-extractable by default) and a CSR for `spiffeId`. */
export async function createCsr(
  spiffeId: string,
  options: {
    readonly extraSans?: readonly { type: 'dns' | 'url'; value: string }[];
    readonly keys?: CryptoKeyPair;
  } = {},
): Promise<{ csrPem: string; keys: CryptoKeyPair }> {
  const keys = options.keys ?? (await generateKeyPair(false));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=Palisade',
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: spiffeId },
        ...(options.extraSans ?? []),
      ]),
    ],
  });
  return { csrPem: csr.toString('pem'), keys };
}
