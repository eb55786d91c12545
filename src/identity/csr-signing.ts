/**
 * CSR checks before issuance: the CA signs only the one SPIFFE ID the
 * caller's credential entitles. A CSR with a bad signature, another identity,
 * extra names or an unsupported key is refused and nothing is issued.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { PalisadeError } from '../errors/index.js';
import { bytesOf, children, DerError, readElement, valueOf } from './der.js';
import { issueSvid, type CaMaterial, type IssuedCertificate } from './certificate-authority.js';

/** Largest CSR accepted, in bytes of PEM. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface SignCsrOptions {
  /** The SPIFFE ID the caller is entitled to (from its verified credential). */
  readonly entitledSpiffeId: string;
  readonly ttlMs?: number;
}

const OID_EXTENSION_REQUEST = '06092a864886f70d01090e'; // PKCS #9 §5.4.2
const OID_SAN = '0603551d11'; // RFC 5280 §4.2.1.6

const SIGNATURE_HASHES: Record<string, string> = {
  // ecdsa-with-SHA256/384, sha256/384WithRSAEncryption (RFC 5758 §3.2, RFC 4055 §5)
  '06082a8648ce3d040302': 'sha256',
  '06082a8648ce3d040303': 'sha384',
  '06092a864886f70d01010b': 'sha256',
  '06092a864886f70d01010c': 'sha384',
};

/** What the CA needs from a CSR (PKCS #10, RFC 2986 §4). */
export interface ParsedCsr {
  readonly spki: Uint8Array;
  readonly key: KeyObject;
  readonly signatureValid: boolean;
  /** SAN entries: `url`, `dns`, or `other` (any other GeneralName form). */
  readonly names: readonly { readonly type: 'url' | 'dns' | 'other'; readonly value: string }[];
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function malformed(reason: string, cause?: unknown): PalisadeError {
  return new PalisadeError(
    'PAL_ERR_CSR_MALFORMED',
    `CSR could not be parsed: ${reason}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Parses a PEM CSR with the bounded DER reader: the public key, the
 * self-signature's validity, and the requested SANs. Anything malformed is
 * PAL_ERR_CSR_MALFORMED.
 */
export function parseCsr(csrPem: string): ParsedCsr {
  if (csrPem.length > MAX_CSR_BYTES) {
    throw new PalisadeError('PAL_ERR_CA_REQUEST_TOO_LARGE', `CSR exceeds ${MAX_CSR_BYTES} bytes`);
  }
  const m =
    /-----BEGIN CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]*)-----END CERTIFICATE REQUEST-----/.exec(
      csrPem,
    );
  if (m === null) throw malformed('expected PEM "BEGIN CERTIFICATE REQUEST"');
  const der = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  try {
    const top = readElement(der);
    if (top.tag !== 0x30 || top.end !== der.length) throw new DerError('not a single SEQUENCE');
    const [info, algorithm, signature, ...extra] = children(der, top);
    if (
      info?.tag !== 0x30 ||
      algorithm?.tag !== 0x30 ||
      signature?.tag !== 0x03 ||
      extra.length > 0
    ) {
      throw new DerError('expected SEQUENCE { info, algorithm, signature }');
    }
    const [version, subject, spkiEl, attributes] = children(der, info);
    if (version?.tag !== 0x02 || subject?.tag !== 0x30 || spkiEl?.tag !== 0x30)
      throw new DerError('bad CertificationRequestInfo');
    const spki = bytesOf(der, spkiEl);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    } catch (cause) {
      throw malformed('the public key is not a valid SubjectPublicKeyInfo', cause);
    }
    const names: { type: 'url' | 'dns' | 'other'; value: string }[] = [];
    if (attributes !== undefined) {
      if (attributes.tag !== 0xa0) throw new DerError('bad attributes');
      for (const attr of children(der, attributes)) {
        const [oid, values] = children(der, attr);
        if (oid === undefined || values?.tag !== 0x31) throw new DerError('bad attribute');
        if (hex(bytesOf(der, oid)) !== OID_EXTENSION_REQUEST) continue;
        for (const exts of children(der, values)) {
          for (const ext of children(der, exts)) {
            const parts = children(der, ext);
            const extOid = parts[0];
            const value = parts[parts.length - 1];
            if (extOid === undefined || value?.tag !== 0x04) throw new DerError('bad extension');
            if (hex(bytesOf(der, extOid)) !== OID_SAN) continue;
            const generalNames = readElement(der, value.valueStart, value.end);
            for (const gn of children(der, generalNames)) {
              const text = Buffer.from(valueOf(der, gn)).toString('latin1');
              names.push(
                gn.tag === 0x86
                  ? { type: 'url', value: text }
                  : gn.tag === 0x82
                    ? { type: 'dns', value: text }
                    : { type: 'other', value: `tag 0x${gn.tag.toString(16)}` },
              );
            }
          }
        }
      }
    }
    const [algOid] = children(der, algorithm);
    const hash = algOid === undefined ? undefined : SIGNATURE_HASHES[hex(bytesOf(der, algOid))];
    const bits = valueOf(der, signature);
    let signatureValid = false;
    if (hash !== undefined && bits[0] === 0) {
      try {
        signatureValid = verify(hash, bytesOf(der, info), key, bits.subarray(1));
      } catch {
        signatureValid = false;
      }
    }
    return { spki, key, signatureValid, names };
  } catch (err) {
    if (err instanceof PalisadeError) throw err;
    throw malformed(err instanceof Error ? err.message : String(err), err);
  }
}

function keyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    return details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1'
      ? undefined
      : `ECDSA curve ${String(details.namedCurve)} is not supported (use P-256 or P-384)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    return (details.modulusLength ?? 0) >= 2048
      ? undefined
      : `RSA keys must be at least 2048 bits, got ${String(details.modulusLength)}`;
  }
  return `key type ${String(key.asymmetricKeyType)} is not supported`;
}

/** Checks a CSR against the entitled identity and issues the SVID. */
export async function signCsr(
  ca: CaMaterial,
  csrPem: string,
  options: SignCsrOptions,
): Promise<IssuedCertificate> {
  const csr = parseCsr(csrPem);
  if (!csr.signatureValid) {
    throw new PalisadeError(
      'PAL_ERR_CSR_SIGNATURE_INVALID',
      'CSR signature does not verify with the key it carries',
    );
  }
  const problem = keyProblem(csr.key);
  if (problem !== undefined) throw new PalisadeError('PAL_ERR_CSR_KEY_UNSUPPORTED', problem);
  const uris = csr.names.filter((n) => n.type === 'url').map((n) => n.value);
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
  if (csr.names.length > 1) {
    throw new PalisadeError(
      'PAL_ERR_CSR_EXTRA_SAN',
      `CSR must carry exactly one SAN (the URI ${options.entitledSpiffeId}); found ${csr.names.map((n) => `${n.type}:${n.value}`).join(', ')}`,
    );
  }
  return issueSvid(ca, {
    spiffeId: options.entitledSpiffeId,
    publicKeySpki: csr.spki,
    publicKeyIsRsa: csr.key.asymmetricKeyType === 'rsa',
    ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
  });
}
