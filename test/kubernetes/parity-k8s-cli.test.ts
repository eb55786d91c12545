// Issue 17, Kubernetes part, through the CLI as real processes:
// - `check netpol` with AdminNetworkPolicy / NetworkPolicy /
//   BaselineAdminNetworkPolicy tiers (the network-policy-api v0.1.7
//   conformance case "api_integration/standard-anp-np-banp.yaml", restated in
//   test/helpers/anp-conformance.ts), kinds it cannot apply named in a warning,
//   and a pod's traffic to itself reported as loopback;
// - `check netpol --from IP` for an address outside the cluster (ipBlock except);
// - `audit pod-security` at v1.36 and latest (= v1.37) for the v1.37 sysctls
//   (pod-security-admission policy/check_sysctls.go).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { CONFORMANCE_CASES, conformanceCluster, pod, podIp } from '../helpers/anp-conformance.js';
import { runPalisade, tempDir } from '../helpers/index.js';

function clusterFile(dir: string, objects: readonly unknown[]): string {
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, [...conformanceCluster(), ...objects].map((o) => stringify(o)).join('---\n'));
  return file;
}

function caseNamed(prefix: string) {
  const c = CONFORMANCE_CASES.find((x) => x.name.startsWith(prefix));
  assert.ok(c !== undefined, prefix);
  return c;
}

test('check netpol: ANP Deny, then Pass to the NetworkPolicy, then Pass to the BANP', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const run = (file: string, from: string, to: string, port: string, json = false) =>
    runPalisade([
      'check',
      'netpol',
      '-f',
      file,
      '--from',
      from,
      '--to',
      to,
      '--port',
      port,
      ...(json ? ['-o', 'json'] : []),
    ]);
  const slytherin = pod('slytherin', 0);
  const gryffindor = pod('gryffindor', 0);

  const deny = clusterFile(
    dir.path,
    caseNamed('ANP → NetworkPolicy → BANP: ANP Deny wins').objects,
  );
  const denied = await run(deny, slytherin, gryffindor, '80');
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stdout, /^denied: /);
  assert.match(
    denied.stdout,
    /ingress of .*gryffindor\/harry-potter-0: denied — denied by AdminNetworkPolicy "pass-example" \(priority 10\) rule "deny-all-ingress-from-slytherin", before any NetworkPolicy/,
  );
  assert.equal(denied.stderr, '');

  const pass = clusterFile(dir.path, caseNamed('ANP → NetworkPolicy → BANP: Pass lets').objects);
  const passed = await run(pass, slytherin, gryffindor, '80', true);
  assert.equal(passed.code, 0, passed.stderr);
  const v = JSON.parse(passed.stdout) as {
    allowed: boolean;
    ingress: { tier: string; admin: { policy: string; action: string }; allowedBy: string[] };
  };
  assert.equal(v.allowed, true);
  assert.equal(v.ingress.tier, 'NetworkPolicy');
  assert.deepEqual(v.ingress.admin.action, 'Pass');
  assert.deepEqual(v.ingress.allowedBy, [
    'network-policy-conformance-gryffindor/allow-gress-from-to-slytherin-to-gryffindor',
  ]);

  const banp = clusterFile(dir.path, caseNamed('ANP → BANP: Pass without').objects);
  const baseline = await run(banp, slytherin, gryffindor, '8080');
  assert.equal(baseline.code, 1);
  assert.match(
    baseline.stdout,
    /passed it on; no NetworkPolicy isolates .* for ingress; denied by BaselineAdminNetworkPolicy "default" rule "deny-all-ingress-from-slytherin"/,
  );
  // The matrix applies the tiers too: slytherin -> gryffindor is denied both ways.
  const matrix = await runPalisade([
    'check',
    'netpol',
    '-f',
    banp,
    '--matrix',
    '--port',
    '80',
    '-o',
    'json',
  ]);
  assert.equal(matrix.code, 0);
  const m = JSON.parse(matrix.stdout) as { pods: string[]; matrix: boolean[][] };
  const at = (from: string, to: string) => m.matrix[m.pods.indexOf(from)]?.[m.pods.indexOf(to)];
  assert.equal(at(slytherin, gryffindor), false);
  assert.equal(at(gryffindor, slytherin), false);
  assert.equal(at(pod('hufflepuff', 0), gryffindor), true);
});

