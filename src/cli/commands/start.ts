/**
 * `palisade start` — what `npm start` runs. Until the local mesh runtime
 * exists it prints what Palisade can do today.
 */
import type { Command } from '../command.js';

export const startCommand: Command = {
  path: ['start'],
  summary: 'Run the main job (npm start): the local Bookinfo mesh once the runtime lands',
  usage: 'palisade start\n\nRuns the local demo. Today it lists the commands that work.',
  run: async (_args, io) => {
    const { COMMANDS } = await import('./index.js');
    io.stdout('Palisade — a zero-trust service mesh.\n\n');
    io.stdout('The local Bookinfo mesh (`palisade up`) is not built yet. What works now:\n\n');
    for (const c of COMMANDS) {
      if (c.path[0] === 'start') continue;
      io.stdout(`  palisade ${c.path.join(' ').padEnd(22)} ${c.summary}\n`);
    }
    io.stdout('\nRun `palisade <command> --help` for details, `npm test` for the test suite.\n');
    return 0;
  },
};
