/** Public surface of the API server: its stores, the server and its PKI. */
export * from './store/types.js';
export { openEmbeddedStore, type EmbeddedStoreOptions } from './store/embedded-store.js';
export { openEtcdStore, type EtcdStoreOptions } from './store/etcd-store.js';
export { ensurePki, issueClientCertificate, kubeconfig, type ApiServerPki } from './pki.js';
export {
  startApiServer,
  KUBERNETES_VERSION,
  MAX_BODY_BYTES,
  type ApiServer,
  type ApiServerOptions,
} from './server.js';
export { createOidcAuthenticator, type OidcOptions } from './oidc.js';
export { RESOURCE_TYPES, type ResourceType } from './resources.js';
export { AUTHORIZATION_MODES, type AuthorizationMode } from './authz-chain.js';
export { readAuditPolicy } from './audit.js';
export { parseDuration, readWebhookKubeconfig } from './webhook-client.js';
