#!/usr/bin/env node
// Mutation check of the security-critical modules: a scripted list of planted
// bugs, each a string replacement in a named source file, documented with the
// property it breaks. Each mutant is applied to the compiled output of that
// file in a temporary copy of the repository (the tests run on dist/, so no
// rebuild per mutant), the test files relevant to it run, and the mutant is
// KILLED when they fail, SURVIVED when they pass. Every `find` must occur
// exactly once in the TypeScript source and in its compiled JavaScript
// (whitespace-insensitive), so the list breaks loudly when the code moves on.
//
// Usage: npm run build && node scripts/mutation.mjs [--only ID,ID] [--list] [--skip-baseline]
// Exit status: 0 when every mutant is killed, 1 otherwise. Not part of `npm test` (slow).
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/**
 * The planted bugs. `file` is a source file under src/; `find` is replaced by `replace`
 * (once); `tests` are run-tests.mjs path prefixes that must fail for the mutant to be killed.
 */
const MUTANTS = [
  // --- Authorization: the RBAC evaluator and the policy decision (src/policy) ---
  {
    id: 'rbac-authenticated-plaintext',
    file: 'src/policy/rbac-evaluator.ts',
    find: 'return (f) => f.principal !== null && s(f.principal);',
    replace: "return (f) => s(f.principal ?? '');",
    property: 'a plaintext peer (no principal) never matches an `authenticated` principal',
    tests: ['src/policy'],
  },
  {
    id: 'rbac-absent-header-inverted',
    file: 'src/policy/rbac-evaluator.ts',
    find: 'if (value === undefined && h.present_match === undefined) return false;',
    replace: '',
    property: 'an absent header never matches a header matcher, even inverted (Envoy)',
    tests: ['src/policy'],
  },
  {
    id: 'rbac-permission-or-principal',
    file: 'src/policy/rbac-evaluator.ts',
    find: 'check: (f) => perms.some((c) => c(f)) && princ.some((c) => c(f)),',
    replace: 'check: (f) => perms.some((c) => c(f)) || princ.some((c) => c(f)),',
    property: 'a policy matches only when a permission AND a principal match',
    tests: ['src/policy'],
  },
  {
    id: 'rbac-prefix-reversed',
    file: 'src/policy/rbac-evaluator.ts',
    find: 'return (s) => s !== undefined && norm(s).startsWith(want);',
    replace: 'return (s) => s !== undefined && want.startsWith(norm(s));',
    property: 'a prefix matcher matches values that start with the prefix, nothing else',
    tests: ['src/policy'],
  },
  {
    id: 'rbac-regex-partial',
    file: 'src/policy/rbac-evaluator.ts',
    find: 'const re = new RegExp(`^(?:${m.safe_regex.regex})$`',
    replace: 'const re = new RegExp(`(?:${m.safe_regex.regex})`',
    property: 'a safe_regex matcher must match the whole value (RE2 FullMatch)',
    tests: ['src/policy'],
  },
  {
    id: 'authz-deny-dropped',
    file: 'src/policy/workload-authorizer.ts',
    find: 'const deny = f.deny?.match(facts);',
    replace: 'const deny = undefined;',
    property: 'DENY policies are enforced',
    tests: ['src/policy', 'src/proxy/filters', 'test/proxy/inbound-updates'],
  },
  {
    id: 'authz-custom-dropped',
    file: 'src/policy/workload-authorizer.ts',
    find: 'const custom = f.custom?.match(facts);',
    replace: 'const custom = undefined;',
    property: 'CUSTOM policies without a provider are enforced as DENY (fail closed)',
    tests: ['src/policy', 'src/proxy/filters'],
  },
  {
    id: 'authz-allow-ignored',
    file: 'src/policy/workload-authorizer.ts',
    find: 'if (f.allow === undefined || !f.allow.enforced) {',
    replace: 'if (true) {',
    property: 'when ALLOW policies apply, a request none of them matches is denied',
    tests: ['src/policy', 'src/proxy/filters'],
  },
  {
    id: 'authz-strict-plaintext',
    file: 'src/policy/workload-authorizer.ts',
    find: "if (pa.mode === 'STRICT' && req.principal === null) {",
    replace: 'if (false) {',
    property: 'STRICT mTLS refuses a plaintext connection',
    tests: ['src/policy'],
  },
  {
    id: 'authz-disable-keeps-principal',
    file: 'src/policy/workload-authorizer.ts',
    find: "principal: pa.mode === 'DISABLE' ? null : req.principal,",
    replace: 'principal: req.principal,',
    property: 'on a DISABLE (plaintext) port the peer has no identity',
    tests: ['src/policy'],
  },
  // --- The proxy's policy filters (src/proxy/filters) and config updates ---
  {
    id: 'proxy-lone-deny-dropped',
    file: 'src/proxy/filters/authz/http-authz.ts',
    find: "const [http = {}] = classifyRbacFilters(rbacs, 1, 'http_filters');",
    replace:
      "const [http = {}] = classifyRbacFilters(rbacs.filter((r) => rbacs.length > 1 || !JSON.stringify(r).includes('DENY')), 1, 'http_filters');",
    property: 'the proxy enforces a lone DENY RBAC filter',
    tests: ['src/proxy/filters', 'test/proxy/inbound-updates'],
  },
  {
    id: 'proxy-extra-rbac-dropped',
    file: 'src/proxy/filters/authz/evaluator.ts',
    find: 'if (groups.length >= maxGroups)',
    replace: 'if (groups.length >= maxGroups) return; if (false)',
    property: 'RBAC filters beyond what the proxy enforces are rejected, never dropped',
    tests: ['src/proxy/filters', 'test/proxy/inbound-updates'],
  },
  {
    id: 'proxy-tcp-group-skipped',
    file: 'src/proxy/filters/authz/network-authz.ts',
    find: 'if (last.status !== 200) return last;',
    replace: '',
    property: "every group of a TCP chain's RBAC filters is enforced (NetworkPolicy and authz)",
    tests: ['src/proxy/filters'],
  },
  {
    id: 'proxy-position-classifies',
    file: 'src/proxy/filters/authz/evaluator.ts',
    find: 'const roles = rbacs.map((rbac, i) => roleOf(rbac, `${where}[${String(i)}]`));',
    replace:
      "const roles = rbacs.map((rbac, i) => (roleOf(rbac, `${where}[${String(i)}]`), i === 0 && rbacs.length > 1 ? 'deny' : 'allow'));",
    property: 'RBAC filters are classified by their action, not their position',
    tests: ['src/proxy/filters', 'test/proxy/inbound-updates'],
  },
  {
    id: 'proxy-partial-update-acked',
    file: 'src/proxy/inbound/inbound-listeners.ts',
    find: 'if (problems.length > 0) {',
    replace: 'if (false) {',
    property: 'an inbound update that fails to build or bind is NACKed, not half-applied',
    tests: ['test/proxy/inbound-updates'],
  },
  {
    id: 'gateway-partial-update-acked',
    file: 'src/proxy/gateway/gateway-listeners.ts',
    find: 'if (problems.length > 0) {',
    replace: 'if (false) {',
    property: 'a gateway update that fails to build or bind is NACKed, not half-applied',
    tests: ['test/proxy/inbound-updates'],
  },
  {
    id: 'proxy-bind-old-first',
    file: 'src/proxy/inbound/inbound-listeners.ts',
    find: 'closeChains(chains);\n        problems.push(',
    replace: 'closeChains(chains);\n        continue;\n        problems.push(',
    property: 'a listener that cannot bind is a NACK, not a log line',
    tests: ['test/proxy/inbound-updates'],
  },
  {
    id: 'xfcc-plaintext-forwarded',
    file: 'src/proxy/inbound/inbound-http.ts',
    find: "else delete headers['x-forwarded-client-cert'];",
    replace: '',
    property: 'a client-supplied x-forwarded-client-cert never reaches the app in plaintext',
    tests: ['test/security/guarded-properties'],
  },
  {
    id: 'xfcc-mtls-client-value',
    file: 'src/proxy/inbound/inbound-http.ts',
    find: "if (principal !== null) headers['x-forwarded-client-cert'] = `URI=${principal}`;",
    replace:
      "if (principal !== null) headers['x-forwarded-client-cert'] = req.headers['x-forwarded-client-cert'] ?? `URI=${principal}`;",
    property: "over mTLS the app's XFCC is the verified peer's, never the client's",
    tests: ['test/control/inbound-mtls'],
  },
  // --- Secure naming (src/identity) ---
  {
    id: 'secure-naming-prefix',
    file: 'src/identity/secure-naming.ts',
    find: 'if (!allowedIds.includes(id)) {',
    replace: 'if (!allowedIds.some((a) => id.startsWith(a))) {',
    property: 'secure naming: the SAN must equal an allowed identity (…/sa/web-evil ≠ …/sa/web)',
    tests: ['src/identity/secure-naming', 'test/identity/mtls'],
  },
  {
    id: 'secure-naming-many-sans',
    file: 'src/identity/secure-naming.ts',
    find: 'if (ids.length !== 1) {',
    replace: 'if (ids.length < 1) {',
    property: 'secure naming: a peer must present exactly one SPIFFE ID',
    tests: ['src/identity/secure-naming', 'test/identity/mtls'],
  },
  // --- ADS authentication (src/control) ---
  {
    id: 'ads-token-sa-ignored',
    file: 'src/control/control-plane.ts',
    find: 'if (namespace !== claims.namespace || serviceAccount !== claims.serviceAccount)',
    replace: 'if (namespace !== claims.namespace)',
    property: "ADS: a token of another service account in the node's namespace is refused",
    tests: ['test/control/ads-protocol'],
  },
  {
    id: 'ads-workload-sa-ignored',
    file: 'src/control/control-plane.ts',
    find: 'if (workload.serviceAccount !== serviceAccount)',
    replace: 'if (false)',
    property: 'ADS: a node must run as its Workload’s service account',
    tests: ['test/control/ads-protocol'],
  },
  // --- JWT validation (src/policy/jwt-authn.ts) ---
  {
    id: 'jwt-clock-skew-900',
    file: 'src/policy/jwt-authn.ts',
    find: 'export const CLOCK_SKEW_S = 60;',
    replace: 'export const CLOCK_SKEW_S = 900;',
    property: "JWT exp/nbf clock skew is Envoy's 60 s",
    tests: ['src/policy/jwt-authn'],
  },
  {
    id: 'jwt-audience-ignored',
    file: 'src/policy/jwt-authn.ts',
    find: '...(provider.audiences === undefined ? {} : { audience: [...provider.audiences] }),',
    replace: '...{},',
    property: 'a JWT for another audience is rejected',
    tests: ['src/policy/jwt-authn'],
  },
  // --- NetworkPolicy evaluation and compilation (src/kubernetes/netpol, src/control) ---
  {
    id: 'netpol-except-ignored',
    file: 'src/kubernetes/netpol/network-policy-engine.ts',
    find: 'return allow.check(ip, type) && !deny.check(ip, type);',
    replace: 'return allow.check(ip, type);',
    property: 'ipBlock.except removes addresses from the block',
    tests: ['src/kubernetes/netpol'],
  },
  {
    id: 'netpol-protocol-ignored',
    file: 'src/kubernetes/netpol/network-policy-engine.ts',
    find: "if ((p.protocol ?? 'TCP') !== protocol) return false;",
    replace: '',
    property: 'a NetworkPolicy port allows only its protocol',
    tests: ['src/kubernetes/netpol'],
  },
  {
    id: 'netpol-end-port-ignored',
    file: 'src/kubernetes/netpol/network-policy-engine.ts',
    find: 'return port >= p.port && port <= end;',
    replace: 'return port >= p.port;',
    property: 'a NetworkPolicy port range ends at endPort',
    tests: ['src/kubernetes/netpol'],
  },
  {
    id: 'netpol-compiler-allows-all-cidrs',
    file: 'src/control/compiler/network-policy.ts',
    find: 'if (verdict.ingress.allowed) principals.push(cidrPrincipal(cidr));',
    replace: 'principals.push(cidrPrincipal(cidr));',
    property: "the sidecar's NetworkPolicy filter admits only the sources the policy allows",
    tests: ['src/control/compiler'],
  },
  // --- CSR checks (src/identity/csr-signing.ts) ---
  {
    id: 'csr-other-identity',
    file: 'src/identity/csr-signing.ts',
    find: 'const asked = uris.find((u) => u !== options.entitledSpiffeId);',
    replace: 'const asked = undefined;',
    property: 'the CA signs only the identity the caller is entitled to',
    tests: ['src/identity/csr-signing', 'test/identity/ca-server'],
  },
  {
    id: 'csr-extra-names',
    file: 'src/identity/csr-signing.ts',
    find: 'if (csr.names.length > 1) {',
    replace: 'if (csr.names.length > 2) {',
    property: 'a CSR carries exactly one SAN, the SPIFFE ID',
    tests: ['src/identity/csr-signing', 'test/identity/ca-server'],
  },
  {
    id: 'csr-signature-unchecked',
    file: 'src/identity/csr-signing.ts',
    find: 'if (!csr.signatureValid) {',
    replace: 'if (false) {',
    property: 'a CSR whose signature does not verify (no proof of key possession) is refused',
    tests: ['src/identity/csr-signing', 'test/identity/ca-server'],
  },
  {
    id: 'csr-size-unbounded',
    file: 'src/identity/csr-signing.ts',
    find: 'if (csrPem.length > MAX_CSR_BYTES) {',
    replace: 'if (false) {',
    property: 'an oversized CSR is refused before parsing',
    tests: ['src/identity/csr-signing', 'test/identity/ca-server'],
  },
  // --- Retries (src/proxy/outbound) ---
  {
    id: 'retry-5xx-skips-500',
    file: 'src/proxy/outbound/outbound-proxy.ts',
    find: "if (on.has('5xx') && status >= 500) return true;",
    replace: "if (on.has('5xx') && status > 500) return true;",
    property: 'retry_on 5xx retries a 500',
    tests: ['test/security/guarded-properties'],
  },
  {
    id: 'retry-status-codes-ignored',
    file: 'src/proxy/outbound/outbound-proxy.ts',
    find: "if (on.has('retriable-status-codes') && codes.includes(status)) return true;",
    replace: '',
    property: 'retry_on retriable-status-codes retries the listed codes',
    tests: ['test/security/guarded-properties'],
  },
];

