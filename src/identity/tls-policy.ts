/**
 * The TLS a Palisade server accepts: TLS 1.2 or 1.3, AEAD cipher suites only.
 * Envoy's defaults for a server (TlsParameters.cipher_suites, api v3
 * extensions/transport_sockets/tls/v3/common.proto): ECDHE with ECDSA or RSA
 * and AES-128/256-GCM or ChaCha20-Poly1305 for TLS 1.2, and every TLS 1.3
 * suite (all AEAD). CBC suites (`ECDHE-ECDSA-AES128-SHA`, …) are refused.
 * Used by mesh mTLS (inbound), the ingress gateway, the CA and the xDS port;
 * a Gateway's `tls.cipherSuites` may ask for others (Istio: ServerTLSSettings).
 */
import { workloadSpiffeId } from './spiffe-id.js';

/** TLS 1.3 suites (Node names them with their IANA names). */
const TLS13_SUITES = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
];

/** Envoy's default TLS 1.2 server suites, OpenSSL names. */
export const DEFAULT_TLS12_CIPHER_SUITES: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
];

/** The `ciphers` option (OpenSSL cipher string) for `suites` (TLS 1.2 names) plus every TLS 1.3 suite. */
export function cipherList(suites: readonly string[] = DEFAULT_TLS12_CIPHER_SUITES): string {
  return [...TLS13_SUITES, ...suites].join(':');
}

/** Options every Palisade TLS server starts from. */
export const SERVER_TLS_DEFAULTS = {
  minVersion: 'TLSv1.2',
  ciphers: cipherList(),
  honorCipherOrder: true,
} as const;

/** The control plane's service account: its xDS certificate carries this identity. */
export const CONTROL_PLANE_NAMESPACE = 'palisade-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'palisade-control';

/** `spiffe://<td>/ns/palisade-system/sa/palisade-control`: what a proxy requires of the xDS server. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return workloadSpiffeId({
    trustDomain,
    namespace: CONTROL_PLANE_NAMESPACE,
    serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT,
  });
}
