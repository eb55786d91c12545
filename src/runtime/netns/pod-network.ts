/**
 * The "node network" of `palisade up --isolation netns`: one Linux bridge per
 * mesh (the node), and per pod (workload replica or gateway) a network
 * namespace with a veth pair whose host end is on the bridge, a pod IP from
 * the pod CIDR and a default route via the bridge's host address — the
 * layout of a Kubernetes node with the bridge CNI plugin
 * (github.com/containernetworking/plugins, plugins/main/bridge).
 *
 * Names: netns `pal-<tag>-<pod>`, bridge `pal<tag>br`, host veths
 * `pal<tag>v<n>` (interface names are at most 15 bytes, IFNAMSIZ − 1); the
 * tag is derived from the state directory, so two meshes never share names.
 *
 * Everything created is recorded in `<state>/isolation.json` before it is
 * created, with the PID of `palisade up`; a later `up` on the same state
 * directory whose recorded PID is gone removes what the dead one left
 * (processes in its namespaces, the namespaces, veths, bridge and
 * /etc/netns/<netns> directories).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import { cidrHost, parseCidr } from './cidr.js';

/** How `palisade up` isolates workloads. */
export type IsolationMode = 'netns' | 'loopback';

/** One pod: its network namespace, address and host-side veth. */
export interface Pod {
  readonly name: string;
  readonly netns: string;
  readonly podIP: string;
  readonly hostVeth: string;
}

/** What isolation.json holds. */
export interface IsolationRecord {
  pid: number;
  stateDir: string;
  bridge: string;
  hostIp: string;
  podCidr: string;
  netns: string[];
  veths: string[];
  /** PIDs of processes `up` started outside pod namespaces (the control plane). */
  hostPids: number[];
  /** Files shared with the proxy user (its token, the root certificate): /run/palisade/<tag>. */
  shareDir: string;
}

function ip(args: readonly string[], what: string): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.error !== undefined || r.status !== 0)
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ISOLATION',
      `${what}: ip ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`,
    );
  return r.stdout;
}

function tryIp(args: readonly string[]): boolean {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0;
}

/** The short tag naming a mesh's bridge, veths and namespaces. */
export function meshTag(stateDir: string): string {
  return createHash('sha256').update(stateDir).digest('hex').slice(0, 5);
}

/**
 * Chooses the isolation for `--isolation auto|netns|loopback`, with the reason
 * printed at start. `netns` when it cannot work throws PAL_ERR_RUNTIME_ISOLATION.
 */
