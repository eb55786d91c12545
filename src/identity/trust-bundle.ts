/**
 * A trust bundle: the set of root certificates a workload trusts. It may hold
 * several roots at once so that a root can be rotated (old and new trusted
 * side by side). Chain verification succeeds when the chain leads to any root
 * in the bundle (X509-SVID §5.1).
 */
import { parseCertificates, x509 } from './x509.js';

function derKey(cert: x509.X509Certificate): string {
  return Buffer.from(cert.rawData).toString('base64');
}

export class TrustBundle {
  readonly #roots: readonly x509.X509Certificate[];

  constructor(roots: readonly x509.X509Certificate[]) {
    if (roots.length === 0) throw new Error('a trust bundle needs at least one root certificate');
    this.#roots = roots;
  }

  /** Parses a PEM bundle of one or more root certificates. */
  static fromPem(pem: string): TrustBundle {
    return new TrustBundle(parseCertificates(pem));
  }

  get roots(): readonly x509.X509Certificate[] {
    return this.#roots;
  }

  /** The bundle as PEM, usable as node:tls `ca`. */
  toPem(): string {
    return this.#roots.map((r) => `${r.toString('pem')}\n`).join('');
  }

  /** Adds roots (root rotation: trust old and new together). */
  with(...roots: readonly x509.X509Certificate[]): TrustBundle {
    const seen = new Set(this.#roots.map((r) => derKey(r)));
    return new TrustBundle([...this.#roots, ...roots.filter((r) => !seen.has(derKey(r)))]);
  }

  /**
   * Verifies that `chain` (leaf first, then intermediates) leads to a root in
   * the bundle with valid signatures and validity periods. Returns the reason
   * on failure; undefined when trusted.
   */
  async verifyChain(
    chain: readonly x509.X509Certificate[],
    now = new Date(),
  ): Promise<string | undefined> {
    const leaf = chain[0];
    if (leaf === undefined) return 'empty certificate chain';
    for (const cert of chain) {
      if (now < cert.notBefore) return `certificate ${cert.subject} is not yet valid`;
      if (now > cert.notAfter) return `certificate ${cert.subject} has expired`;
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      const child = chain[i];
      const parent = chain[i + 1];
      if (child === undefined || parent === undefined) continue;
      if (!(await child.verify({ publicKey: parent.publicKey, signatureOnly: true }))) {
        return `certificate ${child.subject} is not signed by ${parent.subject}`;
      }
    }
    const top = chain[chain.length - 1] ?? leaf;
    for (const root of this.#roots) {
      if (derKey(top) === derKey(root)) return undefined;
      if (
        top.issuer === root.subject &&
        (await top.verify({ publicKey: root.publicKey, signatureOnly: true }))
      ) {
        if (now > root.notAfter) return `root ${root.subject} has expired`;
        return undefined;
      }
    }
    return 'certificate chain does not lead to any root in the trust bundle';
  }
}
