/**
 * The kubectl session (kubectl-scenario.ts) against `palisade apiserver` on
 * its embedded store. Loopback 127.38.0.0/16 (this area's range), port 0.
 */
import { test } from 'node:test';
import { kubectlBin, kubectlScenario } from './kubectl-scenario.js';

test('kubectl session against palisade apiserver', { skip: kubectlBin === undefined }, (t) =>
  kubectlScenario(t, { host: '127.38.0.1', storeArgs: [] }),
);
