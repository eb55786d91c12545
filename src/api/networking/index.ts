/** Public surface of Istio's networking kinds: schemas, types and validation. */
export * from './schemas.js';
export { GRPC_STATUS_CODES, grpcStatusCode } from './grpc-status.js';
export {
  isNetworkingObject,
  NETWORKING_KINDS,
  validateNetworkingResource,
  type NetworkingKind,
} from './validate.js';
