/**
 * The TLS material a proxy's listeners and clusters refer to by SDS name
 * (docs/xds-contract.md "Certificates"): `default` is the workload's own SVID,
 * filled locally from the proxy's CSR client (the private key never leaves the
 * process); `ROOTCA` is the trust bundle the control plane sends over ADS;
 * gateway certificates arrive as `kubernetes://<credentialName>`.
 *
 * Listeners and clusters resolve names through a {@link SecretStore} at
 * handshake time, so a rotated SVID or a new bundle takes effect on the next
 * connection without restarting listeners or dropping live connections.
 */

/** A certificate chain and its private key (SDS `tls_certificate`). */
export interface TlsCertificateSecret {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
}

/** Trusted roots (SDS `validation_context.trusted_ca`). */
export interface ValidationContextSecret {
  readonly trustedCaPem: string;
}

/** One resolved secret: a certificate, a validation context, or both. */
export interface ResolvedSecret {
  readonly tlsCertificate?: TlsCertificateSecret;
  readonly validationContext?: ValidationContextSecret;
}

/** Name → secret lookup, plus a change signal (rotation, new bundle). */
export interface SecretStore {
  /** The current secret of that name, or undefined when not (yet) known. */
  get(name: string): ResolvedSecret | undefined;
  /** Bumped on every change of any secret; caches key on it. */
  readonly generation: number;
  /** Calls `listener` after every change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** A {@link SecretStore} that can be written: the proxy feeds it SDS and its SVID. */
export interface MutableSecretStore extends SecretStore {
  set(name: string, secret: ResolvedSecret | undefined): void;
}

/** Creates an empty in-memory {@link MutableSecretStore}. */
export function createSecretStore(): MutableSecretStore {
  const secrets = new Map<string, ResolvedSecret>();
  const listeners = new Set<() => void>();
  let generation = 0;
  return {
    get: (name) => secrets.get(name),
    get generation() {
      return generation;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(name, secret) {
      if (secret === undefined) secrets.delete(name);
      else secrets.set(name, secret);
      generation += 1;
      for (const listener of listeners) listener();
    },
  };
}
