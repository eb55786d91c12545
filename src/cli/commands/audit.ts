/**
 * `palisade audit` — finds risky configuration in Kubernetes and mesh
 * manifests (RBAC, Pod Security, NetworkPolicy coverage, mTLS and
 * AuthorizationPolicy gaps) and reports it as a table, JSON or SARIF 2.1.0.
 */
import { readFileSync } from 'node:fs';
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  AUDIT_RULES,
  auditCluster,
  clusterObjectsFrom,
  hasFindingAtOrAbove,
  manifestStartLines,
  SEVERITIES,
  toSarif,
  toTable,
  type Finding,
  type Severity,
} from '../../kubernetes/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade audit -f DIR [-o table|json|sarif] [--fail-on low|medium|high|critical] [--root-namespace NS]
  palisade audit pod-security ...   (see palisade audit pod-security --help)

Rules:
${AUDIT_RULES.map((r) => `  ${r.id.padEnd(20)} ${r.severity.padEnd(8)} ${r.description}`).join('\n')}

Mesh rules run when the manifests contain Istio objects or a namespace is
labelled for sidecar injection. Exit 1 when a finding is at or above
--fail-on; without --fail-on the exit status is 0.

Options:
  -f, --filename PATH      manifests (file or directory; repeatable)
  -o, --output FORMAT      table (default), json or sarif
      --fail-on SEVERITY   exit 1 on findings at or above this severity
      --root-namespace NS  Istio's root namespace (default istio-system)
`;

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8');
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'string' ? v : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const auditCommand: Command = {
  path: ['audit'],
  summary:
    'Audit Kubernetes and mesh manifests: RBAC, Pod Security, NetworkPolicy, mTLS, authz gaps',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values, positionals } = parseCommandArgs(args, {
        filename: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o' },
        'fail-on': { type: 'string' },
        'root-namespace': { type: 'string' },
      });
      if (positionals.length > 0) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `unknown audit subcommand ${JSON.stringify(positionals[0])} (did you mean pod-security?)`,
        );
      }
      const files = values.filename ?? [];
      if (files.length === 0)
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      const output = values.output ?? 'table';
      if (!['table', 'json', 'sarif'].includes(output)) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--output must be table, json or sarif, not ${JSON.stringify(output)}`,
        );
      }
      const failOn = values['fail-on'];
      if (failOn !== undefined && !(SEVERITIES as readonly string[]).includes(failOn)) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--fail-on must be one of ${SEVERITIES.join(', ')}, not ${JSON.stringify(failOn)}`,
        );
      }
      const objects = clusterObjectsFrom(readManifests(files));
      const findings = auditCluster(
        objects,
        values['root-namespace'] === undefined ? {} : { rootNamespace: values['root-namespace'] },
      );
      if (output === 'json') io.stdout(`${JSON.stringify(findings, null, 2)}\n`);
      else if (output === 'sarif') {
        const lines = new Map<string, number[]>();
        const lineOf = (f: Finding): number | undefined => {
          if (f.file === '' || f.index === undefined) return undefined;
          let starts = lines.get(f.file);
          if (starts === undefined) {
            starts = manifestStartLines(readFileSync(f.file, 'utf8'));
            lines.set(f.file, starts);
          }
          return starts[f.index];
        };
        io.stdout(`${JSON.stringify(toSarif(findings, packageVersion(), lineOf), null, 2)}\n`);
      } else io.stdout(toTable(findings));
      return failOn !== undefined && hasFindingAtOrAbove(findings, failOn as Severity) ? 1 : 0;
    }),
};
