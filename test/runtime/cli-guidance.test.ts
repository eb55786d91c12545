// The CLI guides a newcomer (issue 16): `palisade ca` alone prints the ca
// commands (as `palisade` alone prints them all), and proxy-status without a
// mesh says what is wrong and how to start one — no transport wording such as
// an empty "Resolution note:".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, runPalisade } from '../helpers/index.js';

test('palisade ca alone prints its usage', async () => {
  const r = await runPalisade(['ca']);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /^Usage: palisade ca <subcommand> \[options\]\n\nCommands:\n {2}ca init /);
  for (const sub of ['init', 'issue', 'inspect', 'serve', 'token'])
    assert.match(r.stdout, new RegExp(`^ {2}ca ${sub} `, 'm'));
  assert.equal(r.stderr, '');
  const unknown = await runPalisade(['ca', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown subcommand "ca nope"/);
});

test('proxy-status with no mesh running names the cause and how to start one', async () => {
  const port = await freePort(); // free, so nothing answers there
  const r = await runPalisade(['proxy-status', '--control', `127.0.0.1:${String(port)}`]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `palisade proxy-status: cannot reach the control plane at 127.0.0.1:${String(port)} (connection refused): is the mesh running? Start it with npm start (palisade up -f examples/bookinfo), or pass --control ADDR [PAL_ERR_CONTROL_UNREACHABLE]\n`,
  );
  assert.doesNotMatch(r.stderr, /Resolution note/);
});
