// Istio's TCP metrics with the TCP peer exchange, through real processes: the
// control plane, a client sidecar (`sleep`) and a server sidecar (`echo`, a
// TCP echo app on a `tcp-` port). A connection CONNECTed through sleep's
// outbound listener is relayed over mTLS with ALPN `istio-peer-exchange`;
// both proxies then report istio_tcp_* with the other side's workload. A
// hostile mesh peer (negotiates the ALPN, then garbage / an oversized length /
// nothing) gets its connection closed while the proxy keeps serving; a
// plaintext client on the PERMISSIVE port is reported as `unknown`.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tls from 'node:tls';
import { runPalisade, waitFor } from '../helpers/index.js';
import { meshDirs, startControlPlane, startSidecar } from '../helpers/mesh-processes.js';

const ECHO_APP = '127.31.0.11';
const ECHO_INSTANCE = '127.31.0.12';
const SLEEP_APP = '127.31.0.21';
const SLEEP_INSTANCE = '127.31.0.22';

function mesh(port: number): string {
  return `
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: foo }
spec:
  selector: { app: echo }
  ports: [{ name: tcp-echo, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: echo, namespace: foo }
spec:
  serviceAccount: echo
  labels: { app: echo, version: v1 }
  command: node
  ports: [{ name: tcp-echo, port: ${String(port)} }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: sleep, namespace: bar }
spec:
  serviceAccount: sleep
  labels: { app: sleep, version: v1 }
  command: node
  ports: [{ name: http, port: 9080 }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: PERMISSIVE } }
`;
}

/** Reads until `socket` has produced `n` bytes (or closed), then resolves them. */
function readBytes(socket: net.Socket, n: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (got.length >= n) done();
    };
    const done = (): void => {
      socket.removeListener('data', onData);
      resolve(got);
    };
    socket.on('data', onData);
    socket.once('close', done);
  });
}

/** One round trip through sleep's outbound listener (CONNECT, then opaque bytes). */
async function viaSleep(outbound: number, port: number, payload: string): Promise<string> {
  const socket = net.connect(outbound, SLEEP_INSTANCE);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(
      `CONNECT echo.foo.svc.cluster.local:${String(port)} HTTP/1.1\r\nHost: echo.foo.svc.cluster.local:${String(port)}\r\n\r\n`,
    );
    const established = 'HTTP/1.1 200 Connection Established\r\n\r\n';
    const head = await readBytes(socket, established.length);
    if (head !== established) return `refused: ${head}`;
    socket.write(payload);
    return await readBytes(socket, payload.length);
  } finally {
    socket.destroy();
  }
}

