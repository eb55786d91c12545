// `palisade proxy-init` in a network namespace this test creates (n19a-pi-<pid>,
// veth onto a bridge on 10.233.251.0/24): the rules iptables-save shows,
// idempotency, --clean restoring the table exactly (a foreign rule survives),
// and that the rules capture real connections: inbound TCP from the bridge to
// the inbound port, outbound TCP to the outbound port, the proxy UID's
// traffic not at all.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { runPalisade, runProcess } from '../helpers/index.js';
import { findTool } from '../helpers/tools.js';

const NS = `n19a-pi-${String(process.pid)}`;
const BRIDGE = `n19api${String(process.pid % 10000)}`;
const VETH = `n19apv${String(process.pid % 10000)}`;
const HOST_IP = '10.233.251.1';
const POD_IP = '10.233.251.2';

const ipTool = findTool('ip', 'apt-get install iproute2');
const iptables = findTool('iptables-save', 'apt-get install iptables');
// CI runs as root; elsewhere a non-root run skips (network namespaces need CAP_SYS_ADMIN).
const notRoot =
  process.getuid?.() !== 0 && process.env['CI'] !== 'true'
    ? 'needs root (network namespaces)'
    : false;
if (notRoot !== false) console.log(`# skipped: ${notRoot}`);
const skip = ipTool.skip || iptables.skip || notRoot;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** iptables-save of the nat table without its comment and counter lines. */
function nat(): string {
  return sh('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat'])
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/, '[0:0]'))
    .join('\n');
}

// A listener inside the pod that reports what each connection was addressed to.
const LISTENERS = `
const net = require('node:net');
for (const port of [15001, 15006]) net.createServer((s) => { s.end('port=' + port + '\\n'); }).listen(port, '0.0.0.0');
setTimeout(() => process.exit(0), 30000);
console.log('listening');`;

