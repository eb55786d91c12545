/**
 * One entry point for every kind the mesh reads: Istio networking and
 * security, Kubernetes core and security kinds, and Palisade's own. Given a
 * parsed document it says which kind it is and returns it validated, or every
 * issue with field paths. Unknown apiVersion/kind pairs are reported as such
 * so callers decide whether to ignore or reject them.
 */
import { isCoreObject, validateCoreResource, type CoreResource } from './core/index.js';
import { validateK8sObject } from './k8s/index.js';
import {
  isNetworkingObject,
  validateNetworkingResource,
  type NetworkingResource,
} from './networking/index.js';
import { isPalisadeObject, validatePalisadeResource, type Workload } from './palisade/index.js';
import {
  isSecurityObject,
  validateSecurityResource,
  type SecurityResource,
} from './security/index.js';
import type { ValidationIssue } from './validation.js';

/** A Kubernetes security object (RBAC, NetworkPolicy, Pod…), kept as parsed. */
export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string };
  readonly [key: string]: unknown;
}

/** Every validated object the control plane stores. */
export type MeshResource =
  NetworkingResource | SecurityResource | CoreResource | Workload | KubernetesObject;

/** Result of {@link validateMeshObject}. */
export type MeshObjectResult =
  | { readonly ok: true; readonly value: MeshResource }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] }
  | { readonly ok: 'unknown'; readonly apiVersion: string; readonly kind: string };

function header(object: unknown): { apiVersion: string; kind: string } {
  const o = (typeof object === 'object' && object !== null ? object : {}) as Record<
    string,
    unknown
  >;
  return {
    apiVersion: typeof o['apiVersion'] === 'string' ? o['apiVersion'] : '',
    kind: typeof o['kind'] === 'string' ? o['kind'] : '',
  };
}

/** Validates any mesh object by its apiVersion/kind. */
export function validateMeshObject(object: unknown): MeshObjectResult {
  if (isNetworkingObject(object)) return validateNetworkingResource(object);
  if (isSecurityObject(object)) return validateSecurityResource(object);
  if (isCoreObject(object)) return validateCoreResource(object);
  if (isPalisadeObject(object)) return validatePalisadeResource(object);
  const k8s = validateK8sObject(object);
  if (k8s !== undefined)
    return k8s.length === 0
      ? { ok: true, value: object as KubernetesObject }
      : { ok: false, issues: k8s };
  const { apiVersion, kind } = header(object);
  if (apiVersion === '' || kind === '')
    return {
      ok: false,
      issues: [{ path: apiVersion === '' ? 'apiVersion' : 'kind', message: 'is required' }],
    };
  return { ok: 'unknown', apiVersion, kind };
}