/** The istio_tcp_* lines of `metric` on a proxy's /stats/prometheus. */
async function tcpSeries(admin: number, metric: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${String(admin)}/stats/prometheus`)).text();
  return text.split('\n').filter((l) => l.startsWith(`${metric}{`));
}

const valueOf = (line: string | undefined): number => Number(line?.split(' ').at(-1) ?? NaN);

test(
  'istio_tcp_* on both reporters with the TCP peer exchange; hostile preambles closed; plaintext unknown',
  { timeout: 120_000 },
  async (t) => {
    const dir = await meshDirs(t);
    const echo = net.createServer((s) => {
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    await new Promise<void>((resolve) => echo.listen(0, ECHO_APP, resolve));
    t.after(() => echo.close());
    const port = (echo.address() as net.AddressInfo).port;
    writeFileSync(join(dir.configDir, 'mesh.yaml'), mesh(port));
    const control = await startControlPlane(dir.configDir, dir.caDir);
    t.after(() => control.stop());
    const server = await startSidecar(control, {
      namespace: 'foo',
      name: 'echo',
      instanceIp: ECHO_INSTANCE,
      appIp: ECHO_APP,
      dir: dir.path,
      metadata: { PROXY_TYPE: 'sidecar' },
    });
    t.after(() => server.stop());
    const client = await startSidecar(control, {
      namespace: 'bar',
      name: 'sleep',
      instanceIp: SLEEP_INSTANCE,
      appIp: SLEEP_APP,
      dir: dir.path,
      metadata: { PROXY_TYPE: 'sidecar' },
    });
    t.after(() => client.stop());
    const logs = (): string => `--- echo\n${server.output()}\n--- sleep\n${client.output()}`;

    // Both sidecars have their certificates and config once a round trip works.
    await waitFor(async () => {
      const r = await viaSleep(client.outbound, port, 'ping\n').catch(() => '');
      return r === 'ping\n' ? r : undefined;
    }, 30_000).catch((error: unknown) => {
      throw new Error(`no echo through the sidecars: ${String(error)}\n${logs()}`);
    });
    const big = 'x'.repeat(10_000);
    assert.equal(await viaSleep(client.outbound, port, big), big);

    // Destination reporter (echo's sidecar): the client's workload from the exchange, mTLS.
    const opened = await waitFor(async () => {
      const lines = await tcpSeries(server.admin, 'istio_tcp_connections_closed_total');
      return lines.find((l) => l.includes('source_workload="sleep"'));
    }, 10_000).catch((error: unknown) => {
      throw new Error(`no destination TCP series: ${String(error)}\n${logs()}`);
    });
    for (const label of [
      'reporter="destination"',
      'source_workload="sleep"',
      'source_workload_namespace="bar"',
      'source_principal="spiffe://cluster.local/ns/bar/sa/sleep"',
      'destination_workload="echo"',
      'destination_service="echo.foo.svc.cluster.local"',
      'request_protocol="tcp"',
      'connection_security_policy="mutual_tls"',
    ])
      assert.ok(opened?.includes(label), `${label} in ${String(opened)}`);
    const received = (await tcpSeries(server.admin, 'istio_tcp_received_bytes_total')).find((l) =>
      l.includes('source_workload="sleep"'),
    );
    // The app bytes only (the preambles are not counted): at least the two payloads.
    assert.ok(valueOf(received) >= big.length + 5, String(received));

    // Source reporter (sleep's sidecar): the server's workload from the exchange.
    const sourceLine = await waitFor(async () => {
      const lines = await tcpSeries(client.admin, 'istio_tcp_connections_opened_total');
      return lines.find((l) => l.includes('destination_workload="echo"'));
    }, 10_000).catch((error: unknown) => {
      throw new Error(`no source TCP series: ${String(error)}\n${logs()}`);
    });
    for (const label of [
      'reporter="source"',
      'source_workload="sleep"',
      'destination_workload="echo"',
      'destination_workload_namespace="foo"',
      'destination_principal="spiffe://cluster.local/ns/foo/sa/echo"',
      'destination_service="echo.foo.svc.cluster.local"',
      'request_protocol="tcp"',
    ])
      assert.ok(sourceLine?.includes(label), `${label} in ${String(sourceLine)}`);
    assert.ok(valueOf(sourceLine) >= 2, String(sourceLine));
    const sent = (await tcpSeries(client.admin, 'istio_tcp_sent_bytes_total')).find((l) =>
      l.includes('destination_workload="echo"'),
    );
    assert.ok(valueOf(sent) >= big.length + 5, String(sent));

    // Hostile mesh peers: a valid mesh certificate, the ALPN, then a bad preamble.
    const issued = await runPalisade([
      'ca',
      'issue',
      '--dir',
      dir.caDir,
      '--spiffe-id',
      'spiffe://cluster.local/ns/bar/sa/mallory',
      '--out',
      join(dir.path, 'mallory'),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
    const hostile = async (preamble: Buffer | undefined): Promise<string> => {
      const socket = tls.connect({
        host: ECHO_INSTANCE,
        port,
        ca: readFileSync(join(dir.caDir, 'root-cert.pem')),
        cert: readFileSync(join(dir.path, 'mallory-cert.pem')),
        key: readFileSync(join(dir.path, 'mallory-key.pem')),
        checkServerIdentity: () => undefined,
        ALPNProtocols: ['istio-peer-exchange'],
      });
      socket.on('error', () => socket.destroy());
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      assert.equal(socket.alpnProtocol, 'istio-peer-exchange');
      if (preamble !== undefined) socket.write(preamble);
      socket.write('app bytes\n');
      // The proxy's own preamble (8 + payload bytes) may arrive; the echo must not.
      const got = await readBytes(socket, 1 << 20);
      return got;
    };
    const magic = Buffer.from([0x3d, 0x23, 0x04, 0x67]);
    const oversized = Buffer.concat([magic, Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    const garbage = Buffer.from('GARBAGE!GARBAGE!');
    const silent = hostile(undefined);
    const results = await Promise.all([hostile(garbage), hostile(oversized)]);
    // While the silent peer is still pending, other connections go through.
    assert.equal(await viaSleep(client.outbound, port, 'during\n'), 'during\n');
    results.push(await silent);
    for (const got of results) assert.ok(!got.includes('app bytes'), got);
    // Still up: other connections unaffected, admin answers.
    assert.equal(await viaSleep(client.outbound, port, 'again\n'), 'again\n');
    assert.equal((await fetch(`http://127.0.0.1:${String(server.admin)}/ready`)).status, 200);

    // Plaintext client on the PERMISSIVE port: echoed, reported as unknown without mTLS.
    const plain = net.connect(port, ECHO_INSTANCE);
    plain.write('plain\n');
    assert.equal(await readBytes(plain, 6), 'plain\n');
    plain.destroy();
    const unknown = await waitFor(async () => {
      const lines = await tcpSeries(server.admin, 'istio_tcp_connections_closed_total');
      return lines.find(
        (l) => l.includes('source_workload="unknown"') && l.includes('reporter="destination"'),
      );
    }, 10_000);
    assert.ok(unknown !== undefined);
    assert.ok(unknown.includes('connection_security_policy="none"'), unknown);
  },
);
