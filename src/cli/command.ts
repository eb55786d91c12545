/**
 * The shape of a CLI command. Each command lives in its own file under
 * src/cli/commands/ and is listed once in src/cli/commands/index.ts.
 */

/** Where a command reads and writes; tests pass their own. */
export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads all of standard input as bytes. */
  readonly readStdin: () => Promise<Buffer>;
  readonly cwd: string;
}

export interface Command {
  /** Words that select the command: `['ca', 'init']`. */
  readonly path: readonly string[];
  /** One line for `palisade --help`. */
  readonly summary: string;
  /** Full usage text for `palisade <path> --help`. */
  readonly usage: string;
  /** Runs with the arguments after the command words; resolves to the exit status. */
  readonly run: (args: readonly string[], io: CliIO) => Promise<number>;
}
