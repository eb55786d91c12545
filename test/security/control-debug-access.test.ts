// Issue 15 item 11: who may read the mesh's config.
// - The control plane's debug API (proxy-status, proxy-config) answers only
//   the operator: the random token the control plane writes, 0600, to
//   debug-token in its state dir. Without it, or with another plane's token,
//   the CLI gets "permission denied" and no data; with --state-dir it works.
// - A proxy's admin port refuses a Host that is not loopback (DNS rebinding:
//   a web page can reach 127.0.0.1 under a hostile name) with 403.
// Real control plane and sidecar processes; curl and the palisade CLI.
import assert from 'node:assert/strict';
import { mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, runProcess, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const APP_IP = '127.34.30.1';
const INSTANCE_IP = '127.34.30.2';

test(
  'the debug API needs the operator token; admin ports refuse non-loopback Host headers',
  { timeout: 90_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, APP_IP, resolve));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    writeFileSync(
      join(dir.configDir, 'mesh.yaml'),
      `apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: ${String(appPort)} }] }
`,
    );
    const control = await startControlPlane(dir.configDir, dir.caDir);
    t.after(() => control.stop());
    const sidecar = await startSidecar(control, {
      namespace: 'foo',
      name: 'web',
      instanceIp: INSTANCE_IP,
      appIp: APP_IP,
      dir: dir.path,
    });
    t.after(() => sidecar.stop());

    // The token file: the owner's only.
    const mode = statSync(join(control.stateDir, 'debug-token')).mode & 0o777;
    assert.equal(mode, 0o600, `debug-token mode ${mode.toString(8)}`);

    // A state dir with the mesh roots (TLS verifies) but no token: refused, no data.
    const stranger = join(dir.path, 'stranger');
    mkdirSync(stranger);
    symlinkSync(dir.caDir, join(stranger, 'ca'));
    const cli = (verb: readonly string[], stateDir: string): ReturnType<typeof runPalisade> =>
      runPalisade([...verb, '--control', control.xds, '--state-dir', stateDir]);
    for (const verb of [['proxy-status'], ['proxy-config', 'listener', 'web-0']]) {
      const denied = await cli(verb, stranger);
      assert.equal(denied.code, 1, denied.stdout + denied.stderr);
      assert.match(denied.stderr, /PAL_ERR_CONTROL_PERMISSION_DENIED/);
      assert.match(denied.stderr, /permission denied/);
      assert.doesNotMatch(denied.stdout, /web-0/);
    }
    // A guessed (or an earlier plane's) token: refused too.
    writeFileSync(join(stranger, 'debug-token'), 'b'.repeat(43), { mode: 0o600 });
    const wrong = await cli(['proxy-status'], stranger);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /permission denied: the debug token is not this control plane's/);

    // The operator: the control plane's state dir.
    const status = await waitFor(async () => {
      const r = await cli(['proxy-status'], control.stateDir);
      return r.code === 0 && /web-0\.foo/.test(r.stdout) ? r : undefined;
    }, 20_000);
    assert.ok(status !== undefined);

    // Admin port: DNS-rebinding defence.
    const admin = `http://127.0.0.1:${String(sidecar.admin)}/config_dump`;
    const code = async (host: string | undefined): Promise<string> =>
      (
        await runProcess('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          ...(host === undefined ? [] : ['-H', `Host: ${host}`]),
          admin,
        ])
      ).stdout;
    assert.equal(await code(undefined), '200');
    assert.equal(await code(`localhost:${String(sidecar.admin)}`), '200');
    assert.equal(await code('[::1]'), '200');
    for (const hostile of [
      'evil.example',
      '127.0.0.1.evil.example',
      'localhost.evil.example',
      '10.0.0.1',
    ])
      assert.equal(await code(hostile), '403', `Host: ${hostile}`);
    // Two Host headers, one hostile (curl sends only one: a raw request).
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(sidecar.admin, '127.0.0.1', () => {
        socket.end(
          'GET /config_dump HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
        );
      });
      let data = '';
      socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
      socket.on('end', () => {
        resolve(data);
      });
      socket.on('error', reject);
    });
    assert.doesNotMatch(raw, /^HTTP\/1\.1 200/, raw.slice(0, 200));
    assert.equal(sidecar.child.exitCode, null, 'the sidecar keeps running');
  },
);
