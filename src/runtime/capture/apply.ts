/**
 * Installs and removes the capture rules of rules.ts in the current network
 * namespace or in a named one (`ip netns exec NAME …`). Both directions read
 * the nat table first (`iptables-save -t nat`) and change it in one
 * `iptables-restore --noflush` transaction, so:
 * - install is idempotent: our chains are redeclared (flushed and refilled)
 *   and a jump from PREROUTING/OUTPUT is only added when it is missing;
 * - clean removes exactly what install added: every rule in a built-in chain
 *   whose target is a PALISADE_* chain, then those chains; nothing else in the
 *   table is touched, and cleaning a clean namespace changes nothing.
 */
import { spawnSync } from 'node:child_process';
import { PalisadeError } from '../../errors/index.js';
import { builtinJumps, CAPTURE_CHAINS, captureRules, type CaptureOptions } from './rules.js';

/** Runs an iptables tool, inside `netns` when given; throws PAL_ERR_RUNTIME_CAPTURE with its stderr. */
function run(netns: string | undefined, argv: readonly string[], input?: string): string {
  const [command, args] =
    netns === undefined
      ? [argv[0] ?? '', argv.slice(1)]
      : ['ip', ['netns', 'exec', netns, ...argv]];
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
    timeout: 20_000,
  });
  if (result.error !== undefined || result.status !== 0)
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_CAPTURE',
      `${[command, ...args].join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`,
    );
  return result.stdout;
}

/** The nat table as `iptables-save` prints it. */
export function natTable(netns?: string): string {
  return run(netns, ['iptables-save', '-t', 'nat']);
}

const OUR_CHAIN = new RegExp(`-j (${CAPTURE_CHAINS.join('|')})(\\s|$)`);

/** The script `--dry-run` prints and install applies, given the current nat table. */
export function installScript(options: CaptureOptions, current: string): string {
  const body = captureRules(options).split('\n');
  const commit = body.lastIndexOf('COMMIT');
  const have = new Set(current.split('\n').map((l) => l.trim()));
  const jumps = builtinJumps(options).filter((j) => !have.has(j));
  return [...body.slice(0, commit), ...jumps, ...body.slice(commit)].join('\n');
}

/** The script that removes our rules from `current` (undefined: nothing of ours is there). */
export function cleanScript(current: string): string | undefined {
  const lines = current.split('\n').map((l) => l.trim());
  const deletes = lines
    .filter((l) => /^-A (PREROUTING|OUTPUT|INPUT|POSTROUTING) /.test(l) && OUR_CHAIN.test(l))
    .map((l) => `-D ${l.slice(3)}`);
  const chains = CAPTURE_CHAINS.filter((c) => lines.some((l) => l.startsWith(`:${c} `)));
  if (deletes.length === 0 && chains.length === 0) return undefined;
  return [
    '*nat',
    ...deletes,
    ...chains.map((c) => `-F ${c}`),
    ...chains.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** Installs the capture rules (idempotent). Returns the script applied. */
export function installCapture(options: CaptureOptions, netns?: string): string {
  const script = installScript(options, natTable(netns));
  run(netns, ['iptables-restore', '--noflush'], script);
  return script;
}

/** Removes every rule and chain install added. Returns the script applied (undefined: nothing to remove). */
export function cleanCapture(netns?: string): string | undefined {
  const script = cleanScript(natTable(netns));
  if (script !== undefined) run(netns, ['iptables-restore', '--noflush'], script);
  return script;
}