test('check netpol: a kind it cannot apply is named in a warning, not silently ignored', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = clusterFile(dir.path, [
    {
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: 'deny-everything' },
      spec: { tier: 'Admin', priority: 1, subject: { namespaces: {} } },
    },
  ]);
  const r = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    pod('slytherin', 0),
    '--to',
    pod('gryffindor', 0),
    '--port',
    '80',
  ]);
  assert.equal(r.code, 0);
  assert.match(
    r.stderr,
    /warning: .*cluster\.yaml: policy\.networking\.k8s\.io\/v1alpha2 ClusterNetworkPolicy "deny-everything" ignored: check netpol does not implement this kind/,
  );
});

test('check netpol: a pod to itself is allowed and the output says it is loopback', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = clusterFile(dir.path, [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny-all', namespace: 'network-policy-conformance-gryffindor' },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
  ]);
  const self = pod('gryffindor', 0);
  const args = ['check', 'netpol', '-f', file, '--from', self, '--to', self, '--port', '80'];
  const text = await runPalisade(args);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^allowed: .* TCP\/80 \(loopback: a pod may always connect to itself\)/,
  );
  assert.match(
    text.stdout,
    /ingress of .*: allowed — traffic from .*harry-potter-0 to itself is always allowed: Kubernetes never isolates a pod from itself \(loopback\); without that, .* is isolated for ingress by NetworkPolicy/,
  );
  const json = await runPalisade([...args, '-o', 'json']);
  const v = JSON.parse(json.stdout) as { allowed: boolean; loopback: boolean; reason: string };
  assert.equal(v.allowed, true);
  assert.equal(v.loopback, true);
  assert.match(v.reason, /itself/);
  // Another pod is denied by the same policy.
  const other = await runPalisade([
    'check',
    'netpol',
    '-f',
    file,
    '--from',
    pod('gryffindor', 1),
    '--to',
    self,
    '--port',
    '80',
  ]);
  assert.equal(other.code, 1);
  assert.doesNotMatch(other.stdout, /loopback/);
});

// pod-security-admission policy/check_sysctls.go: v1.37 allows
// net.ipv4.tcp_slow_start_after_idle and net.ipv4.tcp_notsent_lowat.
test('audit pod-security: the v1.37 sysctls are denied at v1.36 and allowed at latest', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'pod.yaml');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'sysctls1', namespace: 'default' },
      spec: {
        containers: [{ name: 'container1', image: 'registry.k8s.io/pause' }],
        securityContext: {
          sysctls: [
            { name: 'net.ipv4.tcp_slow_start_after_idle', value: '0' },
            { name: 'net.ipv4.tcp_notsent_lowat', value: '16384' },
          ],
        },
      },
    }),
  );
  const audit = (version: string) =>
    runPalisade(['audit', 'pod-security', '-f', file, '--level', 'baseline', '--version', version]);
  const old = await audit('v1.36');
  assert.equal(old.code, 1, old.stdout);
  assert.match(
    old.stdout,
    /forbidden sysctls \(net\.ipv4\.tcp_slow_start_after_idle, net\.ipv4\.tcp_notsent_lowat\)/,
  );
  assert.equal((await audit('v1.37')).code, 0);
  assert.equal((await audit('latest')).code, 0);
  const help = await runPalisade(['audit', 'pod-security', '--help']);
  assert.match(help.stdout + help.stderr, /latest is v1\.37/);
});

// The example: `cidr 10.0.0.0/8, except [10.1.0.0/16]` — check netpol
// with an address as the source (an ipBlock peer outside the cluster).
test('check netpol --from IP: ipBlock except for an address outside the cluster', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = clusterFile(dir.path, [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'from-ten', namespace: 'network-policy-conformance-gryffindor' },
      spec: {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }],
      },
    },
  ]);
  const check = (from: string) =>
    runPalisade([
      'check',
      'netpol',
      '-f',
      file,
      '--from',
      from,
      '--to',
      pod('gryffindor', 0),
      '--port',
      '80',
    ]);
  const denied = await check('10.1.2.3');
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stdout, /^denied: 10\.1\.2\.3 -> network-policy-conformance-gryffindor\//);
  assert.match(
    denied.stdout,
    /egress of 10\.1\.2\.3: allowed — 10\.1\.2\.3 is outside the cluster/,
  );
  assert.equal((await check('10.2.0.1')).code, 0);
  assert.equal((await check('192.168.0.1')).code, 1);
  // A pod's address is that pod.
  const byIp = await check(podIp('slytherin', 0));
  assert.equal(byIp.code, 0);
  assert.match(byIp.stdout, /^allowed: network-policy-conformance-slytherin\/draco-malfoy-0 -> /);
});
