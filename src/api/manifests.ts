/**
 * Reading manifests: files or directories of YAML/JSON, many documents per
 * file, each remembered with its file and index so errors can name them.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PalisadeError } from '../errors/index.js';

/** One parsed document with where it came from. */
export interface Manifest {
  readonly file: string;
  /** 0-based index of the document within its file. */
  readonly index: number;
  readonly object: unknown;
}

/** A Kubernetes-style object header, when the document has one. */
export interface ObjectHeader {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Parses every YAML document in `text`; a syntax error names the file and line. */
export function parseManifests(text: string, file: string): Manifest[] {
  const out: Manifest[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  let index = 0;
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      const line = first?.linePos?.[0].line;
      throw new PalisadeError(
        'PAL_ERR_YAML_PARSE',
        `${file}${line === undefined ? '' : `:${line}`}: ${first?.message.split('\n')[0] ?? 'invalid YAML'}`,
        { path: file },
      );
    }
    const object: unknown = doc.toJS({ maxAliasCount: 100 });
    if (object === null || object === undefined) continue; // empty document (`---` alone)
    if (Array.isArray(object)) {
      // A JSON array of objects is accepted like a List.
      for (const item of object) out.push({ file, index: index++, object: item });
      continue;
    }
    const asList = object as { kind?: unknown; items?: unknown };
    if (
      typeof asList.kind === 'string' &&
      asList.kind.endsWith('List') &&
      Array.isArray(asList.items)
    ) {
      for (const item of asList.items as unknown[])
        out.push({ file, index: index++, object: item });
      continue;
    }
    out.push({ file, index: index++, object });
  }
  return out;
}

/** Lists manifest files under `path` (a file, or a directory walked recursively, sorted). */
export function listManifestFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: no such file or directory`, {
      path,
      cause,
    });
  }
  if (!st.isDirectory()) return [path];
  const files: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) files.push(...listManifestFiles(p));
    else if (MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) files.push(p);
  }
  return files;
}

/** Reads every manifest under the given files or directories. */
export function readManifests(paths: readonly string[]): Manifest[] {
  const out: Manifest[] = [];
  for (const p of paths) {
    for (const file of listManifestFiles(p)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (cause) {
        throw new PalisadeError('PAL_ERR_FILE_READ', `${file}: cannot read: ${String(cause)}`, {
          path: file,
          cause,
        });
      }
      out.push(...parseManifests(text, file));
    }
  }
  return out;
}

/** The apiVersion/kind/name/namespace of an object, or undefined when it has none. */
export function objectHeader(object: unknown): ObjectHeader | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const o = object as {
    apiVersion?: unknown;
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown };
  };
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') return undefined;
  const name = typeof o.metadata?.name === 'string' ? o.metadata.name : '';
  const namespace = typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : undefined;
  return { apiVersion: o.apiVersion, kind: o.kind, name, namespace };
}

/** `Kind namespace/name` as used in every message about an object. */
export function describeObject(object: unknown): string {
  const h = objectHeader(object);
  if (h === undefined) return 'document without apiVersion/kind';
  return `${h.kind} ${h.namespace === undefined ? '' : `${h.namespace}/`}${h.name}`;
}
