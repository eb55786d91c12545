/**
 * `palisade ca init|issue|inspect|serve|token` — Palisade's certificate
 * authority from the command line (docs/identity.md).
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import {
  exportPrivateKeyPem,
  generateKeyPair,
  initCaDirectory,
  inspectSvid,
  issueSvid,
  loadCaDirectory,
  parseDuration,
  parseSpiffeId,
  startCaServer,
} from '../../identity/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { CliIO, Command } from '../command.js';

function readFile(path: string, io: CliIO): string {
  const p = resolve(io.cwd, path);
  if (!existsSync(p)) throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: no such file`);
  return readFileSync(p, 'utf8');
}

export const caInitCommand: Command = {
  path: ['ca', 'init'],
  summary: 'Create a CA: a root (or load yours), or an intermediate under an offline root',
  usage: `Usage: palisade ca init --dir DIR [--trust-domain TD] [--ttl DURATION]
       palisade ca init --dir DIR --root-cert FILE --root-key FILE [--trust-domain TD]
       palisade ca init --dir DIR --intermediate-of ROOTDIR [--ttl DURATION]

Writes DIR/root-cert.pem and DIR/root-key.pem (mode 0600): an ECDSA P-256
self-signed root (CA:true, keyCertSign|cRLSign) for the trust domain
(default cluster.local), valid for --ttl (default 87600h). With
--intermediate-of, DIR gets ca-cert.pem/ca-key.pem signed by ROOTDIR's root
and a copy of root-cert.pem, so ROOTDIR (the root key) can stay offline.
Also writes token-key.pem (signs service-account tokens) and ca.json.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        dir: { type: 'string' },
        'trust-domain': { type: 'string' },
        ttl: { type: 'string' },
        'root-cert': { type: 'string' },
        'root-key': { type: 'string' },
        'intermediate-of': { type: 'string' },
      },
      false,
    );
    const dir = resolve(io.cwd, requireOption(values.dir, '--dir'));
    const td = values['trust-domain'];
    if (td !== undefined) {
      const r = parseSpiffeId(`spiffe://${td}`);
      if (!r.ok || r.id.path !== '') {
        throw new PalisadeError(
          'PAL_ERR_SPIFFE_ID_INVALID',
          `invalid trust domain ${JSON.stringify(td)}: ${r.ok ? 'must not contain "/"' : r.error}`,
        );
      }
    }
    const result = await initCaDirectory(dir, {
      ...(td === undefined ? {} : { trustDomain: td }),
      ...(values.ttl === undefined ? {} : { ttlMs: parseDuration(values.ttl) }),
      ...(values['root-cert'] === undefined
        ? {}
        : { rootCertPem: readFile(values['root-cert'], io) }),
      ...(values['root-key'] === undefined ? {} : { rootKeyPem: readFile(values['root-key'], io) }),
      ...(values['intermediate-of'] === undefined
        ? {}
        : { intermediateOf: resolve(io.cwd, values['intermediate-of']) }),
    });
    io.stdout(`CA for trust domain ${result.trustDomain} in ${dir}: ${result.files.join(', ')}\n`);
    return 0;
  },
};

export const caIssueCommand: Command = {
  path: ['ca', 'issue'],
  summary: 'Issue an X509-SVID for a SPIFFE ID (key generated here)',
  usage: `Usage: palisade ca issue --dir DIR --spiffe-id ID --out PREFIX [--ttl 1h]

Writes PREFIX-cert.pem (the leaf, then the intermediate if DIR has one) and
PREFIX-key.pem (mode 0600). The ID must be a valid SPIFFE ID with a path;
an invalid ID exits 2 naming the rule it breaks. Default TTL 24h.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        dir: { type: 'string' },
        'spiffe-id': { type: 'string' },
        out: { type: 'string' },
        ttl: { type: 'string' },
      },
      false,
    );
    const id = requireOption(values['spiffe-id'], '--spiffe-id');
    const parsed = parseSpiffeId(id);
    if (!parsed.ok)
      throw new PalisadeError(
        'PAL_ERR_SPIFFE_ID_INVALID',
        `invalid SPIFFE ID ${JSON.stringify(id)}: ${parsed.error}`,
      );
    const out = resolve(io.cwd, requireOption(values.out, '--out'));
    const ttlMs = values.ttl === undefined ? undefined : parseDuration(values.ttl);
    const ca = await loadCaDirectory(resolve(io.cwd, requireOption(values.dir, '--dir')));
    if (parsed.id.trustDomain !== ca.trustDomain) {
      throw new PalisadeError(
        'PAL_ERR_SPIFFE_ID_INVALID',
        `SPIFFE ID ${id} is outside this CA's trust domain ${ca.trustDomain}`,
      );
    }
    const keys = await generateKeyPair(true);
    const issued = await issueSvid(ca.signer, {
      spiffeId: id,
      publicKey: keys.publicKey,
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
    writeFileSync(`${out}-cert.pem`, issued.certChainPem);
    writeFileSync(`${out}-key.pem`, await exportPrivateKeyPem(keys.privateKey), { mode: 0o600 });
    chmodSync(`${out}-key.pem`, 0o600);
    io.stdout(
      `issued ${id} serial ${issued.serial} until ${issued.notAfter.toISOString()}: ${out}-cert.pem ${out}-key.pem\n`,
    );
    return 0;
  },
};

export const caInspectCommand: Command = {
  path: ['ca', 'inspect'],
  summary: "Show a certificate's SPIFFE ID, serial, validity and whether it is a valid X509-SVID",
  usage: `Usage: palisade ca inspect FILE [-o json]

Reads the first certificate in FILE (a chain after it is verified too) and
prints SPIFFE ID, serial, issuer, not before/after, and every way it breaks
the X509-SVID standard. JSON keys: spiffeId, serial, issuer, notBefore,
notAfter, valid, errors. Exit 0 when valid, 1 when not.`,
  run: async (args, io) => {
    const { values, positionals } = parseCommandArgs(args, {
      output: { type: 'string', short: 'o' },
    });
    const file = positionals[0];
    if (file === undefined || positionals.length > 1)
      throw new PalisadeError('PAL_ERR_USAGE', 'expected exactly one FILE');
    const pem = readFile(file, io);
    let result;
    try {
      result = await inspectSvid(pem);
    } catch (cause) {
      throw new PalisadeError(
        'PAL_ERR_CERT_INVALID',
        `${file}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
    const out = {
      spiffeId: result.spiffeId,
      serial: result.serial,
      issuer: result.issuer,
      notBefore: result.notBefore,
      notAfter: result.notAfter,
      valid: result.valid,
      errors: result.errors,
    };
    if (values.output === 'json') {
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else if (values.output === undefined || values.output === 'text') {
      io.stdout(
        [
          `SPIFFE ID:  ${out.spiffeId ?? '(none)'}`,
          `Serial:     ${out.serial}`,
          `Issuer:     ${out.issuer}`,
          `Not before: ${out.notBefore}`,
          `Not after:  ${out.notAfter}`,
          `Valid SVID: ${out.valid ? 'yes' : 'no'}`,
          ...out.errors.map((e) => `  - ${e}`),
          '',
        ].join('\n'),
      );
    } else {
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `unknown output format ${JSON.stringify(values.output)} (use json or text)`,
      );
    }
    return out.valid ? 0 : 1;
  },
};

export const caServeCommand: Command = {
  path: ['ca', 'serve'],
  summary: 'Run the CSR signing service (HTTPS) for the CA in DIR',
  usage: `Usage: palisade ca serve --dir DIR [--listen 127.0.0.1:15012]

POST /v1/sign with "Authorization: Bearer <service-account token>" and
{"csr": PEM}. Signs only the SPIFFE ID the token's service account entitles.
Runs until interrupted.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      { dir: { type: 'string' }, listen: { type: 'string' } },
      false,
    );
    const ca = await loadCaDirectory(resolve(io.cwd, requireOption(values.dir, '--dir')));
    const listen = values.listen ?? '127.0.0.1:15012';
    const m = /^(.*):(\d+)$/.exec(listen);
    if (m === null)
      throw new PalisadeError('PAL_ERR_USAGE', `--listen ${listen}: expected HOST:PORT`);
    const server = await startCaServer({
      ca,
      host: (m[1] ?? '').replace(/^\[|\]$/g, ''),
      port: Number(m[2]),
    });
    io.stdout(`CA listening on ${server.url} (trust domain ${ca.trustDomain})\n`);
    await new Promise<void>((resolveStop) => {
      const stop = (): void => {
        void server.close().then(resolveStop);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};

export const caTokenCommand: Command = {
  path: ['ca', 'token'],
  summary: 'Mint a service-account token (the credential for CSRs) signed by the CA in DIR',
  usage: `Usage: palisade ca token --dir DIR --namespace NS --service-account SA [--audience palisade-ca] [--ttl 24h]`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        dir: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        'service-account': { type: 'string' },
        audience: { type: 'string' },
        ttl: { type: 'string' },
      },
      false,
    );
    const ca = await loadCaDirectory(resolve(io.cwd, requireOption(values.dir, '--dir')));
    const token = await ca.tokens.mint({
      namespace: requireOption(values.namespace, '--namespace'),
      serviceAccount: requireOption(values['service-account'], '--service-account'),
      ...(values.audience === undefined ? {} : { audience: values.audience }),
      ...(values.ttl === undefined ? {} : { ttlMs: parseDuration(values.ttl) }),
    });
    io.stdout(`${token}\n`);
    return 0;
  },
};

export const spiffeValidateCommand: Command = {
  path: ['spiffe', 'validate'],
  summary: 'Validate SPIFFE IDs (a JSON array on stdin) against the SPIFFE-ID standard',
  usage: `Usage: palisade spiffe validate --json

Reads a JSON array of strings on stdin and prints a JSON array of
{"id", "valid", "error"} in the same order; error names the rule broken.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(args, { json: { type: 'boolean' } }, false);
    if (values.json !== true)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        'spiffe validate needs --json (input and output are JSON)',
      );
    const text = (await io.readStdin()).toString('utf8');
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch (cause) {
      throw new PalisadeError(
        'PAL_ERR_YAML_PARSE',
        `stdin is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
    }
    if (!Array.isArray(input))
      throw new PalisadeError('PAL_ERR_USAGE', 'stdin must be a JSON array of strings');
    const out = input.map((item: unknown, i) => {
      if (typeof item !== 'string')
        throw new PalisadeError('PAL_ERR_USAGE', `element ${i} is not a string`);
      const r = parseSpiffeId(item);
      return { id: item, valid: r.ok, error: r.ok ? null : r.error };
    });
    io.stdout(`${JSON.stringify(out)}\n`);
    return 0;
  },
};
