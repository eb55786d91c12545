/**
 * OpenAPI v3 discovery, enough for kubectl: `/openapi/v3` lists one document
 * per group/version, and each document has the paths of its resources with
 * the `x-kubernetes-group-version-kind` extension and the `fieldValidation`
 * query parameter on create/update/patch. kubectl reads exactly that to know
 * the server validates fields itself (server-side field validation), so it
 * needs no client-side schema. Object schemas are not published: kubectl then
 * computes client-side apply patches from its built-in types.
 */
import { createHash } from 'node:crypto';
import { RESOURCE_TYPES, versionsOf, type ResourceType } from './resources.js';

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

const QUERY = (name: string): Record<string, unknown> => ({
  name,
  in: 'query',
  schema: { type: 'string', uniqueItems: true },
});

function operation(t: ResourceType, version: string, action: string): Record<string, unknown> {
  const writes = ['post', 'put', 'patch'].includes(action);
  return {
    operationId: `${action}${t.kind}`,
    parameters: writes ? [QUERY('dryRun'), QUERY('fieldManager'), QUERY('fieldValidation')] : [],
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action === 'post' ? 'post' : action === 'put' ? 'put' : action,
    'x-kubernetes-group-version-kind': { group: t.group, version, kind: t.kind },
  };
}

/** The OpenAPI v3 document of one group/version, or undefined when nothing is served there. */
export function openApiV3Document(
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const types = RESOURCE_TYPES.filter((t) => t.group === group && versionsOf(t).includes(version));
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const base = `/${gvPath(group, version)}`;
  for (const t of types) {
    const collection = t.namespaced
      ? `${base}/namespaces/{namespace}/${t.plural}`
      : `${base}/${t.plural}`;
    paths[collection] = { post: operation(t, version, 'post') };
    if (t.virtual === true) continue;
    paths[collection] = { get: operation(t, version, 'list'), post: operation(t, version, 'post') };
    paths[`${collection}/{name}`] = {
      get: operation(t, version, 'get'),
      put: operation(t, version, 'put'),
      patch: operation(t, version, 'patch'),
      delete: operation(t, version, 'delete'),
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Palisade API server', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

/** `/openapi/v3`: where each group/version's document is. */
export function openApiV3Root(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const t of RESOURCE_TYPES) {
    for (const v of versionsOf(t)) {
      const p = gvPath(t.group, v);
      if (paths[p] !== undefined) continue;
      const hash = createHash('sha256')
        .update(JSON.stringify(openApiV3Document(t.group, v)))
        .digest('hex')
        .slice(0, 32)
        .toUpperCase();
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    }
  }
  return { paths };
}
