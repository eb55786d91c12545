/** Validation of Palisade's own kinds: schema plus the rules it cannot say. */
import { createValidator, joinPath, type ValidationIssue } from '../validation.js';
import { WorkloadSchema, type Workload } from './schemas.js';

const validateWorkloadSchema = createValidator(WorkloadSchema);

/** True when `object` is a `palisade.dev/v1alpha1` Workload. */
export function isPalisadeObject(object: unknown): object is { kind: 'Workload' } {
  if (typeof object !== 'object' || object === null) return false;
  const o = object as { apiVersion?: unknown; kind?: unknown };
  return o.apiVersion === 'palisade.dev/v1alpha1' && o.kind === 'Workload';
}

/** Validates one Workload: ports unique by number and name; env names unique. */
export function validatePalisadeResource(
  object: unknown,
): { ok: true; value: Workload } | { ok: false; issues: readonly ValidationIssue[] } {
  if (!isPalisadeObject(object))
    return {
      ok: false,
      issues: [{ path: 'kind', message: 'not a palisade.dev/v1alpha1 Workload' }],
    };
  const r = validateWorkloadSchema(object);
  if (!r.ok) return r;
  const issues: ValidationIssue[] = [];
  const ports = new Set<number>();
  const names = new Set<string>();
  r.value.spec.ports.forEach((p, i) => {
    if (ports.has(p.port))
      issues.push({
        path: `${joinPath('spec.ports', i)}.port`,
        message: `duplicate port ${String(p.port)}`,
      });
    ports.add(p.port);
    if (p.name !== undefined) {
      if (names.has(p.name))
        issues.push({
          path: `${joinPath('spec.ports', i)}.name`,
          message: `duplicate port name ${JSON.stringify(p.name)}`,
        });
      names.add(p.name);
    }
  });
  const env = new Set<string>();
  (r.value.spec.env ?? []).forEach((e, i) => {
    if (env.has(e.name))
      issues.push({
        path: `${joinPath('spec.env', i)}.name`,
        message: `duplicate variable ${e.name}`,
      });
    env.add(e.name);
  });
  return issues.length === 0 ? { ok: true, value: r.value } : { ok: false, issues };
}
