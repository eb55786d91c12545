/** Validation of the core kinds: schema plus the Kubernetes rules the schema cannot say. */
import { createValidator, joinPath, type ValidationIssue } from '../validation.js';
import {
  NamespaceSchema,
  ServiceAccountSchema,
  ServiceSchema,
  SecretSchema,
  type CoreResource,
  type Service,
} from './schemas.js';

const validators = {
  Service: createValidator(ServiceSchema),
  ServiceAccount: createValidator(ServiceAccountSchema),
  Namespace: createValidator(NamespaceSchema),
  Secret: createValidator(SecretSchema),
} as const;

export type CoreKind = keyof typeof validators;
export const CORE_KINDS = Object.keys(validators) as CoreKind[];

/** True when `object` is a `v1` Namespace, Service or ServiceAccount. */
export function isCoreObject(object: unknown): object is { apiVersion: 'v1'; kind: CoreKind } {
  if (typeof object !== 'object' || object === null) return false;
  const o = object as { apiVersion?: unknown; kind?: unknown };
  return o.apiVersion === 'v1' && typeof o.kind === 'string' && o.kind in validators;
}

/** Kubernetes: port names are unique and, with several ports, required (core/v1 ServiceSpec). */
function semanticService(service: Service, issues: ValidationIssue[]): void {
  const ports = service.spec.ports;
  const names = new Set<string>();
  const numbers = new Set<number>();
  ports.forEach((port, i) => {
    const path = joinPath('spec.ports', i);
    if (ports.length > 1 && port.name === undefined)
      issues.push({
        path: `${path}.name`,
        message: 'required when a Service has more than one port',
      });
    if (port.name !== undefined) {
      if (names.has(port.name))
        issues.push({
          path: `${path}.name`,
          message: `duplicate port name ${JSON.stringify(port.name)}`,
        });
      names.add(port.name);
    }
    if (numbers.has(port.port))
      issues.push({ path: `${path}.port`, message: `duplicate port ${String(port.port)}` });
    numbers.add(port.port);
  });
}

/** Validates one core object; returns it typed, or every issue. */
export function validateCoreResource(
  object: unknown,
): { ok: true; value: CoreResource } | { ok: false; issues: readonly ValidationIssue[] } {
  if (!isCoreObject(object))
    return {
      ok: false,
      issues: [{ path: 'kind', message: 'not a v1 Namespace, Service, ServiceAccount or Secret' }],
    };
  const r = validators[object.kind](object);
  if (!r.ok) return r;
  const issues: ValidationIssue[] = [];
  if (r.value.kind === 'Service') semanticService(r.value, issues);
  return issues.length === 0 ? { ok: true, value: r.value } : { ok: false, issues };
}