// Connects to host:port and prints what the listener answered (or the error code).
const CLIENT = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
let out = ''; s.on('data', (d) => { out += d; }); s.on('end', () => { console.log(out.trim()); });
s.on('error', (e) => { console.log(e.code); }); s.setTimeout(3000, () => { console.log('timeout'); s.destroy(); });`;

test(
  'proxy-init installs, repeats and cleans Istio-style capture rules in a pod namespace',
  { skip, timeout: 300_000 },
  async (t) => {
    sh('ip', ['netns', 'add', NS]);
    t.after(() => {
      spawnSync('ip', ['netns', 'del', NS]);
      spawnSync('ip', ['link', 'del', BRIDGE]);
    });
    sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', BRIDGE]);
    sh('ip', ['link', 'set', BRIDGE, 'up']);
    sh('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
    sh('ip', ['link', 'set', VETH, 'master', BRIDGE, 'up']);
    sh('ip', ['-n', NS, 'addr', 'add', `${POD_IP}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', NS, 'route', 'add', 'default', 'via', HOST_IP]);
    // A rule that is not ours: --clean must leave it.
    sh('ip', [
      'netns',
      'exec',
      NS,
      'iptables',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--dport',
      '2222',
      '-j',
      'RETURN',
    ]);
    const before = nat();

    const dry = await runPalisade([
      'proxy-init',
      '--dry-run',
      '-x',
      '10.233.252.0/24',
      '-o',
      '5432',
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(nat(), before, '--dry-run changes nothing');

    const install = await runPalisade([
      'proxy-init',
      '--netns',
      NS,
      '-x',
      '10.233.252.0/24',
      '-o',
      '5432',
    ]);
    assert.equal(install.code, 0, install.stderr);
    const installed = nat();
    for (const rule of [
      ':PALISADE_INBOUND - [0:0]',
      ':PALISADE_IN_REDIRECT - [0:0]',
      ':PALISADE_OUTPUT - [0:0]',
      ':PALISADE_REDIRECT - [0:0]',
      '-A PREROUTING -p tcp -j PALISADE_INBOUND',
      '-A OUTPUT -p tcp -j PALISADE_OUTPUT',
      '-A PALISADE_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
      '-A PALISADE_INBOUND -p tcp -m tcp --dport 15090 -j RETURN',
      '-A PALISADE_INBOUND -p tcp -m tcp --dport 15021 -j RETURN',
      '-A PALISADE_INBOUND -p tcp -m tcp --dport 15020 -j RETURN',
      '-A PALISADE_INBOUND -p tcp -j PALISADE_IN_REDIRECT',
      '-A PALISADE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A PALISADE_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
      '-A PALISADE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
      '-A PALISADE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j PALISADE_IN_REDIRECT',
      '-A PALISADE_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A PALISADE_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A PALISADE_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j PALISADE_IN_REDIRECT',
      '-A PALISADE_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A PALISADE_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A PALISADE_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A PALISADE_OUTPUT -d 10.233.252.0/24 -j RETURN',
      '-A PALISADE_OUTPUT -j PALISADE_REDIRECT',
      '-A PALISADE_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    ])
      assert.ok(installed.split('\n').includes(rule), `iptables-save shows ${rule}\n${installed}`);
    // Every rule the dry run printed is what got installed.
    for (const line of dry.stdout.split('\n').filter((l) => l.startsWith('-A ')))
      assert.ok(installed.split('\n').includes(line), `dry-run line installed: ${line}`);

    const again = await runPalisade([
      'proxy-init',
      '--netns',
      NS,
      '-x',
      '10.233.252.0/24',
      '-o',
      '5432',
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(nat(), installed, 'a second install leaves one copy of each rule');

    // The rules capture real connections.
    const listeners = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', LISTENERS], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => listeners.kill('SIGKILL'));
    await new Promise<void>((resolve) => {
      listeners.stdout.once('data', () => {
        resolve();
      });
    });
    const client = (host: string, port: number, uid?: number): Promise<{ stdout: string }> => {
      const asUid =
        uid === undefined
          ? []
          : ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups'];
      return runProcess(
        'ip',
        ['netns', 'exec', NS, ...asUid, process.execPath, '-e', CLIENT, host, String(port)],
        { timeoutMs: 10_000 },
      );
    };
    // From the host (the "node"), to the pod's 9080: inbound capture.
    const fromHost = await runProcess(process.execPath, ['-e', CLIENT, POD_IP, '9080'], {
      timeoutMs: 10_000,
    });
    assert.equal(fromHost.stdout.trim(), 'port=15006', 'inbound TCP goes to the inbound port');
    // From an app in the pod to another address: outbound capture.
    assert.equal((await client('10.233.251.77', 80)).stdout.trim(), 'port=15001');
    // The proxy's own traffic (UID 1337) is not captured: nothing listens there.
    assert.notEqual((await client('10.233.251.77', 80, 1337)).stdout.trim(), 'port=15001');
    // Excluded CIDR and port: not captured.
    assert.notEqual((await client('10.233.252.9', 80)).stdout.trim(), 'port=15001');
    assert.notEqual((await client('10.233.251.77', 5432)).stdout.trim(), 'port=15001');
    listeners.kill('SIGKILL');

    const clean = await runPalisade(['proxy-init', '--netns', NS, '--clean']);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(nat(), before, '--clean restores the table as it was (the foreign rule stays)');
    const cleanAgain = await runPalisade(['proxy-init', '--netns', NS, '--clean']);
    assert.equal(cleanAgain.code, 0, cleanAgain.stderr);
    assert.match(cleanAgain.stdout, /nothing to clean/);
  },
);

test(
  'proxy-init --dry-run prints the DNS capture and refuses TPROXY',
  { timeout: 180_000 },
  async () => {
    const dry = await runPalisade(['proxy-init', '--dry-run', '--redirect-dns']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^-A OUTPUT -p udp -m udp --dport 53 -j PALISADE_DNS$/m);
    assert.match(
      dry.stdout,
      /^-A PALISADE_DNS ! -d 127\.0\.0\.1\/32 -p udp -j REDIRECT --to-ports 15053$/m,
    );
    assert.match(dry.stdout, /--dport 53 -j REDIRECT --to-ports 15053$/m);
    const tproxy = await runPalisade(['proxy-init', '--dry-run', '-m', 'TPROXY']);
    assert.equal(tproxy.code, 2);
    assert.match(tproxy.stderr, /TPROXY mode is not implemented/);
    const bad = await runPalisade(['proxy-init', '--dry-run', '-x', '10.0.0.0/33']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /-x\/--exclude-cidrs: 10\.0\.0\.0\/33 is not an IPv4 CIDR/);
  },
);
