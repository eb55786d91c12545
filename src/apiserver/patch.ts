/**
 * The PATCH content types the API accepts:
 *  - `application/merge-patch+json`  RFC 7386 JSON merge patch;
 *  - `application/json-patch+json`   RFC 6902 JSON patch (RFC 6901 pointers);
 *  - `application/strategic-merge-patch+json`  Kubernetes' strategic merge:
 *    a merge patch whose lists of objects keyed by `name` (containers,
 *    volumes, env, ports…) merge by that key, with the `$patch: delete|replace`
 *    directive; `$setElementOrder/…`, `$retainKeys` and
 *    `$deleteFromPrimitiveList/…` directives are honoured or dropped;
 *  - `application/apply-patch+yaml`  server-side apply (see apply in server.ts).
 */
import { badRequest } from './status.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Field access by a name from the patch: own fields only, and `__proto__` written as an
 * ordinary field (an assignment would set the object's prototype, so admission would read
 * inherited fields that storage, through JSON, never sees).
 */
function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** RFC 7386 §2. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) Reflect.deleteProperty(out, k);
    else setOwn(out, k, mergePatch(own(out, k), v));
  }
  return out;
}

/** RFC 6901 §4: "~1" is "/", "~0" is "~". */
function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw badRequest(`invalid array index ${JSON.stringify(token)}`);
  const i = Number(token);
  if (i > length || (!forAdd && i === length))
    throw badRequest(`array index ${token} out of range`);
  return i;
}

function getAt(doc: unknown, tokens: readonly string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length, false)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw badRequest(`the path ${JSON.stringify(`/${tokens.join('/')}`)} does not exist`);
  }
  return cur;
}

function parentOf(doc: unknown, tokens: readonly string[]): { parent: unknown; last: string } {
  if (tokens.length === 0) throw badRequest('the whole document cannot be the target here');
  return { parent: getAt(doc, tokens.slice(0, -1)), last: tokens[tokens.length - 1] ?? '' };
}

function addAt(doc: unknown, tokens: readonly string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, true), 0, value);
  else if (isObject(parent)) setOwn(parent, last, value);
  else throw badRequest(`cannot add at ${JSON.stringify(`/${tokens.join('/')}`)}`);
  return doc;
}

function removeAt(doc: unknown, tokens: readonly string[]): unknown {
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) Reflect.deleteProperty(parent, last);
  else throw badRequest(`the path ${JSON.stringify(`/${tokens.join('/')}`)} does not exist`);
  return doc;
}

/** RFC 6902 §4: add, remove, replace, move, copy, test; atomic (applied to a copy). */
export function jsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('a JSON patch must be an array of operations');
  if (patch.length > 10_000) throw badRequest('too many JSON patch operations');
  let doc = clone(target);
  for (const [i, op] of patch.entries()) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string')
      throw badRequest(`JSON patch operation ${i}: op and path are required`);
    const path = parsePointer(op.path);
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw badRequest(`JSON patch operation ${i}: value is required`);
        doc = addAt(doc, path, clone(op.value));
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'replace':
        if (!('value' in op)) throw badRequest(`JSON patch operation ${i}: value is required`);
        getAt(doc, path);
        doc =
          path.length === 0 ? clone(op.value) : addAt(removeAt(doc, path), path, clone(op.value));
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string')
          throw badRequest(`JSON patch operation ${i}: from is required`);
        const from = parsePointer(op.from);
        if (op.op === 'move' && op.path.startsWith(`${op.from}/`))
          throw badRequest(`JSON patch operation ${i}: cannot move a value into itself`);
        const value = clone(getAt(doc, from));
        if (op.op === 'move') doc = removeAt(doc, from);
        doc = addAt(doc, path, value);
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value))
          throw new TestFailed(`JSON patch test operation ${i} failed at ${op.path}`);
        break;
      default:
        throw badRequest(`JSON patch operation ${i}: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}

/** A failed `test` operation (422 in Kubernetes). */
export class TestFailed extends Error {}

const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  env: 'name',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  tolerations: 'key',
  conditions: 'type',
  hostAliases: 'ip',
  // admissionregistration/v1 webhook configurations: patchMergeKey name.
  webhooks: 'name',
};

function mergeKeyFor(
  field: string,
  list: readonly unknown[],
  patch: readonly unknown[],
): string | undefined {
  let key = Object.hasOwn(MERGE_KEYS, field) ? MERGE_KEYS[field] : undefined;
  // Service ports merge by port; container ports by containerPort.
  if (
    field === 'ports' &&
    [...list, ...patch].some((e) => isObject(e) && 'port' in e && !('containerPort' in e))
  )
    key = 'port';
  if (key === undefined) return undefined;
  const all = [...list, ...patch];
  return all.every((e) => isObject(e) && (e[key] !== undefined || e.$patch !== undefined))
    ? key
    : undefined;
}

/** Kubernetes strategic merge patch over the lists it knows, merge patch elsewhere. */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch.$retainKeys)
    ? patch.$retainKeys.filter((k) => typeof k === 'string')
    : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys' || k === '$patch' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = own(out, field);
      if (Array.isArray(cur) && Array.isArray(v))
        setOwn(
          out,
          field,
          cur.filter((e) => !v.some((d) => d === e)),
        );
      continue;
    }
    if (v === null) {
      Reflect.deleteProperty(out, k);
      continue;
    }
    const cur = own(out, k);
    if (Array.isArray(v) && Array.isArray(cur)) {
      const key = mergeKeyFor(k, cur, v);
      if (key !== undefined) {
        const merged: unknown[] = cur.map((e: unknown) => clone(e));
        for (const p of v) {
          if (!isObject(p)) continue;
          const idx = merged.findIndex((e) => isObject(e) && e[key] === p[key]);
          if (p.$patch === 'delete') {
            if (idx !== -1) merged.splice(idx, 1);
          } else if (idx === -1) merged.push(stripDirectives(p));
          else merged[idx] = strategicMergePatch(merged[idx], p);
        }
        setOwn(out, k, merged);
        continue;
      }
    }
    const next = strategicMergePatch(cur, v);
    if (next === undefined) Reflect.deleteProperty(out, k);
    else setOwn(out, k, next);
  }
  if (retain !== undefined)
    for (const k of Object.keys(out)) if (!retain.includes(k)) Reflect.deleteProperty(out, k);
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(v))
    if (!k.startsWith('$')) setOwn(out, k, stripDirectives(e));
  return out;
}
