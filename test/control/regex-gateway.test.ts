// Issue 15, item 3, as reported: a VirtualService `uri: {regex: "/(a+)+"}` on
// the ingress gateway, and `curl http://<gateway>:8080/aaaa…!` — with real
// processes (`palisade control` on a config directory + the ingress gateway).
// Istio's regex is RE2 (whole value, linear time), so the hostile path is
// answered and so is a request sent at the same time; the gateway's PID never
// changes. Then a VirtualService with a lookahead is written to the config
// directory: the control plane refuses it, naming file, object, field and
// construct, and the gateway keeps serving its config.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runProcess, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startIngressGateway } from '../helpers/mesh-processes.js';

const GATEWAY_IP = '127.33.0.1';
/** Gateway port 80 is bound as 8080 (unprivileged), as Istio's charts map it. */
const HTTP_PORT = 8080;
const A60 = 'a'.repeat(60);

const MESH = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 80, name: http, protocol: HTTP }
      hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: redos, namespace: default }
spec:
  hosts: ['*']
  gateways: [edge]
  http:
    - match: [{ uri: { regex: "/(a+)+" } }]
      directResponse: { status: 200, body: { string: uri-regex } }
    - match: [{ uri: { regex: "/x/(a|a)*b" } }]
      directResponse: { status: 200, body: { string: uri-regex-2 } }
    - match: [{ uri: { prefix: /h }, headers: { x-id: { regex: "(a|aa)+c" } } }]
      directResponse: { status: 200, body: { string: header-regex } }
    - match: [{ uri: { exact: /ok } }]
      directResponse: { status: 200, body: { string: ok } }
    - directResponse: { status: 200, body: { string: fallback } }
`;

const BAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: lookahead, namespace: default }
spec:
  hosts: [other.example.com]
  gateways: [edge]
  http:
    - match: [{ uri: { regex: "/(?=admin).*" } }]
      directResponse: { status: 200, body: { string: never } }
`;

/** curl to the gateway: status and body (curl's own 10 s limit bounds a stalled gateway). */
async function get(path: string, headers: readonly string[] = []): Promise<string> {
  const r = await runProcess('curl', [
    '-sS',
    '--max-time',
    '10',
    '-w',
    ' %{http_code}',
    ...headers.flatMap((h) => ['-H', h]),
    `http://${GATEWAY_IP}:${String(HTTP_PORT)}${path}`,
  ]);
  return r.code === 0 ? r.stdout : `curl exit ${String(r.code)}: ${r.stderr}`;
}

test(
  'a VirtualService regex cannot stall the ingress gateway; non-RE2 regexes are refused',
  { timeout: 120_000 },
  async (t) => {
    const dir = await meshDirs(t);
    writeFileSync(join(dir.configDir, 'mesh.yaml'), MESH);
    const control = await startControlPlane(dir.configDir, dir.caDir);
    t.after(() => control.stop());
    const gateway = await startIngressGateway(control, { ip: GATEWAY_IP, dir: dir.path });
    t.after(() => gateway.stop());
    const pid = gateway.child.pid;
    await waitFor(async () => (await get('/ok')) === 'ok 200', 30_000, 250).catch(
      (error: unknown) =>
        assert.fail(
          `${String(error)}\n--- gateway ---\n${gateway.output()}\n--- control ---\n${control.output()}`,
        ),
    );

    // The attacks and a normal request at the same time: all are answered.
    const [uri, uri2, header, normal] = await Promise.all([
      get(`/${A60}!`),
      get(`/x/${A60}!`),
      get('/h', [`x-id: ${A60}!`]),
      get('/ok'),
    ]);
    assert.equal(normal, 'ok 200');
    assert.equal(uri, 'fallback 200');
    assert.equal(uri2, 'fallback 200');
    assert.equal(header, 'fallback 200');
    // The same regexes match what they should: RE2, whole path.
    assert.equal(await get(`/${A60}`), 'uri-regex 200');
    assert.equal(await get('/x/aab'), 'uri-regex-2 200');
    assert.equal(await get('/h', ['x-id: aaac']), 'header-regex 200');
    assert.equal(gateway.child.pid, pid);
    assert.equal(gateway.child.exitCode, null, 'the gateway is still running');

    // A lookahead never reaches the gateway: the control plane names what is wrong.
    writeFileSync(join(dir.configDir, 'bad.yaml'), BAD);
    // (The log line is JSON: its quotes are escaped.)
    await waitFor(
      () =>
        /config change rejected: \S*bad\.yaml \(VirtualService default\/lookahead\): spec\.http\[0\]\.match\[0\]\.uri\.regex: invalid regular expression \\?"\/\(\?=admin\)\.\*\\?": lookahead \\?"\(\?=\\?" is not supported/.test(
          control.output(),
        ),
      20_000,
    ).catch((error: unknown) =>
      assert.fail(`${String(error)}\n--- control ---\n${control.output()}`),
    );
    assert.equal(await get('/ok'), 'ok 200');
    assert.equal(await get(`/${A60}!`), 'fallback 200');
    assert.equal(gateway.child.pid, pid);
  },
);
