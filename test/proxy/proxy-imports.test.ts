// `palisade proxy` imports only what it runs (issue 22): the proxy process
// must not load the rest of the CLI (control plane, API server, etcd) nor the
// CA side of identity (YAML, Ajv, @peculiar/x509's ASN.1, reflect-metadata).
// Every module the process resolves is recorded by a module resolve hook
// (node:module register) while it starts as far as `proxy --help`, which
// loads the command with all its imports.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, runProcess, tempDir } from '../helpers/index.js';

const FORBIDDEN = [
  'yaml',
  'ajv',
  'ajv-formats',
  '@peculiar/x509',
  'reflect-metadata',
  'etcd3',
  'undici',
  // Only captured pods run the DNS proxy; proxy.ts imports it when it starts one (issue 18: idle RSS).
  'dns-packet',
  // Loaded when a jwt_authn config (a RequestAuthentication) is first compiled.
  'jose',
  // The ADS stream is node:http2 plus the compact wire schema (src/xds/wire); grpc-js and
  // the protos load only when an ext_authz gRPC provider is first called, protobufjs also
  // where an OTLP receiver decodes spans (issue 22: they held ~20 MB of every proxy).
  '@grpc/grpc-js',
  'protobufjs',
];

test('palisade proxy loads neither the other commands nor YAML, Ajv or ASN.1', async (t) => {
  const dir = tempDir('palisade-imports-');
  t.after(() => {
    dir.cleanup();
  });
  const log = join(dir.path, 'resolved.txt');
  const hooks = join(dir.path, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
  );
  // CommonJS modules (a package's own require() calls) are not seen by the resolve hook:
  // the process lists node's CommonJS module cache when it exits.
  const cjsLog = join(dir.path, 'cjs.txt');
  const register = join(dir.path, 'register.mjs');
  writeFileSync(
    register,
    `import { register, createRequire } from 'node:module';\nimport { writeFileSync } from 'node:fs';\nregister(${JSON.stringify(`file://${hooks}`)});\nprocess.on('exit', () => { writeFileSync(${JSON.stringify(cjsLog)}, Object.keys(createRequire(import.meta.url).cache).join('\\n')); });\n`,
  );
  const r = await runProcess(process.execPath, ['--import', register, CLI, 'proxy', '--help'], {
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /palisade proxy/);
  const urls = readFileSync(log, 'utf8').split('\n');
  const packages = new Set(
    urls
      .map((u) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1])
      .filter((p) => p !== undefined),
  );
  for (const p of FORBIDDEN) assert.ok(!packages.has(p), `the proxy loaded ${p}`);
  // prom-client's Registry only (src/telemetry/mesh-metrics.ts): its index also loads the push
  // gateway, the cluster aggregator and default metrics, ~9 MB of RSS a proxy never uses.
  const cjs = readFileSync(cjsLog, 'utf8').split('\n');
  assert.ok(
    cjs.some((f) => f.endsWith('/node_modules/prom-client/lib/registry.js')),
    'prom-client registry not loaded: is the CommonJS list right?',
  );
  for (const f of ['index.js', 'lib/pushgateway.js', 'lib/cluster.js', 'lib/defaultMetrics.js'])
    assert.ok(
      !cjs.some((m) => m.endsWith(`/node_modules/prom-client/${f}`)),
      `loaded prom-client/${f}`,
    );
  const commands = urls.filter((u) => u.includes('/dist/src/cli/commands/'));
  assert.deepEqual(
    [...new Set(commands.map((u) => u.slice(u.lastIndexOf('/') + 1)))],
    ['proxy.js'],
  );
  // And it did load the proxy (the hook sees its modules).
  assert.ok(urls.some((u) => u.endsWith('/dist/src/proxy/proxy.js')));
  assert.ok(
    !urls.some((u) => /\/dist\/src\/(control|apiserver|kubernetes)\//.test(u)),
    'control plane or API server loaded',
  );
});
