// Transparent capture over real network namespaces: two "pods" (client and
// server) and an "outside" namespace on a test-made bridge; each pod's
// iptables REDIRECTs its TCP to its sidecar (15001 out, 15006 in; the sidecar,
// running as UID 1337, is excluded — istio-iptables' rules, written here).
// Apps have no proxy settings: curl and Node sockets dial a service VIP or a
// pod IP and the client's sidecar mTLS's the connection to the server's
// sidecar, which sees the client's SPIFFE ID (XFCC, metrics). TCP echo and a
// server-first protocol pass through capture; an unknown destination goes to
// PassthroughCluster, and to BlackHoleCluster once a Sidecar says
// REGISTRY_ONLY; a plaintext client outside the mesh cannot reach the app.
// An egress NetworkPolicy on the client is enforced by its own sidecar
// (denied connections reset before any upstream), ingress by the server's.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, REPO_ROOT, runPalisade, runProcess, waitFor } from '../helpers/index.js';
import { meshDirs } from '../helpers/mesh-processes.js';
import { bookinfoLock, findTool } from '../helpers/tools.js';

const BRIDGE = 'n19b-br';
const HOST_IP = '10.234.0.1';
const PODS = { c: '10.234.0.2', s: '10.234.0.3', x: '10.234.0.4' } as const;
const VIP = '10.96.0.10';
const PROXY_UID = '1337';
const RESOLV_DIR = '/etc/netns/n19b-c';

const MESH = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: ${VIP}
  selector: { app: web }
  ports: [{ name: http, port: 9080 }, { name: tcp-echo, port: 9000 }, { name: mysql, port: 3306 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: default }
spec:
  serviceAccount: web
  labels: { app: web }
  command: node
  ports: [{ name: http, port: 9080 }, { name: tcp-echo, port: 9000 }, { name: mysql, port: 3306 }]
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: sleep, namespace: default }
spec:
  serviceAccount: sleep
  labels: { app: sleep }
  command: node
  ports: [{ name: http, port: 8000 }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`;

const REGISTRY_ONLY = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`;

const EGRESS_POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: sleep-egress, namespace: default }
spec:
  podSelector: { matchLabels: { app: sleep } }
  policyTypes: [Egress]
  egress:
    - to: [{ podSelector: { matchLabels: { app: web } } }]
      ports: [{ port: 9080 }]
    - to: [{ ipBlock: { cidr: 10.234.0.0/24, except: [${PODS.s}/32] } }]
      ports: [{ port: 7000, endPort: 7001 }]
`;

const INGRESS_DENY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-deny-ingress, namespace: default }
spec:
  podSelector: { matchLabels: { app: web } }
  policyTypes: [Ingress]
`;

/** The server pod's apps: HTTP that echoes XFCC, TCP echo, and a server-first greeting. */
const SERVER_APPS = `
const http = require('node:http'), net = require('node:net');
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, host: req.headers.host, xfcc: req.headers['x-forwarded-client-cert'] ?? null }));
}).listen(9080, '0.0.0.0');
net.createServer((s) => s.pipe(s)).listen(9000, '0.0.0.0');
net.createServer((s) => { s.write('HELLO mysql-like\\n'); s.on('data', (d) => s.write(d)); }).listen(3306, '0.0.0.0');
console.log('apps ready');
`;

/** An outside server (no sidecar): greets, for Passthrough; and a DNS server for `*.upstream.test`. */
const OUTSIDE_APP = `
const dnsPacket = require('dns-packet');
const udp = require('node:dgram').createSocket('udp4');
udp.on('message', (m, r) => {
  let q; try { q = dnsPacket.decode(m); } catch { return; }
  const name = q.questions?.[0]?.name ?? '';
  const ok = name.endsWith('.upstream.test') && q.questions[0].type === 'A';
  udp.send(dnsPacket.encode({ type: 'response', id: q.id, flags: name.endsWith('.upstream.test') ? 0 : 3,
    questions: q.questions, answers: ok ? [{ type: 'A', name, ttl: 5, data: '${PODS.x}' }] : [] }), r.port, r.address);
});
udp.bind(53, '0.0.0.0', () => {
  require('node:net').createServer((s) => { s.end('EXTERNAL\\n'); }).listen(7000, '0.0.0.0', () => console.log('apps ready'));
});
`;

