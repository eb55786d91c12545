// The `palisade ca` and `palisade spiffe` contract, with openssl as the independent verifier.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPalisade, runProcess, tempDir } from '../helpers/index.js';

test('ca init / issue / inspect, verified by openssl (root and intermediate)', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const root = join(tmp.path, 'root');
  let r = await runPalisade(['ca', 'init', '--dir', root, '--trust-domain', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(join(root, 'root-key.pem')).mode & 0o777, 0o600);

  const rootText = await runProcess('openssl', [
    'x509',
    '-in',
    join(root, 'root-cert.pem'),
    '-noout',
    '-text',
  ]);
  assert.match(rootText.stdout, /CA:TRUE/);
  assert.match(rootText.stdout, /Certificate Sign, CRL Sign/);
  assert.match(rootText.stdout, /prime256v1|P-256/);

  const out = join(tmp.path, 'web');
  r = await runPalisade([
    'ca',
    'issue',
    '--dir',
    root,
    '--spiffe-id',
    'spiffe://example.org/ns/default/sa/web',
    '--out',
    out,
    '--ttl',
    '1h',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(`${out}-key.pem`).mode & 0o777, 0o600);
  const verify = await runProcess('openssl', [
    'verify',
    '-CAfile',
    join(root, 'root-cert.pem'),
    `${out}-cert.pem`,
  ]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /OK/);
  const text = await runProcess('openssl', ['x509', '-in', `${out}-cert.pem`, '-noout', '-text']);
  assert.match(text.stdout, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web/);
  assert.match(text.stdout, /CA:FALSE/);
  assert.match(text.stdout, /Key Usage: critical\s+Digital Signature\n/);
  // The key matches the certificate.
  const certPub = await runProcess('openssl', [
    'x509',
    '-in',
    `${out}-cert.pem`,
    '-noout',
    '-pubkey',
  ]);
  const keyPub = await runProcess('openssl', ['pkey', '-in', `${out}-key.pem`, '-pubout']);
  assert.equal(certPub.stdout, keyPub.stdout);

  const inspect = await runPalisade(['ca', 'inspect', `${out}-cert.pem`, '-o', 'json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const info = JSON.parse(inspect.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(info).sort(), [
    'errors',
    'issuer',
    'notAfter',
    'notBefore',
    'serial',
    'spiffeId',
    'valid',
  ]);
  assert.equal(info['spiffeId'], 'spiffe://example.org/ns/default/sa/web');
  assert.equal(info['valid'], true);
  const lifetime = Date.parse(String(info['notAfter'])) - Date.parse(String(info['notBefore']));
  assert.ok(lifetime > 3600_000 && lifetime < 3600_000 + 120_000, `lifetime ${lifetime}`);

  // Intermediate under an offline root: the chain file holds leaf + intermediate.
  const inter = join(tmp.path, 'inter');
  r = await runPalisade(['ca', 'init', '--dir', inter, '--intermediate-of', root]);
  assert.equal(r.code, 0, r.stderr);
  const out2 = join(tmp.path, 'api');
  r = await runPalisade([
    'ca',
    'issue',
    '--dir',
    inter,
    '--spiffe-id',
    'spiffe://example.org/ns/prod/sa/api',
    '--out',
    out2,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const chain = readFileSync(`${out2}-cert.pem`, 'utf8');
  assert.equal(chain.match(/BEGIN CERTIFICATE/g)?.length, 2);
  const interPem = join(tmp.path, 'inter-only.pem');
  writeFileSync(interPem, chain.slice(chain.indexOf('-----BEGIN', 10)));
  const v2 = await runProcess('openssl', [
    'verify',
    '-CAfile',
    join(root, 'root-cert.pem'),
    '-untrusted',
    interPem,
    `${out2}-cert.pem`,
  ]);
  assert.equal(v2.code, 0, v2.stderr);
  // Without the intermediate, openssl cannot build the chain.
  const v3 = await runProcess('openssl', [
    'verify',
    '-CAfile',
    join(root, 'root-cert.pem'),
    `${out2}-cert.pem`,
  ]);
  assert.notEqual(v3.code, 0);
  const i2 = JSON.parse(
    (await runPalisade(['ca', 'inspect', `${out2}-cert.pem`, '-o', 'json'])).stdout,
  ) as { valid: boolean };
  assert.equal(i2.valid, true);
});

test('ca issue rejects an invalid SPIFFE ID with exit 2 naming the rule; refuses to overwrite a CA', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const root = join(tmp.path, 'root');
  assert.equal((await runPalisade(['ca', 'init', '--dir', root])).code, 0);
  for (const [id, rule] of [
    ['spiffe://cluster.local/ns/a/../b', '".." segments'],
    ['spiffe://Cluster.local/ns/a', 'lowercase'],
    ['spiffe://cluster.local/ns/a/', 'trailing'],
    ['https://cluster.local/ns/a', 'scheme'],
  ] as const) {
    const r = await runPalisade([
      'ca',
      'issue',
      '--dir',
      root,
      '--spiffe-id',
      id,
      '--out',
      join(tmp.path, 'x'),
    ]);
    assert.equal(r.code, 2, `${id}: ${r.stderr}`);
    assert.ok(r.stderr.includes(rule), `${id}: ${r.stderr}`);
  }
  const again = await runPalisade(['ca', 'init', '--dir', root]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /refusing to overwrite/);
  const missing = await runPalisade([
    'ca',
    'issue',
    '--dir',
    join(tmp.path, 'nope'),
    '--spiffe-id',
    'spiffe://cluster.local/a',
    '--out',
    join(tmp.path, 'y'),
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /PAL_ERR_CA_NOT_FOUND/);
});

test('ca inspect reports every X509-SVID violation of a non-SVID certificate', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const key = join(tmp.path, 'k.pem');
  const cert = join(tmp.path, 'c.pem');
  const r = await runProcess('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=plain',
    '-days',
    '1',
    '-addext',
    'subjectAltName=DNS:plain.example',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const inspect = await runPalisade(['ca', 'inspect', cert, '-o', 'json']);
  assert.equal(inspect.code, 1);
  const info = JSON.parse(inspect.stdout) as {
    valid: boolean;
    errors: string[];
    spiffeId: string | null;
  };
  assert.equal(info.valid, false);
  assert.equal(info.spiffeId, null);
  assert.ok(
    info.errors.some((e) => e.includes('exactly one URI SAN')),
    info.errors.join('\n'),
  );
  assert.ok(
    info.errors.some((e) => e.includes('must not be a CA')),
    info.errors.join('\n'),
  );
  const notPem = join(tmp.path, 'n.pem');
  writeFileSync(notPem, 'hello');
  assert.equal((await runPalisade(['ca', 'inspect', notPem])).code, 2);
});

test('spiffe validate --json answers every string in order, any bytes included', async () => {
  const input = [
    'spiffe://cluster.local/ns/a/sa/b',
    'spiffe://a/b/',
    '',
    'spiffe://a/\u0000',
    'spiffe://a/\u{1F600}',
    'spiffe://x.y/z',
  ];
  const r = await runPalisade(['spiffe', 'validate', '--json'], { input: JSON.stringify(input) });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { id: string; valid: boolean; error: string | null }[];
  assert.deepEqual(
    out.map((o) => o.id),
    input,
  );
  assert.deepEqual(
    out.map((o) => o.valid),
    [true, false, false, false, false, true],
  );
  for (const o of out) assert.equal(o.error === null, o.valid);
  const bad = await runPalisade(['spiffe', 'validate', '--json'], { input: '{"not":"an array"}' });
  assert.equal(bad.code, 2);
});
