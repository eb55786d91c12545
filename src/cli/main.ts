#!/usr/bin/env node
/**
 * The `palisade` CLI: finds the command by its words (longest match), runs it,
 * and maps errors to exit statuses once (STYLE.md §4): a PalisadeError exits
 * with its registered status and message; anything else is an internal error.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, isPalisadeError } from '../errors/index.js';
import type { CliIO, Command } from './command.js';
import { COMMANDS } from './commands/index.js';

function helpText(commands: readonly Command[]): string {
  const lines = ['Usage: palisade <command> [options]', '', 'Commands:'];
  for (const c of commands) lines.push(`  ${c.path.join(' ').padEnd(24)} ${c.summary}`);
  lines.push('', "Run `palisade <command> --help` for a command's options.");
  return `${lines.join('\n')}\n`;
}

function findCommand(
  args: readonly string[],
): { command: Command; rest: readonly string[] } | undefined {
  let best: Command | undefined;
  for (const c of COMMANDS) {
    if (c.path.length <= args.length && c.path.every((w, i) => args[i] === w)) {
      if (best === undefined || c.path.length > best.path.length) best = c;
    }
  }
  return best === undefined ? undefined : { command: best, rest: args.slice(best.path.length) };
}

/** Runs the CLI with `args` (without node and script) and returns the exit status. */
export async function runCli(args: readonly string[], io: CliIO): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    io.stdout(helpText(COMMANDS));
    return args.length === 0 ? 2 : 0;
  }
  const found = findCommand(args);
  if (found === undefined) {
    const group = COMMANDS.filter((c) => c.path[0] === args[0]);
    if (group.length > 0 && args.length === 1) {
      // `palisade ca` alone: the group's usage, as `palisade` alone prints the whole list.
      io.stdout(
        `Usage: palisade ${String(args[0])} <subcommand> [options]\n\n${helpText(group).replace(/^Usage:[^\n]*\n\n/, '')}`,
      );
      return 2;
    }
    if (group.length > 0) {
      io.stderr(
        `palisade: unknown subcommand ${JSON.stringify(args.slice(0, 2).join(' '))}\n\n${helpText(group)}`,
      );
    } else {
      io.stderr(`palisade: unknown command ${JSON.stringify(args[0])}\n\n${helpText(COMMANDS)}`);
    }
    return 2;
  }
  // Flags after `--` belong to a wrapped command (`palisade exec POD -- curl -h`), not to ours.
  const dash = found.rest.indexOf('--');
  const own = dash === -1 ? found.rest : found.rest.slice(0, dash);
  if (own.includes('--help') || own.includes('-h')) {
    io.stdout(`${found.command.usage.trimEnd()}\n`);
    return 0;
  }
  try {
    return await found.command.run(found.rest, io);
  } catch (err) {
    if (isPalisadeError(err)) {
      io.stderr(`palisade ${found.command.path.join(' ')}: ${err.message} [${err.code}]\n`);
      return ERROR_CODES[err.code].exit;
    }
    io.stderr(
      `palisade ${found.command.path.join(' ')}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** Standard process IO. */
export const processIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readStdin: () => readAll(process.stdin),
  cwd: process.cwd(),
};

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2), processIO).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`palisade: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
