/**
 * Real etcd clusters for tests (Debian's etcd-server): members on loopback
 * ports the test picks, started together, killed with SIGKILL on stop; and
 * which member leads, from `etcdctl endpoint status` (etcd-client).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { freePort, runProcess } from '../helpers/index.js';

const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
export const etcdBin = which.status === 0 ? which.stdout.trim() : undefined;
if (etcdBin === undefined) {
  if (process.env.CI === 'true')
    throw new Error('etcd is required in CI (apt-get install etcd-server)');
  console.log('# etcd-store: skipped, no `etcd` binary (apt-get install etcd-server)');
}

export interface Member {
  readonly name: string;
  readonly client: string;
  readonly peer: string;
  child?: ChildProcess;
}

export async function members(hosts: readonly string[]): Promise<Member[]> {
  return Promise.all(
    hosts.map(async (h, i) => ({
      name: `m${i}`,
      client: `http://${h}:${String(await freePort(h))}`,
      peer: `http://${h}:${String(await freePort(h))}`,
    })),
  );
}

/** Starts every member and resolves once each says it serves clients. */
export async function startCluster(list: Member[], dataDir: string): Promise<void> {
  const initial = list.map((m) => `${m.name}=${m.peer}`).join(',');
  const token = randomUUID();
  await Promise.all(
    list.map(
      (m) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(
            etcdBin ?? 'etcd',
            [
              '--name',
              m.name,
              '--data-dir',
              `${dataDir}/${m.name}`,
              '--listen-client-urls',
              m.client,
              '--advertise-client-urls',
              m.client,
              '--listen-peer-urls',
              m.peer,
              '--initial-advertise-peer-urls',
              m.peer,
              '--initial-cluster',
              initial,
              '--initial-cluster-token',
              token,
              '--initial-cluster-state',
              'new',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          m.child = child;
          let log = '';
          const timer = setTimeout(() => {
            reject(new Error(`etcd ${m.name} not ready:\n${log}`));
          }, 30_000);
          const onData = (d: Buffer): void => {
            log += d.toString();
            if (/ready to serve client requests/.test(log)) {
              clearTimeout(timer);
              resolve();
            }
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`etcd ${m.name} exited ${String(code)}:\n${log}`));
          });
        }),
    ),
  );
}

export function stopCluster(list: readonly Member[]): void {
  for (const m of list) {
    m.child?.removeAllListeners('exit');
    m.child?.kill('SIGKILL');
  }
}

const etcdctlWhich = spawnSync('sh', ['-c', 'command -v etcdctl'], { encoding: 'utf8' });
export const etcdctlBin = etcdctlWhich.status === 0 ? etcdctlWhich.stdout.trim() : undefined;

/** `etcdctl` against the given members (v3 API), with its exit status and output. */
export function etcdctl(
  list: readonly Member[],
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess(
    etcdctlBin ?? 'etcdctl',
    ['--endpoints', list.map((m) => m.client).join(','), '--command-timeout=5s', ...args],
    { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 15_000 },
  );
}

/** The member that leads now (asked of the live members), or undefined while none does. */
export async function leaderOf(list: readonly Member[]): Promise<Member | undefined> {
  const live = list.filter(
    (m) => m.child !== undefined && !m.child.killed && m.child.exitCode === null,
  );
  const r = await etcdctl(live, ['endpoint', 'status', '-w', 'json']);
  if (r.code !== 0) return undefined;
  const status = JSON.parse(r.stdout) as {
    Endpoint: string;
    Status: { header: { member_id: number | string }; leader: number | string };
  }[];
  const lead = status.find((s) => String(s.Status.header.member_id) === String(s.Status.leader));
  return lead === undefined ? undefined : live.find((m) => m.client === lead.Endpoint);
}
