/**
 * AuthorizationPolicy values that the translation turns into RE2 patterns
 * (path templates `{*}`/`{**}`, namespaces, service accounts, `when`
 * source.namespace/serviceAccount) are size-checked at validation against
 * src/regex's bounds (Istio: a regex over 1,024 bytes is refused), so the
 * policy is refused at the edge with its field path instead of reaching every
 * proxy and being NACKed there. Values within the bound still pass, and the
 * pattern checked is the one the proxy gets (same builder).
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseManifests } from '../../src/api/index.js';
import { formatProblem, validateManifests } from '../../src/control/index.js';
import { translateAuthorizationPolicies } from '../../src/policy/index.js';
import type { AuthorizationPolicy } from '../../src/api/security/index.js';
import { safeRegexProblem } from '../../src/regex/index.js';
import { runPalisade, tempDir } from '../helpers/index.js';

const policy = (rules: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  action: DENY
  rules: ${rules}
`;

const problemsOf = (yaml: string): string[] => {
  const r = validateManifests(parseManifests(yaml, 'policy.yaml'));
  return r.ok ? [] : r.problems.map(formatProblem);
};

test('regexes compiled from an AuthorizationPolicy are bounded at validation, with the field', () => {
  const longTemplate = '/{*}'.repeat(400);
  const cases: [string, RegExp][] = [
    [
      `[{ to: [{ operation: { paths: ["/ok", "${longTemplate}"] } }] }]`,
      /spec\.rules\[0\]\.to\[0\]\.operation\.paths\[1\]: "\/\{\*\}.*…" compiles to a regular expression over the proxy's bound \(.*1024.*\)/,
    ],
    [
      `[{ to: [{ operation: { notPaths: ["/a/${'{*}/'.repeat(60)}{**}"] } }] }]`,
      /operation\.notPaths\[0\]: .*compiles to a regular expression over the proxy's bound/,
    ],
    [
      `[{ from: [{ source: { namespaces: ["${'n'.repeat(1100)}*"] } }] }]`,
      /from\[0\]\.source\.namespaces\[0\]: .*over the proxy's bound/,
    ],
    [
      `[{ from: [{ source: { notServiceAccounts: ["${'s'.repeat(1100)}"] } }] }]`,
      /source\.notServiceAccounts\[0\]: .*over the proxy's bound/,
    ],
    [
      `[{ when: [{ key: source.namespace, values: ["${'n'.repeat(1100)}"] }] }]`,
      /when\[0\]: .*over the proxy's bound/,
    ],
  ];
  for (const [rules, expected] of cases) {
    const problems = problemsOf(policy(rules));
    assert.equal(problems.length, 1, `${rules.slice(0, 60)}: ${problems.join('\n')}`);
    assert.match(problems[0] ?? '', expected);
  }
  // Within the bound: accepted, and what the proxy would compile is within it too.
  const ok = policy(
    `[{ to: [{ operation: { paths: ["/api/{*}/{*}/{*}/{*}/{*}/{**}"] } }], from: [{ source: { namespaces: ["team-*"] } }] }]`,
  );
  assert.deepEqual(problemsOf(ok), []);
  const [manifest] = parseManifests(ok, 'ok.yaml');
  const rbac = JSON.stringify(
    translateAuthorizationPolicies([manifest?.object as AuthorizationPolicy], 'http'),
  );
  const regexes = [...rbac.matchAll(/"regex":"((?:[^"\\]|\\.)*)"/g)].map(
    (m) => JSON.parse(`"${m[1] ?? ''}"`) as string,
  );
  assert.ok(regexes.length >= 2, rbac);
  for (const r of regexes) assert.equal(safeRegexProblem(r), undefined, r);
});

test('palisade apply refuses the policy before writing anything (exit 2, field named)', async (t) => {
  const dir = tempDir('palisade-h8-regex-');
  t.after(dir.cleanup);
  const state = join(dir.path, 'state');
  mkdirSync(state);
  writeFileSync(
    join(state, 'mesh.json'),
    JSON.stringify({
      name: 'h8',
      stateDir: state,
      configDir: join(state, 'config'),
      control: '127.38.5.1:9',
    }),
  );
  const file = join(dir.path, 'long-template.yaml');
  writeFileSync(file, policy(`[{ to: [{ operation: { paths: ["${'/{*}'.repeat(400)}"] } }] }]`));
  const r = await runPalisade(['apply', '-f', file, '--state-dir', state], { timeoutMs: 20_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /nothing applied:\n {2}\S*long-template\.yaml \(AuthorizationPolicy default\/p\): spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]: .*over the proxy's bound.*\[PAL_ERR_VALIDATION\]/,
  );
});