const args = process.argv.slice(2);
const only = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : [];
const selected = only.length === 0 ? MUTANTS : MUTANTS.filter((m) => only.includes(m.id));

if (args.includes('--list')) {
  for (const m of MUTANTS) console.log(`${m.id}\t${m.file}\t${m.property}`);
  process.exit(0);
}

/** A whitespace-insensitive pattern for `find` (tsc re-indents its output). */
function pattern(find) {
  const escaped = find
    .trim()
    .split(/\s+/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('\\s+');
  return new RegExp(escaped, 'g');
}

function count(text, find) {
  return [...text.matchAll(pattern(find))].length;
}

// Every mutant must name code that exists once, in the source and in the compiled output.
const invalid = [];
for (const m of selected) {
  const ts = join(root, m.file);
  const js = join(root, 'dist', m.file.replace(/\.ts$/, '.js'));
  if (!existsSync(js)) {
    console.error(`mutation: ${js} is missing; run npm run build first`);
    process.exit(2);
  }
  const inTs = count(readFileSync(ts, 'utf8'), m.find);
  const inJs = count(readFileSync(js, 'utf8'), m.find);
  if (inTs !== 1 || inJs !== 1)
    invalid.push(`${m.id}: found ${String(inTs)}× in ${m.file}, ${String(inJs)}× in its output`);
}
if (invalid.length > 0) {
  console.error(`mutation: stale mutants (the code moved on):\n  ${invalid.join('\n  ')}`);
  process.exit(2);
}

// A temporary copy of the repository (node_modules linked): mutants never touch the worktree.
const work = mkdtempSync(join(tmpdir(), 'palisade-mutation-'));
const cleanup = () => rmSync(work, { recursive: true, force: true });
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
for (const entry of ['dist', 'scripts', 'examples', 'test', 'package.json', 'proto', 'docs'])
  if (existsSync(join(root, entry)))
    cpSync(join(root, entry), join(work, entry), { recursive: true });
// The tests also read src/ (fixtures, the error registry doc check); the mutants are in dist/.
cpSync(join(root, 'src'), join(work, 'src'), { recursive: true });
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');

const TIMEOUT_MS = Number(process.env.PALISADE_MUTATION_TIMEOUT_MS ?? 300_000);
function runTests(prefixes, timeoutMs = TIMEOUT_MS) {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['scripts/run-tests.mjs', ...prefixes], {
    cwd: work,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, PALISADE_TEST_CONCURRENCY: '1' },
  });
  return {
    status: r.status,
    timedOut: r.error !== undefined,
    seconds: (Date.now() - started) / 1000,
    failed: (r.stdout ?? '')
      .split('\n')
      .filter((l) => /^\s*not ok /.test(l))
      .map((l) => l.trim())
      .slice(0, 3),
  };
}

