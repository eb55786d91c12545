// Lint configuration: typescript-eslint strictTypeChecked plus the footgun bans
// from STYLE.md §7 (no rejectUnauthorized:false outside tests, no Math.random
// in product code, no floating promises, exhaustive switches).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'proto/', 'scripts/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use crypto.randomInt / randomBytes (STYLE.md §7).',
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='rejectUnauthorized'][value.value=false]",
          message: 'rejectUnauthorized: false is only allowed in tests (STYLE.md §7).',
        },
      ],
    },
  },
  // STYLE.md §1: a folder's index.ts is its public surface; no deep import into another
  // area (src/<area>/…) from outside it. Relative depth differs per file depth, hence one
  // pattern per level: `../<area>/<file>.js` from src/<a>/x.ts, `../../<area>/<file>.js`
  // from src/<a>/<b>/x.ts, and so on (`<area>/index.js` is allowed).
  ...[
    ['src/*/*.ts', '\\.\\./'],
    ['src/*/*/*.ts', '(\\.\\./){2}'],
    ['src/*/*/*/*.ts', '(\\.\\./){3}'],
  ].map(([glob, up]) => ({
    files: [glob],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // identity/workload.js is src/identity's second, lean surface: the workload
              // side (SVIDs, CSRs, secure naming, TLS policy) without the CA, YAML or ASN.1.
              regex: `^${up}(?!identity/workload\\.js$)[a-z][a-z0-9-]*/(?!index\\.js$).+`,
              message:
                'Import another area through its index.ts surface (STYLE.md §1), not its internals.',
            },
          ],
        },
      ],
    },
  })),
  {
    // Deep imports that predate the rule, kept as warnings until their areas grow lean
    // surfaces (e.g. the workload side of src/identity apart from the CA, so the proxy
    // loads no ASN.1 or YAML). New files get the error above.
    files: [
      'src/cli/commands/analyze.ts',
      'src/cli/commands/apply.ts',
      'src/control/analyze/analyze.ts',
      'src/control/compiler/clusters.ts',
      'src/control/compiler/compile-proxy.ts',
      'src/control/compiler/listeners.ts',
      'src/control/compiler/routes.ts',
      'src/control/control-plane.ts',
      'src/control/registry/service-registry.ts',
      'src/kubernetes/cluster-objects.ts',
      'src/policy/authorization-translation.ts',
      'src/policy/jwt-authn.ts',
      'src/policy/load-policies.ts',
      'src/policy/policy-selection.ts',
      'src/policy/workload-authorizer.ts',
      'src/proxy/gateway/gateway-listeners.ts',
      // The policy evaluator modules, not the policy barrel (it loads the YAML side).
      'src/proxy/filters/authz/evaluator.ts',
      'src/proxy/filters/authz/ext-authz-grpc.ts',
      'src/proxy/filters/authz/http-authz.ts',
      'src/proxy/filters/authz/network-authz.ts',
      'src/proxy/outbound/upstream-tls.ts',
      'src/proxy/proxy.ts',
      'src/proxy/request-head.ts',
      'src/runtime/mesh-runtime.ts',
      // The list of watched kinds alone: control's index would load @kubernetes/client-node.
      'src/runtime/mesh-api.ts',
      'src/xds/transport.ts',
    ],
    rules: { 'no-restricted-imports': 'warn' },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-syntax': 'off',
      'no-restricted-properties': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
    },
  },
);