/** Junk at the DNS proxy: no header, a bad name, a truncated and an oversized query. */
const DNS_JUNK = `
const udp = require('node:dgram').createSocket('udp4');
const q = require('dns-packet').encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'web' }] });
const junk = [Buffer.from([1]), Buffer.concat([q.subarray(0, 12), Buffer.alloc(40, 0xff)]), q.subarray(0, 15), Buffer.concat([q, Buffer.alloc(9000)])];
let n = 0;
for (const j of junk) udp.send(j, 15053, '127.0.0.1', () => { if (++n === junk.length) setTimeout(() => { udp.close(); console.log('sent'); }, 200); });
`;

/** A client that connects, optionally writes, and prints what came back and after how long. */
const TCP_CLIENT = `
const [host, port, send] = process.argv.slice(1);
const net = require('node:net');
const t0 = performance.now();
const s = net.connect(Number(port), host);
let got = '';
s.on('connect', () => { if (send) s.write(send); });
s.on('data', (d) => { got += d; if (got.includes('\\n')) { console.log(JSON.stringify({ got, ms: performance.now() - t0 })); s.destroy(); } });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code ?? e.message, got })); });
s.on('close', () => { if (!got.includes('\\n')) console.log(JSON.stringify({ closed: true, got })); });
setTimeout(() => { console.log(JSON.stringify({ timeout: true, got })); process.exit(0); }, 4000).unref();
`;

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await runProcess(cmd, args, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `ip netns exec NS CMD…` */
function inNs(ns: string, cmd: string, args: string[], timeoutMs = 15_000) {
  return runProcess('ip', ['netns', 'exec', `n19b-${ns}`, cmd, ...args], { timeoutMs });
}

/** A long-running process, resolved once its stdout matches `ready`. */
async function spawnReady(
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  const child = spawn(args[0] ?? '', args.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, PALISADE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let match: RegExpMatchArray;
  try {
    match = (await waitFor(() => ready.exec(out) ?? undefined, 120_000, 100)) as RegExpMatchArray;
  } catch {
    child.kill('SIGKILL');
    throw new Error(`${args.join(' ')} not ready:\n${out}`);
  }
  return { child, match, output: () => out };
}

/** istio-iptables' nat rules (REDIRECT mode), as `iptables-restore` input. */
function captureRules(): string {
  return [
    '*nat',
    ':N19B_INBOUND - [0:0]',
    ':N19B_OUTPUT - [0:0]',
    ':N19B_DNS - [0:0]',
    '-A PREROUTING -p tcp -j N19B_INBOUND',
    '-A N19B_INBOUND -p tcp -j REDIRECT --to-ports 15006',
    '-A OUTPUT -p tcp -j N19B_OUTPUT',
    `-A N19B_OUTPUT -m owner --uid-owner ${PROXY_UID} -j RETURN`,
    // DNS capture (--redirect-dns): TCP and UDP 53 to the DNS proxy, except the proxy's own.
    '-A N19B_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 15053',
    '-A N19B_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A N19B_OUTPUT -p tcp -j REDIRECT --to-ports 15001',
    '-A OUTPUT -p udp --dport 53 -j N19B_DNS',
    `-A N19B_DNS -m owner --uid-owner ${PROXY_UID} -j RETURN`,
    '-A N19B_DNS -p udp -j REDIRECT --to-ports 15053',
    'COMMIT',
    '',
  ].join('\n');
}

async function teardown(): Promise<void> {
  rmSync(RESOLV_DIR, { recursive: true, force: true });
  for (const ns of Object.keys(PODS))
    await runProcess('ip', ['netns', 'del', `n19b-${ns}`], { timeoutMs: 10_000 });
  await runProcess('ip', ['link', 'del', BRIDGE], { timeoutMs: 10_000 });
}

async function setupNetwork(): Promise<void> {
  await teardown(); // leftovers of an interrupted run
  await sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', BRIDGE]);
  await sh('ip', ['link', 'set', BRIDGE, 'up']);
  for (const [ns, ip] of Object.entries(PODS)) {
    const name = `n19b-${ns}`;
    await sh('ip', ['netns', 'add', name]);
    await sh('ip', ['link', 'add', `${name}h`, 'type', 'veth', 'peer', 'name', `${name}p`]);
    await sh('ip', ['link', 'set', `${name}p`, 'netns', name]);
    await sh('ip', ['link', 'set', `${name}h`, 'master', BRIDGE, 'up']);
    const run = (...a: string[]) => sh('ip', ['netns', 'exec', name, ...a]);
    await run('ip', 'addr', 'add', `${ip}/24`, 'dev', `${name}p`);
    await run('ip', 'link', 'set', `${name}p`, 'up');
    await run('ip', 'link', 'set', 'lo', 'up');
    // VIPs are routed out like any address (iptables rewrites them in OUTPUT).
    await run('ip', 'route', 'add', 'default', 'via', HOST_IP);
  }
  // The client pod's resolver is the outside namespace's DNS server (`ip netns exec` bind-mounts
  // /etc/netns/<ns>/resolv.conf); its sidecar answers mesh names and forwards the rest there.
  mkdirSync(RESOLV_DIR, { recursive: true });
  writeFileSync(join(RESOLV_DIR, 'resolv.conf'), `nameserver ${PODS.x}\n`);
  for (const ns of ['c', 's']) {
    const r = await runProcess('ip', ['netns', 'exec', `n19b-${ns}`, 'iptables-restore'], {
      input: captureRules(),
      timeoutMs: 10_000,
    });
    assert.equal(r.code, 0, r.stderr);
  }
}

/** Lets UID 1337 read the test's files (token, CA root) as the sidecars run as that user. */
function openUp(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const e of readdirSync(path)) openUp(join(path, e));
}

const root = process.getuid?.() === 0;
const tools = ['ip', 'iptables-restore', 'setpriv', 'curl'].map((c) =>
  findTool(c, 'apt-get install iproute2 iptables util-linux curl'),
);
const skip = !root
  ? 'needs root (network namespaces, iptables)'
  : (tools.find((t) => t.skip !== false)?.skip ?? false);
if (!root) console.log('# skipped: needs root (network namespaces, iptables)');

test(
  'transparent capture in network namespaces: VIP/pod-IP HTTP mTLS, TCP, server-first, passthrough, REGISTRY_ONLY, no bypass',
  { skip },
  async (t) => {
    // The namespace, bridge and veth names are fixed (n19b-*): runs of this test from several
    // checkouts on one machine take turns (the lock is released after the teardown).
    const lock = await bookinfoLock('/tmp/palisade-capture-netns-test.lock');
    const dir = await meshDirs(t);
    writeFileSync(join(dir.configDir, 'mesh.yaml'), MESH);
    const children: ChildProcess[] = [];
    const outputs: (() => string)[] = [];
    const logs = (): string => outputs.map((o) => o().slice(-3000)).join('\n---\n');
    t.after(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await teardown();
      await lock.release();
    });
    await setupNetwork();

    const control = await spawnReady(
      [
        process.execPath,
        CLI,
        'control',
        '--config-dir',
        dir.configDir,
        '--ca-dir',
        dir.caDir,
        '--listen',
        `${HOST_IP}:0`,
      ],
      /xDS (\S+):(\d+), CA (https:\/\/\S+),/,
    );
    children.push(control.child);
    const xds = `${HOST_IP}:${control.match[2] ?? ''}`;
    const caUrl = control.match[3] ?? '';

    const sidecar = async (ns: 'c' | 's', name: string): Promise<ChildProcess> => {
      const token = await runPalisade([
        'ca',
        'token',
        '--dir',
        dir.caDir,
        '--namespace',
        'default',
        '--service-account',
        name,
      ]);
      assert.equal(token.code, 0, token.stderr);
      writeFileSync(join(dir.path, `${name}.token`), token.stdout.trim());
      openUp(dir.path);
      const ip = PODS[ns];
      const proc = await spawnReady(
        [
          'ip',
          'netns',
          'exec',
          `n19b-${ns}`,
          'setpriv',
          `--reuid=${PROXY_UID}`,
          `--regid=${PROXY_UID}`,
          '--clear-groups',
          process.execPath,
          CLI,
          'proxy',
          '--xds',
          xds,
          '--node-id',
          `sidecar~${ip}~${name}-0.default~default.svc.cluster.local`,
          '--metadata',
          JSON.stringify({
            NAMESPACE: 'default',
            SERVICE_ACCOUNT: name,
            WORKLOAD_NAME: name,
            APP_ADDRESS: ip,
          }),
          '--token-file',
          join(dir.path, `${name}.token`),
          '--ca-url',
          caUrl,
          '--ca-root-cert',
          join(dir.caDir, 'root-cert.pem'),
          '--interception',
          'redirect',
          '--access-log-file',
          '',
        ],
        /ready outbound=15001 admin=15000/,
      );
      children.push(proc.child);
      outputs.push(proc.output);
      return proc.child;
    };
    const apps = await spawnReady(
      ['ip', 'netns', 'exec', 'n19b-s', process.execPath, '-e', SERVER_APPS],
      /apps ready/,
    );
    children.push(apps.child);
    const outside = await spawnReady(
      ['ip', 'netns', 'exec', 'n19b-x', process.execPath, '-e', OUTSIDE_APP],
      /apps ready/,
    );
    children.push(outside.child);
    await sidecar('s', 'web');
    const sleepSidecar = await sidecar('c', 'sleep');

    const curlIn = (ns: string, args: string[]) =>
      inNs(ns, 'curl', ['-sS', '--max-time', '5', ...args]);
    // An unmodified client (no proxy settings) calls the service by name → VIP.
    let last = '';
    const byName = await waitFor(
      async () => {
        const r = await curlIn('c', ['--resolve', `web:9080:${VIP}`, 'http://web:9080/hello']);
        last = `${r.stdout}${r.stderr}`;
        return r.code === 0 && r.stdout.includes('"xfcc"') ? r : undefined;
      },
      30_000,
      300,
    ).catch((error: unknown) => {
      throw new Error(
        `no answer through capture (${String(error)}): ${last}\n--- sidecars:\n${logs()}`,
      );
    });
    const body = JSON.parse(byName?.stdout ?? '{}') as {
      path: string;
      host: string;
      xfcc: string | null;
    };
    assert.equal(body.path, '/hello');
    assert.match(
      body.xfcc ?? '',
      /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep/,
      'the server sidecar saw the client identity (mTLS on the wire)',
    );

    // The VIP itself as the Host, and a pod IP dialled directly: both captured, both mTLS.
    const vip = await curlIn('c', [`http://${VIP}:9080/vip`]);
    assert.match(vip.stdout, /sa\/sleep/, vip.stderr);
    const podIp = await curlIn('c', [`http://${PODS.s}:9080/pod`]);
    assert.match(podIp.stdout, /sa\/sleep/, `pod IP: ${podIp.stdout}${podIp.stderr}`);

    // TCP through capture, and a server-first protocol: its greeting arrives with no client bytes.
    const echo = await inNs('c', process.execPath, ['-e', TCP_CLIENT, VIP, '9000', 'ping\n']);
    assert.equal((JSON.parse(echo.stdout) as { got: string }).got, 'ping\n', echo.stdout);
    const greet = await inNs('c', process.execPath, ['-e', TCP_CLIENT, VIP, '3306', '']);
    const greeting = JSON.parse(greet.stdout) as { got: string; ms: number };
    assert.equal(greeting.got, 'HELLO mysql-like\n', greet.stdout);
    // A TCP port needs no protocol detection; even where detection runs it gives up after 100 ms.
    assert.ok(greeting.ms < 2_000, `server-first greeting after ${String(greeting.ms)} ms`);

    // An unknown destination: PassthroughCluster (ALLOW_ANY, the default).
    const pass = await inNs('c', process.execPath, ['-e', TCP_CLIENT, PODS.x, '7000', '']);
    assert.equal((JSON.parse(pass.stdout) as { got: string }).got, 'EXTERNAL\n', pass.stdout);

    // DNS proxy: the app resolves mesh names with no --resolve and no hosts entry (its queries
    // to the pod's nameserver are captured to the sidecar's DNS proxy, which answers the VIP).
    const byDns = await waitFor(
      async () => {
        const r = await curlIn('c', ['http://web:9080/dns']);
        return r.code === 0 && r.stdout.includes('"path":"/dns"') ? r : undefined;
      },
      15_000,
      300,
    ).catch((error: unknown) => {
      throw new Error(`web did not resolve through the DNS proxy (${String(error)})\n${logs()}`);
    });
    assert.match(byDns?.stdout ?? '', /sa\/sleep/);
    const fqdn = await curlIn('c', ['http://web.default.svc.cluster.local:9080/fqdn']);
    assert.match(fqdn.stdout, /"path":"\/fqdn"/, fqdn.stderr);
    // Node's fetch with no proxy settings, by name.
    const fetched = await inNs('c', process.execPath, [
      '-e',
      "fetch('http://web:9080/fetch').then((r) => r.text()).then((t) => console.log(t))",
    ]);
    assert.match(fetched.stdout, /"path":"\/fetch".*sa\/sleep/, fetched.stderr);
    // Other names go to the pod's own resolver (the outside namespace's DNS server).
    const external = await inNs('c', 'getent', ['ahostsv4', 'ext.upstream.test']);
    assert.match(external.stdout, /^10\.234\.0\.4\s/m, external.stderr);
    const missing = await inNs('c', 'getent', ['ahostsv4', 'nothing.invalid']);
    assert.notEqual(missing.code, 0, missing.stdout);
    // Junk at the DNS proxy: the sidecar survives and still answers.
    const junk = await inNs('c', process.execPath, ['-e', DNS_JUNK]);
    assert.match(junk.stdout, /sent/, junk.stderr);
    const again = await inNs('c', 'getent', ['ahostsv4', 'web']);
    assert.match(again.stdout, new RegExp(`^${VIP.replaceAll('.', '\\.')}\\s`, 'm'), again.stderr);
    assert.equal(sleepSidecar.exitCode, null, 'the sidecar is still running');
    assert.equal(sleepSidecar.signalCode, null);

    // No bypass: a plaintext client outside the mesh reaches no app on the pod IP (STRICT).
    const attacker = await curlIn('x', [`http://${PODS.s}:9080/admin`]);
    assert.notEqual(attacker.code, 0, `plaintext reached the app: ${attacker.stdout}`);
    assert.doesNotMatch(attacker.stdout, /"path"/);
    const rawTcp = await inNs('x', process.execPath, ['-e', TCP_CLIENT, PODS.s, '3306', '']);
    assert.doesNotMatch(
      rawTcp.stdout,
      /HELLO/,
      'the server-first app answered without its sidecar',
    );

    // The server's sidecar reports the requests as mutual_tls from sleep.
    const metrics = await inNs('s', 'curl', ['-sS', 'http://127.0.0.1:15000/stats/prometheus']);
    assert.match(
      metrics.stdout,
      /istio_requests_total\{[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep"[^}]*connection_security_policy="mutual_tls"|istio_requests_total\{[^}]*connection_security_policy="mutual_tls"[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep"/,
    );

    // TCP (the echo and the server-first greeting above): both reporters count the connections
    // and bytes, and the TCP peer-metadata exchange (ALPN istio-peer-exchange, over the mTLS
    // connection) names the peer workload on each side.
    const sample = (text: string, metric: string, labels: Record<string, string>): number[] =>
      text
        .split('\n')
        .filter(
          (line) =>
            line.startsWith(`${metric}{`) &&
            Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)),
        )
        .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
    const serverTcp = await waitFor(async () => {
      const r = await inNs('s', 'curl', ['-sS', 'http://127.0.0.1:15000/stats/prometheus']);
      const closed = sample(r.stdout, 'istio_tcp_connections_closed_total', {
        reporter: 'destination',
      });
      return closed.length > 0 ? r.stdout : undefined;
    }, 10_000);
    const destination = {
      reporter: 'destination',
      source_workload: 'sleep',
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
      destination_workload: 'web',
      connection_security_policy: 'mutual_tls',
      request_protocol: 'tcp',
    };
    assert.ok(
      (sample(serverTcp ?? '', 'istio_tcp_connections_opened_total', destination)[0] ?? 0) >= 2,
      `destination reporter, TCP opened:\n${(serverTcp ?? '')
        .split('\n')
        .filter((l) => l.startsWith('istio_tcp'))
        .join('\n')}`,
    );
    assert.ok(
      (sample(serverTcp ?? '', 'istio_tcp_received_bytes_total', destination)[0] ?? 0) >= 5,
      "the echo's 5 bytes were received from sleep",
    );
    const clientTcp = await inNs('c', 'curl', ['-sS', 'http://127.0.0.1:15000/stats/prometheus']);
    const source = {
      reporter: 'source',
      source_workload: 'sleep',
      destination_workload: 'web',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/web',
      request_protocol: 'tcp',
    };
    assert.ok(
      (sample(clientTcp.stdout, 'istio_tcp_connections_opened_total', source)[0] ?? 0) >= 2,
      `source reporter, TCP opened:\n${clientTcp.stdout
        .split('\n')
        .filter((l) => l.startsWith('istio_tcp'))
        .join('\n')}`,
    );
    assert.ok(
      (sample(clientTcp.stdout, 'istio_tcp_sent_bytes_total', source)[0] ?? 0) >= 5,
      'the echo came back to sleep',
    );

    // Egress NetworkPolicy at the source: sleep may reach web on 9080 only, and outside
    // addresses 10.234.0.0/24 on 7000-7001 except the server pod. A denied connection is reset
    // by sleep's sidecar before it dials anything; ingress stays enforced at web's sidecar.
    writeFileSync(join(dir.configDir, 'netpol.yaml'), EGRESS_POLICY);
    const reset = await waitFor(
      async () => {
        const r = await inNs('c', process.execPath, ['-e', TCP_CLIENT, VIP, '9000', 'ping\n']);
        return /ECONNRESET/.test(r.stdout) ? r : undefined;
      },
      15_000,
      300,
    ).catch((error: unknown) => {
      throw new Error(`egress to web:9000 never denied (${String(error)})\n${logs()}`);
    });
    assert.doesNotMatch(reset?.stdout ?? '', /ping/, 'no byte crossed');
    const allowed = await curlIn('c', ['--resolve', `web:9080:${VIP}`, 'http://web:9080/egress']);
    assert.match(allowed.stdout, /"path":"\/egress".*sa\/sleep/, allowed.stderr);
    // The pod IP is denied on 3306 too (the destination's pod, not only its VIP).
    const podDenied = await inNs('c', process.execPath, ['-e', TCP_CLIENT, PODS.s, '3306', '']);
    assert.match(podDenied.stdout, /ECONNRESET/, podDenied.stdout);
    assert.doesNotMatch(podDenied.stdout, /HELLO/);
    // curl to a denied destination: the connection is reset, no response.
    const curlDenied = await curlIn('c', [`http://${PODS.s}:9000/`]);
    // (56 when the reset follows the handshake, 7 when it races it: no response either way.)
    assert.ok([7, 56].includes(curlDenied.code ?? 0), `${curlDenied.stdout}${curlDenied.stderr}`);
    assert.equal(curlDenied.stdout, '');
    // ipBlock with endPort: the outside address on 7000 is allowed (passthrough).
    const block = await inNs('c', process.execPath, ['-e', TCP_CLIENT, PODS.x, '7000', '']);
    assert.match(block.stdout, /EXTERNAL/, block.stdout);
    // Ingress at the destination still holds: web now admits nobody on 9080.
    writeFileSync(join(dir.configDir, 'netpol-ingress.yaml'), INGRESS_DENY);
    await waitFor(
      async () => {
        const r = await curlIn('c', ['--resolve', `web:9080:${VIP}`, 'http://web:9080/in']);
        return r.stdout.includes('"path"') ? undefined : r;
      },
      15_000,
      300,
    );
    rmSync(join(dir.configDir, 'netpol.yaml'));
    rmSync(join(dir.configDir, 'netpol-ingress.yaml'));
    await waitFor(
      async () => {
        const r = await inNs('c', process.execPath, ['-e', TCP_CLIENT, VIP, '9000', 'ping\n']);
        return r.stdout.includes('"got":"ping\\n"') ? r : undefined;
      },
      15_000,
      300,
    );

    // REGISTRY_ONLY (a Sidecar): unknown destinations go to BlackHoleCluster, the mesh still works.
    writeFileSync(join(dir.configDir, 'sidecar.yaml'), REGISTRY_ONLY);
    await waitFor(
      async () => {
        const r = await inNs('c', process.execPath, ['-e', TCP_CLIENT, PODS.x, '7000', '']);
        return r.stdout.includes('EXTERNAL') ? undefined : r;
      },
      15_000,
      300,
    );
    const still = await curlIn('c', ['--resolve', `web:9080:${VIP}`, 'http://web:9080/after']);
    assert.match(still.stdout, /"path":"\/after"/, still.stderr);
  },
);
