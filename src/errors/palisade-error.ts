/**
 * Palisade's error type. Every error the product raises on purpose carries a
 * stable code from the registry (src/errors/codes-*.ts), documented in
 * docs/errors.md; a test fails when the two drift apart (STYLE.md §2).
 */
import { ERROR_CODES, type ErrorCode } from './registry.js';

export interface PalisadeErrorOptions {
  /** Field path or object the error is about, e.g. `spec.rules[0].from[0]`. */
  readonly path?: string;
  /** Extra machine-readable facts (never secrets). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

export class PalisadeError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name = 'PalisadeError';
  readonly code: C;
  readonly path: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: C, message: string, options: PalisadeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.details = options.details;
  }

  /** The registry's one-line description of this error's code. */
  get summary(): string {
    return ERROR_CODES[this.code].summary;
  }
}

/** Narrowing guard: `if (isPalisadeError(e, 'PAL_ERR_CA_...'))`. */
export function isPalisadeError<C extends ErrorCode>(
  err: unknown,
  code?: C,
): err is PalisadeError<C> {
  return err instanceof PalisadeError && (code === undefined || err.code === code);
}
