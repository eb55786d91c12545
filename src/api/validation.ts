/**
 * Validation conventions shared by every resource kind (STYLE.md §3):
 * validate at the edge, collect every problem with its field path, reject
 * unknown fields. Schemas are TypeBox (types + JSON Schema for CRDs), checked
 * by Ajv; semantic checks add issues with the same path format.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { PalisadeError } from '../errors/index.js';

/** One problem with one field: `spec.rules[0].from[0].source.principals[1]: must not be empty`. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] };

/** Renders an issue the way every Palisade message does. */
export function formatIssue(issue: ValidationIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/** Joins a parent path and a child key or index: `spec` + `rules` + 0 → `spec.rules[0]`. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** Converts an Ajv JSON pointer (`/spec/rules/0`) to Palisade's path (`spec.rules[0]`). */
export function pointerToPath(pointer: string, base = ''): string {
  if (pointer === '') return base;
  let path = base;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(key) ? joinPath(path, Number(key)) : joinPath(path, key);
  }
  return path;
}

function issueFromAjv(e: ErrorObject, base: string): ValidationIssue {
  const path = pointerToPath(e.instancePath, base);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return {
        path: joinPath(path, String(params['additionalProperty'])),
        message: 'unknown field (not supported by this kind)',
      };
    case 'required':
      return {
        path: joinPath(path, String(params['missingProperty'])),
        message: 'required field is missing',
      };
    case 'type':
      return { path, message: `must be ${String(params['type'])}` };
    case 'enum':
      return {
        path,
        message: `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'minLength':
      return {
        path,
        message: params['limit'] === 1 ? 'must not be empty' : (e.message ?? 'too short'),
      };
    case 'minItems':
      return {
        path,
        message: params['limit'] === 1 ? 'must not be empty' : (e.message ?? 'too few items'),
      };
    default:
      return { path, message: e.message ?? e.keyword };
  }
}

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false, coerceTypes: false });
(addFormatsModule as unknown as (a: Ajv) => void)(ajv);

export interface Validator<T> {
  (value: unknown, basePath?: string): ValidationResult<T>;
  readonly schema: TSchema;
}

/**
 * Compiles a TypeBox schema into a validator that reports every problem.
 * Ajv reports both an `anyOf` and each branch's failures; those are kept
 * because they name what each alternative needed.
 *
 * The Ajv code is generated on the first call, not at import: compiled
 * validators for every kind cost ~55 MB of heap and code, and processes that
 * load this module without validating (the proxy, through the policy
 * translators) must not pay for them.
 */
export function createValidator<S extends TSchema>(schema: S): Validator<Static<S>> {
  let compiled: ValidateFunction | undefined;
  const fn = (value: unknown, basePath = ''): ValidationResult<Static<S>> => {
    compiled ??= ajv.compile(schema);
    const check = compiled;
    if (check(value)) return { ok: true, value: value as Static<S> };
    const seen = new Set<string>();
    const issues: ValidationIssue[] = [];
    const errors = check.errors ?? [];
    // A union of literals (TypeBox) fails as one `const` error per literal plus an `anyOf`:
    // report it once, as the list of allowed values.
    const literals = new Map<string, unknown[]>();
    for (const e of errors)
      if (e.keyword === 'const')
        literals.set(e.instancePath, [
          ...(literals.get(e.instancePath) ?? []),
          (e.params as { allowedValue?: unknown }).allowedValue,
        ]);
    for (const [pointer, values] of literals) {
      if (values.length < 2) continue;
      const issue = {
        path: pointerToPath(pointer, basePath),
        message: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
      };
      seen.add(formatIssue(issue));
      issues.push(issue);
    }
    for (const e of errors) {
      if (
        (e.keyword === 'const' || e.keyword === 'anyOf') &&
        (literals.get(e.instancePath)?.length ?? 0) >= 2
      )
        continue;
      const issue = issueFromAjv(e, basePath);
      const key = formatIssue(issue);
      if (!seen.has(key)) {
        seen.add(key);
        issues.push(issue);
      }
    }
    return { ok: false, issues };
  };
  return Object.assign(fn, { schema });
}

/** Thrown when a resource is rejected; `issues` holds every problem found. */
export class ValidationError extends PalisadeError<'PAL_ERR_VALIDATION'> {
  readonly issues: readonly ValidationIssue[];

  constructor(subject: string, issues: readonly ValidationIssue[]) {
    super('PAL_ERR_VALIDATION', `${subject}: ${issues.map(formatIssue).join('; ')}`, {
      details: { issues },
    });
    this.issues = issues;
  }
}
