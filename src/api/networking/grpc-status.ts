/**
 * gRPC status codes by name (grpc.github.io/grpc/core/md_doc_statuscodes.html).
 * Istio's `fault.abort.grpcStatus` takes these names in capitals
 * ("UNAVAILABLE", not "14"); Envoy's `FaultAbort.grpc_status` takes the number.
 * The one table is the xDS library's (what the proxy's gRPC stream reports).
 */
import { GRPC_STATUS } from '../../xds/index.js';

export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = GRPC_STATUS;

/** The code of a status name; undefined for anything else (`toString` included). */
export function grpcStatusCode(name: string): number | undefined {
  return Object.hasOwn(GRPC_STATUS_CODES, name) ? GRPC_STATUS_CODES[name] : undefined;
}