try {
  if (!args.includes('--skip-baseline')) {
    const prefixes = [...new Set(selected.flatMap((m) => m.tests))];
    console.log(`baseline: ${prefixes.join(' ')}`);
    // The union of every mutant's tests: no per-mutant timeout (a loaded machine is slow).
    const base = runTests(prefixes, 0);
    if (base.status !== 0) {
      console.error(
        `mutation: the unmutated tests fail${base.timedOut ? ' (timed out)' : ''} (${base.failed.join('; ')}): fix them first\n${base.tail}`,
      );
      process.exit(2);
    }
    console.log(`baseline passes (${base.seconds.toFixed(0)} s)\n`);
  }
  const results = [];
  for (const m of selected) {
    const js = join(work, 'dist', m.file.replace(/\.ts$/, '.js'));
    const original = readFileSync(js, 'utf8');
    writeFileSync(
      js,
      original.replace(pattern(m.find), () => m.replace),
    );
    const r = runTests(m.tests);
    writeFileSync(js, original);
    const outcome = r.timedOut ? 'KILLED (timeout)' : r.status === 0 ? 'SURVIVED' : 'KILLED';
    results.push({ ...m, outcome });
    console.log(
      `${outcome.padEnd(16)} ${m.id} (${r.seconds.toFixed(0)} s) — ${m.property}${
        r.failed.length > 0 ? `\n                 by: ${r.failed.join(' | ')}` : ''
      }`,
    );
  }
  const killed = results.filter((r) => r.outcome.startsWith('KILLED')).length;
  const score = (100 * killed) / results.length;
  console.log(
    `\nmutation score: ${String(killed)}/${String(results.length)} killed (${score.toFixed(1)} %)`,
  );
  const survivors = results.filter((r) => r.outcome === 'SURVIVED');
  for (const s of survivors) console.log(`  survived: ${s.id} (${s.file}): ${s.property}`);
  process.exitCode = survivors.length === 0 ? 0 : 1;
} finally {
  cleanup();
}
