/**
 * Ordinary TLS server certificates (DNS/IP subject alternative names), for
 * endpoints outside SPIFFE identity: the local runtime's ingress gateway gets
 * one from a throwaway CA so `curl --cacert` verifies it like a public site.
 * ECDSA P-256, SHA-256; the CA is CA:true with keyCertSign, the leaf
 * serverAuth only (RFC 5280 §4.2.1.3, §4.2.1.12).
 */
import { EC_ALGORITHM, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from './pem.js';
import { x509 } from './x509.js';
import { randomSerial } from './certificate-authority.js';

/** A CA or leaf with its key in PEM. */
export interface PemCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

const SKEW_MS = 5 * 60 * 1000;

/** Creates a self-signed CA for TLS server certificates. */
export async function createTlsCa(
  commonName: string,
  ttlMs = 365 * 24 * 3600 * 1000,
): Promise<PemCertificate> {
  const keys = await generateKeyPair(true);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + ttlMs),
    signingAlgorithm: EC_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Issues a server certificate for `dnsNames` and `ips`, signed by `ca`. */
export async function issueServerCertificate(
  ca: PemCertificate,
  options: {
    readonly dnsNames: readonly string[];
    readonly ips?: readonly string[];
    readonly ttlMs?: number;
  },
): Promise<PemCertificate> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const keys = await generateKeyPair(true);
  const now = Date.now();
  const names = [
    ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${options.dnsNames[0] ?? options.ips?.[0] ?? 'localhost'}`,
    issuer: caCert.subject,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + (options.ttlMs ?? 90 * 24 * 3600 * 1000)),
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}
