/** Argument parsing on top of node:util parseArgs, with Palisade's usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PalisadeError } from '../errors/index.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `args` strictly: an unknown flag or a missing value is a usage error
 * (exit 2) naming the flag.
 */
export function parseCommandArgs<O extends Options>(
  args: readonly string[],
  options: O,
  allowPositionals = true,
): ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: boolean; strict: true; args: string[] }>
> {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new PalisadeError('PAL_ERR_USAGE', message.split('\n')[0] ?? message, { cause });
  }
}

/** Throws a usage error unless `value` is a non-empty string. */
export function requireOption(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') {
    throw new PalisadeError('PAL_ERR_USAGE', `missing required option ${flag}`);
  }
  return value;
}
