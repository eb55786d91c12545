/**
 * The control plane's desired state: every validated object, keyed by
 * kind/namespace/name, as one immutable, versioned snapshot. A new snapshot
 * is built whole from a set of manifests or not at all — one bad object
 * rejects the change and the last good snapshot keeps serving (DESIGN.md §4:
 * "nothing half-applied").
 */
import {
  describeObject,
  formatIssue,
  validateMeshObject,
  type Manifest,
  type MeshResource,
  type ValidationIssue,
} from '../../api/index.js';

/** Kinds that are not namespaced (everything else defaults to `default`). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
]);

/** One stored object and where it came from. */
export interface StoredObject {
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  readonly resource: MeshResource;
}

/** An object that could not be accepted, with every reason. */
export interface ConfigProblem {
  readonly file: string;
  readonly index: number;
  /** `Kind namespace/name` or `document N` when the header itself is broken. */
  readonly object: string;
  readonly issues: readonly ValidationIssue[];
}

/** An immutable set of validated objects. */
export interface ConfigSnapshot {
  readonly version: number;
  readonly objects: ReadonlyMap<string, StoredObject>;
  /** Objects of one kind, in key order. */
  ofKind(kind: string): readonly StoredObject[];
}

/** Formats a problem as one log/CLI line: `file (Kind ns/name): field: reason; …`. */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.file} (${problem.object}): ${problem.issues.map(formatIssue).join('; ')}`;
}

/** Object key: `Kind/namespace/name` (namespace empty for cluster-scoped kinds). */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function meta(resource: unknown): { name: string; namespace: string | undefined } {
  const m = (resource as { metadata?: { name?: unknown; namespace?: unknown } }).metadata ?? {};
  return {
    name: typeof m.name === 'string' ? m.name : '',
    namespace: typeof m.namespace === 'string' ? m.namespace : undefined,
  };
}

/** Builds a snapshot from objects already validated (used for apply/delete). */
export function createSnapshot(version: number, objects: Iterable<StoredObject>): ConfigSnapshot {
  const map = new Map<string, StoredObject>();
  for (const o of [...objects].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)))
    map.set(o.key, o);
  const byKind = new Map<string, StoredObject[]>();
  for (const o of map.values()) {
    const list = byKind.get(o.kind) ?? [];
    list.push(o);
    byKind.set(o.kind, list);
  }
  return { version, objects: map, ofKind: (kind) => byKind.get(kind) ?? [] };
}

/** Validates manifests into stored objects; returns every problem when any fails. */
export function validateManifests(
  manifests: readonly Manifest[],
):
  | { ok: true; objects: StoredObject[]; ignored: string[] }
  | { ok: false; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const objects: StoredObject[] = [];
  const ignored: string[] = [];
  const seen = new Map<string, Manifest>();
  for (const manifest of manifests) {
    if (manifest.object === null || manifest.object === undefined) continue;
    const subject = describeObject(manifest.object);
    const result = validateMeshObject(manifest.object);
    if (result.ok === 'unknown') {
      ignored.push(`${manifest.file}: ${result.apiVersion} ${result.kind}`);
      continue;
    }
    if (!result.ok) {
      problems.push({
        file: manifest.file,
        index: manifest.index,
        object: subject,
        issues: result.issues,
      });
      continue;
    }
    const kind = (result.value as { kind: string }).kind;
    const { name, namespace } = meta(result.value);
    const ns = CLUSTER_SCOPED.has(kind) ? '' : (namespace ?? 'default');
    const key = objectKey(kind, ns, name);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      problems.push({
        file: manifest.file,
        index: manifest.index,
        object: subject,
        issues: [{ path: 'metadata.name', message: `duplicate of the object in ${earlier.file}` }],
      });
      continue;
    }
    seen.set(key, manifest);
    objects.push({ key, kind, namespace: ns, name, file: manifest.file, resource: result.value });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, objects, ignored };
}
