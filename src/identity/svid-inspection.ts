/**
 * Inspection and validation of X509-SVIDs (X509-SVID.md §5: path validation
 * against a trust bundle, leaf validation). Reports every violation found,
 * not just the first, so `palisade ca inspect` can explain a bad certificate.
 */
import { parseCertificates, x509 } from './x509.js';
import { parseSpiffeId } from './spiffe-id.js';

export interface SvidInspection {
  readonly spiffeId: string | null;
  readonly serial: string;
  readonly issuer: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly valid: boolean;
  readonly errors: readonly string[];
}

function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (san === null) return [];
  return san.names.items.filter((n) => n.type === 'url').map((n) => n.value);
}

/** The SPIFFE ID of a leaf (its single URI SAN), or undefined. */
export function spiffeIdOf(cert: x509.X509Certificate): string | undefined {
  const uris = uriSans(cert);
  return uris.length === 1 ? uris[0] : undefined;
}

/** Leaf checks of X509-SVID §4 and §5.2; returns every violation. */
export function leafViolations(cert: x509.X509Certificate, now = new Date()): string[] {
  const errors: string[] = [];
  const uris = uriSans(cert);
  if (uris.length !== 1) {
    errors.push(`must contain exactly one URI SAN, found ${uris.length} (X509-SVID §2)`);
  } else {
    const r = parseSpiffeId(uris[0] ?? '');
    if (!r.ok) errors.push(`URI SAN is not a valid SPIFFE ID: ${r.error}`);
    else if (r.id.path === '') errors.push('leaf SPIFFE ID must have a path (X509-SVID §3.1)');
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca === true)
    errors.push('leaf must not be a CA: basicConstraints CA must be false (X509-SVID §4.1)');
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku === null) {
    errors.push('keyUsage extension is missing (X509-SVID §4.3)');
  } else {
    if ((ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
      errors.push('keyUsage must include digitalSignature (X509-SVID §4.3)');
    }
    if ((ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0)
      errors.push('leaf keyUsage must not include keyCertSign (X509-SVID §4.3)');
    if ((ku.usages & x509.KeyUsageFlags.cRLSign) !== 0)
      errors.push('leaf keyUsage must not include cRLSign (X509-SVID §4.3)');
  }
  if (now < cert.notBefore)
    errors.push(`not yet valid: notBefore is ${cert.notBefore.toISOString()}`);
  if (now > cert.notAfter) errors.push(`expired: notAfter was ${cert.notAfter.toISOString()}`);
  return errors;
}

/**
 * Inspects the first certificate of a PEM bundle as an SVID. When the bundle
 * holds a chain, each signature up the chain is verified too.
 */
export async function inspectSvid(pem: string, now = new Date()): Promise<SvidInspection> {
  const certs = parseCertificates(pem);
  const leaf = certs[0];
  if (leaf === undefined) throw new Error('no PEM certificate found');
  const errors = leafViolations(leaf, now);
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i];
    const parent = certs[i + 1];
    if (child === undefined || parent === undefined) continue;
    const ok = await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
    if (!ok) errors.push(`certificate ${i} is not signed by certificate ${i + 1} in the chain`);
  }
  return {
    spiffeId: spiffeIdOf(leaf) ?? null,
    serial: leaf.serialNumber,
    issuer: leaf.issuer,
    subject: leaf.subject,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    valid: errors.length === 0,
    errors,
  };
}
