/**
 * `palisade start` — what `npm start` runs: the local Bookinfo mesh
 * (`palisade up -f examples/bookinfo`) with mTLS STRICT mesh-wide and an HTTPS
 * ingress, printing where to look.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PalisadeError } from '../../errors/index.js';
import type { Command } from '../command.js';
import { upCommand } from './up.js';

/** The repository's examples/bookinfo (the CLI runs from dist/src/cli/commands). */
const BOOKINFO = fileURLToPath(new URL('../../../../examples/bookinfo', import.meta.url));

export const startCommand: Command = {
  path: ['start'],
  summary: 'Run the main job (npm start): the local Bookinfo mesh with mTLS and an HTTPS ingress',
  usage: `Usage: palisade start [palisade up options]

Runs \`palisade up -f examples/bookinfo\`: the control plane, the four Bookinfo
services (reviews in three versions) each with a sidecar, STRICT mTLS
mesh-wide and the ingress gateway serving HTTPS with a generated certificate.
Prints the ingress, metrics and control-plane addresses; Ctrl-C stops it.`,
  run: (args, io) => {
    if (!existsSync(join(BOOKINFO, 'bookinfo.yaml')))
      throw new PalisadeError('PAL_ERR_FILE_READ', `${BOOKINFO}: the Bookinfo example is missing`);
    return upCommand.run(['-f', BOOKINFO, ...args], io);
  },
};
