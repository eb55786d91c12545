/**
 * The workload side of identity: what a proxy needs to get, hold and check
 * SPIFFE identities (its SVID source, CSRs, secure naming, TLS policy), apart
 * from the CA side in index.ts. Nothing here loads YAML, Ajv, ASN.1 libraries
 * (@peculiar/x509) or JWT signing: a proxy importing this surface holds only
 * what it runs (issue 22; test/proxy/proxy-imports.test.ts checks it).
 */
export {
  formatSpiffeId,
  mustParseSpiffeId,
  parseSpiffeId,
  parseWorkloadIdentity,
  workloadSpiffeId,
  type SpiffeId,
  type SpiffeIdResult,
  type WorkloadIdentity,
} from './spiffe-id.js';
export {
  createSvidSource,
  SvidSource,
  type SvidSnapshot,
  type SvidSourceOptions,
} from './svid-source.js';
export { peerSpiffeIds, spiffeServerIdentityCheck, verifyPeerIdentity } from './secure-naming.js';
export { createCsr } from './csr.js';
export {
  cipherList,
  CONTROL_PLANE_NAMESPACE,
  CONTROL_PLANE_SERVICE_ACCOUNT,
  controlPlaneSpiffeId,
  DEFAULT_TLS12_CIPHER_SUITES,
  SERVER_TLS_DEFAULTS,
} from './tls-policy.js';
