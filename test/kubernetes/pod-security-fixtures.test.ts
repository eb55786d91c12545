/**
 * Runs every upstream Pod Security fixture (test/fixtures/pod-security,
 * from k8s.io/pod-security-admission): each pod under pass/ must be allowed at
 * its level and version, each pod under fail/ denied with the failing check
 * named (the file is `<checkid><n>.yaml`; at restricted, a check that
 * overrides the baseline one counts, as upstream's registry replaces it).
 * The same fixtures are also run at `latest` and at newer versions.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import {
  CHECKS,
  evaluatePodSecurity,
  parseVersion,
  type PodSecurityLevel,
} from '../../src/kubernetes/podsecurity/index.js';
import { REPO_ROOT } from '../helpers/index.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'pod-security');

interface Pod {
  metadata?: unknown;
  spec?: unknown;
}

function acceptedChecks(expected: string, level: PodSecurityLevel, minor: number): Set<string> {
  const out = new Set<string>();
  for (const d of CHECKS) {
    const id = d.id.toLowerCase();
    if (id === expected) out.add(d.id);
    if (level !== 'restricted') continue;
    let active;
    for (const v of d.versions) if (v.minor <= minor) active = v;
    if (active?.overrides?.some((o) => o.toLowerCase() === expected) === true) out.add(d.id);
  }
  return out;
}

let total = 0;
for (const level of ['baseline', 'restricted'] as const) {
  const versions = readdirSync(join(FIXTURES, level)).sort();
  for (const versionDir of versions) {
    const version = parseVersion(versionDir);
    assert.ok(version !== undefined && version !== 'latest', `bad fixture dir ${versionDir}`);
    test(`pod security fixtures ${level}/${versionDir}`, () => {
      for (const outcome of ['pass', 'fail'] as const) {
        const dir = join(FIXTURES, level, versionDir, outcome);
        const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
        assert.ok(files.length > 0, `${dir} has fixtures`);
        for (const f of files) {
          total += 1;
          const pod = parse(readFileSync(join(dir, f), 'utf8')) as Pod;
          const r = evaluatePodSecurity({ level, version }, pod.metadata, pod.spec);
          const where = `${level}/${versionDir}/${outcome}/${f}`;
          if (outcome === 'pass') {
            assert.equal(r.allowed, true, `${where}: ${JSON.stringify(r.violations)}`);
          } else {
            assert.equal(r.allowed, false, `${where} must be denied`);
            const expected = f.replace(/\d+\.yaml$/, '');
            const accepted = acceptedChecks(expected, level, version.minor);
            assert.ok(accepted.size > 0, `${where}: no check named ${expected}`);
            assert.ok(
              r.violations.some((v) => accepted.has(v.check)),
              `${where}: expected ${[...accepted].join('|')}, got ${r.violations.map((v) => v.check).join(', ')}`,
            );
          }
        }
      }
    });
  }
}

test('the newest fixtures hold at latest and at versions newer than Palisade knows', () => {
  for (const level of ['baseline', 'restricted'] as const) {
    for (const outcome of ['pass', 'fail'] as const) {
      const dir = join(FIXTURES, level, 'v1.25', outcome);
      for (const f of readdirSync(dir)) {
        const pod = parse(readFileSync(join(dir, f), 'utf8')) as Pod;
        for (const version of ['latest', { minor: 99 }] as const) {
          const r = evaluatePodSecurity({ level, version }, pod.metadata, pod.spec);
          // v1.35 relaxed baseline procMount for pods in a user namespace
          // (hostUsers: false, KEP-127): that one fixture is allowed from then on.
          const relaxed =
            level === 'baseline' && (pod.spec as { hostUsers?: unknown }).hostUsers === false;
          assert.equal(
            r.allowed,
            outcome === 'pass' || relaxed,
            `${level}/${outcome}/${f} at ${JSON.stringify(version)}`,
          );
        }
      }
    }
  }
});

test('every fixture was read', () => {
  assert.ok(total > 2000, `read ${String(total)} fixtures`);
});
