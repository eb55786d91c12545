/**
 * Reading manifests: files or directories of YAML/JSON, many documents per
 * file, each remembered with its file and index so errors can name them.
 */
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
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

/**
 * Kubernetes' bounds: an object is at most 1.5 MiB (the API server's and
 * etcd's request limit, `--max-request-bytes` 1.5 MiB) and its annotations at
 * most 256 KiB in total, keys plus values (apimachinery
 * `TotalAnnotationSizeLimitB`).
 */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** A file larger than this holds at least one object over the bound: refused before parsing. */
export const MAX_MANIFEST_FILE_BYTES = 16 * 1024 * 1024;
/** YAML aliases expanded per document at most (the `yaml` library's alias-bomb guard). */
export const MAX_YAML_ALIASES = 100;

const REPLACEMENT = '\uFFFD';

/** Field paths (`spec.hosts[0]`, `metadata.name`) of strings in `value` that contain U+FFFD. */
function replacedPaths(value: unknown, path: string, out: string[]): string[] {
  if (typeof value === 'string') {
    if (value.includes(REPLACEMENT)) out.push(path === '' ? '(document)' : path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => replacedPaths(v, `${path}[${String(i)}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes(REPLACEMENT)) out.push(`${path === '' ? '' : `${path}.`}${k} (key)`);
      replacedPaths(v, path === '' ? k : `${path}.${k}`, out);
    }
  }
  return out;
}

/** Size problems of one object (Kubernetes' bounds), as `path: message`. */
export function objectSizeProblems(object: unknown): string[] {
  const problems: string[] = [];
  // Parsed YAML/JSON values are never undefined, so stringify always returns text.
  const size = Buffer.byteLength(JSON.stringify(object));
  if (size > MAX_OBJECT_BYTES)
    problems.push(
      `(object): is ${String(size)} bytes; an object may be at most ${String(MAX_OBJECT_BYTES)} bytes (1.5 MiB, as Kubernetes)`,
    );
  const annotations = (object as { metadata?: { annotations?: unknown } } | null)?.metadata
    ?.annotations;
  if (typeof annotations === 'object' && annotations !== null) {
    let total = 0;
    for (const [k, v] of Object.entries(annotations))
      total += Buffer.byteLength(k) + (typeof v === 'string' ? Buffer.byteLength(v) : 0);
    if (total > MAX_ANNOTATIONS_BYTES)
      problems.push(
        `metadata.annotations: total ${String(total)} bytes; may be at most ${String(MAX_ANNOTATIONS_BYTES)} (256 KiB, as Kubernetes)`,
      );
  }
  return problems;
}

/**
 * Decodes a manifest file as strict UTF-8: an invalid byte sequence is an
 * error naming the file, the object and every field it hits — never silently
 * U+FFFD (hosts are DNS names; a replaced byte would make another name).
 */
export function decodeManifestFile(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Locate the damage: decode with replacement, parse, and name the fields that changed.
    const lossy = new TextDecoder('utf-8').decode(bytes);
    const where: string[] = [];
    try {
      for (const m of parseManifests(lossy, file)) {
        const paths = replacedPaths(m.object, '', []);
        if (paths.length > 0) where.push(`${describeObject(m.object)}: ${paths.join(', ')}`);
      }
    } catch {
      // unparsable as well: the file name and the line below are what we have
    }
    const line = lossy.slice(0, lossy.indexOf(REPLACEMENT)).split('\n').length;
    throw new PalisadeError(
      'PAL_ERR_VALIDATION',
      `${file}:${String(line)}: invalid UTF-8${where.length === 0 ? '' : ` in ${where.join('; ')}`} (manifests must be UTF-8; a DNS name is ASCII)`,
      { path: file },
    );
  }
}

/** Parses every YAML document in `text`; a syntax error names the file and line. */
export function parseManifests(text: string, file: string): Manifest[] {
  const out: Manifest[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  let index = 0;
  let docNumber = 0;
  for (const doc of docs) {
    docNumber += 1;
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      const line = first?.linePos?.[0].line;
      throw new PalisadeError(
        'PAL_ERR_YAML_PARSE',
        `${file}${line === undefined ? '' : `:${line}`}: ${first?.message.split('\n')[0] ?? 'invalid YAML'}`,
        { path: file },
      );
    }
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (error) {
      // The yaml library refuses alias bombs ("Excessive alias count …") here.
      throw new PalisadeError(
        'PAL_ERR_YAML_PARSE',
        `${file}: document ${String(docNumber)}: ${error instanceof Error ? error.message : String(error)} (at most ${String(MAX_YAML_ALIASES)} aliases are expanded per document)`,
        { path: file },
      );
    }
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
  const tooLarge = out.flatMap((m) =>
    objectSizeProblems(m.object).map((p) => `${file}: ${describeObject(m.object)}: ${p}`),
  );
  if (tooLarge.length > 0)
    throw new PalisadeError('PAL_ERR_VALIDATION', tooLarge.join('\n'), { path: file });
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

function realpathOr(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** Reads every manifest under the given files or directories (each file once). */
export function readManifests(paths: readonly string[]): Manifest[] {
  const out: Manifest[] = [];
  // A file reached twice (`-f dir -f dir/a.yaml`, the same -f twice) is read
  // once, as kubectl reads it: otherwise its objects are "duplicates of
  // themselves". Two different files holding one object stay an error.
  const read = new Set<string>();
  for (const p of paths) {
    for (const file of listManifestFiles(p)) {
      const real = realpathOr(file);
      if (read.has(real)) continue;
      read.add(real);
      let bytes: Buffer;
      try {
        if (statSync(file).size > MAX_MANIFEST_FILE_BYTES)
          throw new PalisadeError(
            'PAL_ERR_VALIDATION',
            `${file}: larger than ${String(MAX_MANIFEST_FILE_BYTES)} bytes (an object may be at most 1.5 MiB)`,
            { path: file },
          );
        bytes = readFileSync(file);
      } catch (cause) {
        if (cause instanceof PalisadeError) throw cause;
        throw new PalisadeError('PAL_ERR_FILE_READ', `${file}: cannot read: ${String(cause)}`, {
          path: file,
          cause,
        });
      }
      out.push(...parseManifests(decodeManifestFile(bytes, file), file));
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
