/** Public surface of workload identity: SPIFFE IDs, the CA, tokens, the CSR service and its client. */
export {
  formatSpiffeId,
  MAX_SPIFFE_ID_BYTES,
  MAX_TRUST_DOMAIN_BYTES,
  mustParseSpiffeId,
  parseSpiffeId,
  parseWorkloadIdentity,
  workloadSpiffeId,
  type SpiffeId,
  type SpiffeIdResult,
  type WorkloadIdentity,
} from './spiffe-id.js';
export {
  createIntermediateCa,
  createRootCa,
  DEFAULT_SVID_TTL_MS,
  exportCaPem,
  issueSvid,
  randomSerial,
  type CaMaterial,
  type IssuedCertificate,
  type IssueSvidOptions,
} from './certificate-authority.js';
export { signCsr, MAX_CSR_BYTES } from './csr-signing.js';
export { createCsr } from './csr.js';
export {
  CA_FILES,
  initCaDirectory,
  loadCaDirectory,
  type InitCaOptions,
  type LoadedCa,
} from './ca-directory.js';
export {
  startCaServer,
  MAX_REQUEST_BYTES,
  type CaServer,
  type CaServerOptions,
} from './ca-server.js';
export {
  createSvidSource,
  SvidSource,
  type SvidSnapshot,
  type SvidSourceOptions,
} from './svid-source.js';
export { peerSpiffeIds, spiffeServerIdentityCheck, verifyPeerIdentity } from './secure-naming.js';
export { inspectSvid, leafViolations, spiffeIdOf, type SvidInspection } from './svid-inspection.js';
export { TrustBundle } from './trust-bundle.js';
export {
  createTokenIssuer,
  DEFAULT_TOKEN_AUDIENCE,
  verifyServiceAccountToken,
  type ServiceAccountClaims,
  type TokenIssuer,
} from './service-account-tokens.js';
export { parseDuration } from './duration.js';
export { createTlsCa, issueServerCertificate, type PemCertificate } from './server-certificates.js';
export { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, pemBlocks } from './pem.js';
export { parseCertificates } from './x509.js';
export {
  cipherList,
  CONTROL_PLANE_NAMESPACE,
  CONTROL_PLANE_SERVICE_ACCOUNT,
  controlPlaneSpiffeId,
  DEFAULT_TLS12_CIPHER_SUITES,
  SERVER_TLS_DEFAULTS,
} from './tls-policy.js';
