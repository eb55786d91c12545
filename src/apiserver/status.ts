/**
 * Errors as the API returns them: a `meta/v1` Status with Kubernetes' reason,
 * code and message wording (k8s.io/apimachinery/pkg/api/errors), mapped in
 * this one place (STYLE.md §4).
 */
import { qualifiedResource, type ResourceType } from './resources.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Expired';

const CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  Invalid: 422,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  RequestEntityTooLarge: 413,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly causes?: readonly { reason?: string; message: string; field?: string }[];
}

/** An API failure carrying the Status to send. */
export class ApiError extends Error {
  readonly reason: StatusReason;
  readonly code: number;
  readonly details: StatusDetails | undefined;
  constructor(reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'ApiError';
    this.reason = reason;
    this.code = CODES[reason];
    this.details = details;
  }

  /** A Status a webhook chose: its own code and reason, passed through as Kubernetes does. */
  static withCode(code: number, reason: string, message: string): ApiError {
    const e = new ApiError('BadRequest', message);
    (e as { code: number }).code = code;
    (e as { reason: string }).reason = reason;
    return e;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.code,
    };
  }
}

function details(t: ResourceType, name: string | undefined): StatusDetails {
  return {
    ...(name === undefined || name === '' ? {} : { name }),
    ...(t.group === '' ? {} : { group: t.group }),
    kind: t.plural,
  };
}

/** `pods "x" not found`. */
export function notFound(t: ResourceType, name: string): ApiError {
  return new ApiError('NotFound', `${qualifiedResource(t)} "${name}" not found`, details(t, name));
}

/** `pods "x" already exists`. */
export function alreadyExists(t: ResourceType, name: string): ApiError {
  return new ApiError(
    'AlreadyExists',
    `${qualifiedResource(t)} "${name}" already exists`,
    details(t, name),
  );
}

/** The optimistic-concurrency conflict, worded as registry/rest does. */
export function conflict(t: ResourceType, name: string): ApiError {
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details(t, name),
  );
}

/** `Pod "x" is invalid: spec.containers: Required value` (NewInvalid). */
export function invalid(
  t: ResourceType,
  name: string,
  causes: readonly { field: string; message: string }[],
): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const joined = list.length === 1 ? (list[0] ?? '') : `[${list.join(', ')}]`;
  return new ApiError('Invalid', `${t.kind} "${name}" is invalid: ${joined}`, {
    ...(name === '' ? {} : { name }),
    ...(t.group === '' ? {} : { group: t.group }),
    kind: t.kind,
    causes: causes.map((c) => ({
      reason: 'FieldValueInvalid',
      message: c.message,
      field: c.field,
    })),
  });
}

/** A request the admission chain refused (`admission webhook ... denied`, PodSecurity, lifecycle). */
export function forbiddenByAdmission(t: ResourceType, name: string, message: string): ApiError {
  const subject = name === '' ? qualifiedResource(t) : `${qualifiedResource(t)} "${name}"`;
  return new ApiError('Forbidden', `${subject} is forbidden: ${message}`, details(t, name));
}

export function badRequest(message: string): ApiError {
  return new ApiError('BadRequest', message);
}
