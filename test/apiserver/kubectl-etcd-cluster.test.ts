/**
 * The kubectl session (kubectl-scenario.ts, the same steps as on the
 * embedded store) against `palisade apiserver --store etcd` on a 3-member
 * etcd cluster on loopback, with the member that leads killed (SIGKILL) in
 * the middle of the session while kubectl writes are in flight: every write
 * kubectl saw succeed is there afterwards (through kubectl, and in etcd
 * itself through `etcdctl` on a surviving member), and the rest of the
 * session — RBAC users, OIDC, tokens, PodSecurity, a restart of the server —
 * runs on the two survivors.
 *
 * Loopback 127.38.2.0/24 (this area's range), ports picked free.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { tempDir, waitFor } from '../helpers/index.js';
import {
  etcdBin,
  etcdctl,
  etcdctlBin,
  leaderOf,
  members,
  startCluster,
  stopCluster,
  type Member,
} from './etcd-cluster.js';
import { kubectlBin, kubectlScenario, ok, type Session } from './kubectl-scenario.js';

if (etcdctlBin === undefined) {
  if (process.env.CI === 'true')
    throw new Error('etcdctl is required in CI (apt-get install etcd-client)');
  console.log('# kubectl-etcd-cluster: skipped, no `etcdctl` (apt-get install etcd-client)');
}

const WRITES = 60;
const IN_FLIGHT = 5;
const KILL_AFTER = 20;

/**
 * Creates ConfigMaps ha/w0… with kubectl, IN_FLIGHT at a time, killing the
 * leader once KILL_AFTER writes were started. A write refused while the
 * survivors elect a new leader is retried (bounded), as a user would; an
 * AlreadyExists on a retry means an earlier attempt landed without its
 * answer reaching kubectl.
 */
async function writesAcrossALeaderKill(
  s: Session,
  cluster: readonly Member[],
): Promise<{ acknowledged: Map<string, string>; ambiguous: number; retried: number }> {
  ok(await s.kubectl(['create', 'namespace', 'ha']), 'create ns ha');
  const leader = await leaderOf(cluster);
  assert.ok(leader !== undefined, 'the cluster has a leader before the kill');
  const acknowledged = new Map<string, string>();
  let ambiguous = 0;
  let retried = 0;
  const write = async (i: number): Promise<void> => {
    const name = `w${String(i)}`;
    for (let attempt = 0; attempt < 30; attempt++) {
      const r = await s.kubectl([
        '-n',
        'ha',
        'create',
        'configmap',
        name,
        `--from-literal=i=${String(i)}`,
      ]);
      if (r.code === 0) {
        acknowledged.set(name, String(i));
        return;
      }
      if (attempt > 0 && /AlreadyExists/.test(r.stderr)) {
        ambiguous++;
        return;
      }
      assert.match(
        r.stderr,
        /ServiceUnavailable|the storage backend is unavailable|timeout|Timeout/,
        `only unavailability may refuse a write: ${r.stderr}`,
      );
      retried++;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.fail(`write ${name} never succeeded after the leader was killed`);
  };
  for (let i = 0; i < WRITES; i += IN_FLIGHT) {
    const batch = Array.from({ length: IN_FLIGHT }, (_, j) => write(i + j));
    if (i === KILL_AFTER) leader.child?.kill('SIGKILL'); // with this batch in flight
    await Promise.all(batch);
  }
  return { acknowledged, ambiguous, retried };
}

test(
  'kubectl session against palisade apiserver on a 3-member etcd cluster, its leader killed mid-run',
  { skip: kubectlBin === undefined || etcdBin === undefined || etcdctlBin === undefined },
  async (t) => {
    const dir = tempDir('palisade-etcd-cluster-');
    const cluster = await members(['127.38.2.11', '127.38.2.12', '127.38.2.13']);
    t.after(() => {
      stopCluster(cluster);
      dir.cleanup();
    });
    await startCluster(cluster, dir.path);
    await kubectlScenario(t, {
      host: '127.38.2.1',
      storeArgs: ['--store', 'etcd', '--etcd-endpoints', cluster.map((m) => m.client).join(',')],
      midRun: {
        name: 'the etcd leader killed with kubectl writes in flight: no acknowledged write lost',
        run: async (s) => {
          const { acknowledged, ambiguous, retried } = await writesAcrossALeaderKill(s, cluster);
          t.diagnostic(
            `${String(acknowledged.size)} acknowledged, ${String(ambiguous)} ambiguous, ${String(retried)} retried refusals`,
          );
          assert.equal(acknowledged.size + ambiguous, WRITES);
          const survivors = cluster.filter((m) => m.child?.killed === false);
          assert.equal(survivors.length, 2, 'exactly one member was killed');
          await waitFor(async () => (await leaderOf(survivors)) !== undefined, 20_000);
          // Through the API server…
          const listed = JSON.parse(
            ok(await s.kubectl(['-n', 'ha', 'get', 'configmaps', '-o', 'json']), 'list ha'),
          ) as { items: { metadata: { name: string }; data?: { i?: string } }[] };
          const byName = new Map(listed.items.map((c) => [c.metadata.name, c.data?.i]));
          for (const [name, value] of acknowledged)
            assert.equal(byName.get(name), value, `acknowledged write ${name} is served`);
          // …and in etcd itself, read from a survivor.
          const keys = await etcdctl(survivors, [
            'get',
            '/registry/core/configmaps/ha/',
            '--prefix',
            '--keys-only',
          ]);
          assert.equal(keys.code, 0, keys.stderr);
          const stored = new Set(keys.stdout.split('\n').filter((k) => k !== ''));
          for (const name of acknowledged.keys())
            assert.ok(
              stored.has(`/registry/core/configmaps/ha/${name}`),
              `acknowledged write ${name} is in etcd`,
            );
        },
      },
    });
  },
);
