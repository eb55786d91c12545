// Lint configuration: typescript-eslint strictTypeChecked plus the footgun bans
// from STYLE.md §7 (no rejectUnauthorized:false outside tests, no Math.random
// in product code, no floating promises, exhaustive switches).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Second, lean surfaces beside an area's index.ts, for a proxy that must load only what it
// runs: the workload side of identity (no CA, YAML or ASN.1) and the evaluation side of
// policy (no YAML loaders or validators). test/proxy/proxy-imports.test.ts checks the load.
const LEAN_SURFACES = ['identity/workload\\.js', 'policy/evaluation\\.js'];
// And the reverse for xds, whose index.ts is the proxy's lean surface: the control plane's
// protobufjs protos and ADS service, and its grpc-js channel settings, are surfaces of their
// own that the proxy never imports.
const HEAVY_SURFACES = ['xds/protos\\.js', 'xds/grpc-channel\\.js'];
const SURFACES = [...LEAN_SURFACES, ...HEAVY_SURFACES];

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
  // from src/<a>/<b>/x.ts, and so on. Allowed: any folder's `index.js` (an area's, or a
  // sub-area's such as an API group's `api/networking/index.js`) and the second
  // surfaces listed in SURFACES.
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
              regex: `^${up}(?!(?:${SURFACES.join('|')})$)[a-z][a-z0-9-]*/(?:[a-z0-9-]+/)*(?!index\\.js$)[^/]+$`,
              message:
                'Import another area through its index.ts surface (STYLE.md §1), not its internals.',
            },
          ],
        },
      ],
    },
  })),
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