export function chooseIsolation(requested: string): { mode: IsolationMode; reason: string } {
  if (requested === 'loopback') return { mode: 'loopback', reason: '--isolation loopback' };
  if (requested !== 'netns' && requested !== 'auto')
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--isolation: ${requested} is not one of netns, loopback, auto`,
    );
  const problem = netnsProblem();
  if (problem === undefined)
    return {
      mode: 'netns',
      reason:
        requested === 'netns' ? '--isolation netns' : 'auto: running as root and `ip netns` works',
    };
  if (requested === 'netns')
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ISOLATION',
      `--isolation netns is not available: ${problem}`,
    );
  return { mode: 'loopback', reason: `auto: ${problem}` };
}

/** Why network namespaces cannot be used here (undefined: they can). */
export function netnsProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of ['ip', 'iptables-restore', 'iptables-save', 'setpriv']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (r.status !== 0) return `\`${tool}\` is not installed`;
  }
  // A real probe: create and delete a namespace.
  const probe = `pal-probe-${String(process.pid)}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `\`ip netns add\` failed: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Kills every process in a namespace (SIGKILL; bounded). */
function killNetnsProcesses(netns: string): void {
  for (let i = 0; i < 20; i++) {
    const r = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' });
    if (r.status !== 0) return;
    const pids = r.stdout
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
    if (pids.length === 0) return;
    for (const pid of pids.filter((p) => p !== process.pid))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    spawnSync('sleep', ['0.05']);
  }
}

/** Removes everything a record names (idempotent: what is already gone is skipped). */
export function teardownRecord(record: IsolationRecord): void {
  for (const pid of record.hostPids)
    // Only a process whose command line names this mesh's state directory: a reused PID is left
    // alone. PIDs wrap (pid_max is often 32768), so a dead control plane's PID can come back as
    // this very `up` (whose command line names the state directory too): never signal ourselves.
    if (
      pid !== process.pid &&
      pid !== process.ppid &&
      processAlive(pid) &&
      cmdline(pid).includes(record.stateDir)
    )
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
  for (const ns of record.netns) {
    killNetnsProcesses(ns);
    // Deleting the namespace deletes its veth end, and with it the host end.
    tryIp(['netns', 'del', ns]);
    rmSync(join('/etc/netns', ns), { recursive: true, force: true });
  }
  for (const veth of record.veths) tryIp(['link', 'del', veth]);
  if (record.bridge !== '') tryIp(['link', 'del', record.bridge]);
  if (record.shareDir.startsWith('/run/palisade/'))
    rmSync(record.shareDir, { recursive: true, force: true });
}

/**
 * Removes the leftovers of a dead `up` on this state directory. Throws when the
 * recorded `up` is still running (two meshes on one state directory).
 */
export function cleanLeftovers(stateDir: string): IsolationRecord | undefined {
  const file = join(stateDir, 'isolation.json');
  if (!existsSync(file)) return undefined;
  let record: IsolationRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as IsolationRecord;
  } catch {
    rmSync(file, { force: true });
    return undefined;
  }
  // A live PID whose command line is `palisade up` (a reused PID of something else is not).
  if (
    record.pid !== process.pid &&
    processAlive(record.pid) &&
    /(main\.js|palisade) up( |$)/.test(cmdline(record.pid))
  )
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ISOLATION',
      `a mesh on ${stateDir} is still running (palisade up, PID ${String(record.pid)}): stop it first`,
    );
  teardownRecord(record);
  rmSync(file, { force: true });
  return record;
}

/** Options of {@link createNodeNetwork}. */
export interface NodeNetworkOptions {
  readonly stateDir: string;
  /** Pod CIDR (IPv4, /16–/28): the first address is the bridge's, pods get the next ones. */
  readonly podCidr: string;
}

/** A mesh's bridge and pods. */
export interface NodeNetwork {
  readonly bridge: string;
  /** The host's address on the bridge: pods reach the control plane here. */
  readonly hostIp: string;
  readonly prefix: number;
  readonly record: IsolationRecord;
  /** Creates a pod namespace with its veth and address; `hosts(podIP)` is written to /etc/netns/<netns>/hosts. */
  addPod(name: string, hosts: (podIP: string) => string): Pod;
  /** Records a host-side PID (killed by a later `up` if this one dies). */
  recordHostPid(pid: number): void;
  /** Removes everything (and the record). */
  teardown(): void;
}

/** Creates the bridge of a mesh (after removing a dead mesh's leftovers). */
export function createNodeNetwork(options: NodeNetworkOptions): NodeNetwork {
  const { stateDir } = options;
  cleanLeftovers(stateDir);
  const cidr = parseCidr(options.podCidr, '--pod-cidr');
  if (cidr.prefix < 16 || cidr.prefix > 28)
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--pod-cidr: ${options.podCidr} must be between /16 and /28`,
    );
  const routed = ip(['-4', 'route', 'show', 'match', cidrHost(cidr, 1)], 'checking the pod CIDR')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('default'));
  if (routed.length > 0)
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ISOLATION',
      `--pod-cidr ${options.podCidr} overlaps a network this host already routes (${routed[0]?.trim() ?? ''}): choose another with --pod-cidr`,
    );
  const tag = meshTag(stateDir);
  const bridge = `pal${tag}br`;
  const hostIp = cidrHost(cidr, 1);
  const file = join(stateDir, 'isolation.json');
  const record: IsolationRecord = {
    pid: process.pid,
    stateDir,
    bridge,
    hostIp,
    podCidr: options.podCidr,
    netns: [],
    veths: [],
    hostPids: [],
    shareDir: join('/run/palisade', tag),
  };
  const save = (): void => {
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  };
  save();
  // A crash of `up` (an exception, process.exit) still removes the pods; SIGKILL leaves them to the next `up`.
  const onExit = (): void => {
    teardownRecord(record);
    rmSync(file, { force: true });
  };
  process.once('exit', onExit);
  ip(['link', 'add', bridge, 'type', 'bridge'], 'creating the bridge');
  ip(['addr', 'add', `${hostIp}/${String(cidr.prefix)}`, 'dev', bridge], 'addressing the bridge');
  ip(['link', 'set', bridge, 'up'], 'bringing up the bridge');
  let next = 2;
  return {
    bridge,
    hostIp,
    prefix: cidr.prefix,
    record,
    addPod(name, hosts) {
      const index = next;
      next += 1;
      if (index >= cidr.size - 1)
        throw new PalisadeError(
          'PAL_ERR_RUNTIME_ADDRESS_SPACE',
          `--pod-cidr ${options.podCidr} has no address left for ${name}`,
        );
      const netns = `pal-${tag}-${name}`;
      const hostVeth = `pal${tag}v${String(index)}`;
      const podIP = cidrHost(cidr, index);
      record.netns.push(netns);
      record.veths.push(hostVeth);
      save();
      // ip netns exec bind-mounts /etc/netns/<netns>/hosts over /etc/hosts (ip-netns(8)).
      mkdirSync(join('/etc/netns', netns), { recursive: true });
      writeFileSync(join('/etc/netns', netns, 'hosts'), hosts(podIP));
      ip(['netns', 'add', netns], `creating the namespace of ${name}`);
      ip(
        ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns],
        `creating the veth of ${name}`,
      );
      ip(['link', 'set', hostVeth, 'master', bridge, 'up'], `attaching ${name} to the bridge`);
      ip(['-n', netns, 'link', 'set', 'lo', 'up'], `bringing up lo in ${name}`);
      ip(
        ['-n', netns, 'addr', 'add', `${podIP}/${String(cidr.prefix)}`, 'dev', 'eth0'],
        `addressing ${name}`,
      );
      ip(['-n', netns, 'link', 'set', 'eth0', 'up'], `bringing up eth0 in ${name}`);
      ip(['-n', netns, 'route', 'add', 'default', 'via', hostIp], `routing ${name}`);
      return { name, netns, podIP, hostVeth };
    },
    recordHostPid(pid) {
      record.hostPids.push(pid);
      save();
    },
    teardown() {
      process.removeListener('exit', onExit);
      onExit();
    },
  };
}

/** Runs `argv` in a namespace (root); throws PAL_ERR_RUNTIME_ISOLATION with its stderr. */
export function netnsExec(netns: string, argv: readonly string[], what: string): string {
  return ip(['netns', 'exec', netns, ...argv], what);
}
