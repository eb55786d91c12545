/**
 * What a request asks, from its method and path (k8s.io/apiserver
 * pkg/endpoints/request.RequestInfoFactory): resource requests under
 * `/api/v1` and `/apis/<group>/<version>`, everything else non-resource.
 */

export interface RequestInfo {
  readonly isResourceRequest: boolean;
  readonly path: string;
  /** get, list, watch, create, update, patch, delete, deletecollection; or the HTTP verb lowercased. */
  readonly verb: string;
  readonly apiPrefix: string;
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
  readonly parts: readonly string[];
}

const SPECIAL_VERBS = new Set(['proxy', 'watch']);

/** Parses a request; `query` is the URL's search params. */
export function requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const nonResource: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };
  const segments = path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  let parts = segments;
  const prefix = parts[0];
  if (prefix !== 'api' && prefix !== 'apis') return nonResource;
  parts = parts.slice(1);
  let apiGroup = '';
  if (prefix === 'apis') {
    if (parts.length < 2) return nonResource;
    apiGroup = parts[0] ?? '';
    parts = parts.slice(1);
  }
  if (parts.length < 2) return nonResource;
  const apiVersion = parts[0] ?? '';
  parts = parts.slice(1);
  let verb: string;
  switch (method) {
    case 'POST':
      verb = 'create';
      break;
    case 'GET':
    case 'HEAD':
      verb = 'get';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = 'delete';
      break;
    default:
      verb = method.toLowerCase();
  }
  if (SPECIAL_VERBS.has(parts[0] ?? '')) {
    verb = parts[0] ?? verb;
    parts = parts.slice(1);
  }
  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1] ?? '';
      // /namespaces/{name} and /namespaces/{name}/{subresource} are the namespace itself.
      if (
        parts.length > 2 &&
        !(parts.length === 3 && ['status', 'finalize'].includes(parts[2] ?? ''))
      ) {
        parts = parts.slice(2);
      }
    }
  }
  const resource = parts[0] ?? '';
  const name = parts.length >= 2 ? (parts[1] ?? '') : '';
  const subresource = parts.length >= 3 ? (parts[2] ?? '') : '';
  if (parts.length > 3) return nonResource;
  const watch = query.get('watch');
  if (verb === 'get' && name === '') verb = watch === 'true' || watch === '1' ? 'watch' : 'list';
  if (verb === 'delete' && name === '') verb = 'deletecollection';
  return {
    isResourceRequest: true,
    path,
    verb,
    apiPrefix: prefix,
    apiGroup,
    apiVersion,
    namespace,
    resource,
    subresource,
    name,
    parts,
  };
}
