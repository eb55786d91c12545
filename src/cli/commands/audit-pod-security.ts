/**
 * `palisade audit pod-security` — checks every Pod and pod template
 * (Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, …) in the
 * files against a Pod Security Standards level and version, with
 * Kubernetes' own check names and messages.
 */
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  clusterObjectsFrom,
  evaluatePodSecurity,
  formatLevelVersion,
  LATEST_KNOWN_VERSION,
  parseLevel,
  parseVersion,
  violationMessage,
} from '../../kubernetes/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade audit pod-security -f FILE_OR_DIR --level baseline|restricted [--version v1.N|latest] [-o json]

Evaluates each Pod and pod template against the Pod Security Standards as
Kubernetes' pod-security admission does, versioned like Kubernetes (v1.0 …
latest; latest is ${LATEST_KNOWN_VERSION} and newer). Exit 0 when every pod is
allowed, 1 otherwise.

Options:
  -f, --filename PATH   manifests (file or directory; repeatable)
      --level LEVEL     baseline or restricted (privileged allows everything)
      --version V       v1.N or latest (default latest)
  -o, --output FORMAT   text (default) or json: [{file, kind, name, namespace,
                        allowed, violations: [{check, message}]}]
`;

export const auditPodSecurityCommand: Command = {
  path: ['audit', 'pod-security'],
  summary: 'Check pods and pod templates against a Pod Security Standards level',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values } = parseCommandArgs(
        args,
        {
          filename: { type: 'string', short: 'f', multiple: true },
          level: { type: 'string' },
          version: { type: 'string' },
          output: { type: 'string', short: 'o' },
        },
        false,
      );
      const files = values.filename ?? [];
      if (files.length === 0)
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      const level = parseLevel(values.level ?? '');
      if (level === undefined) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--level must be baseline, restricted or privileged, not ${JSON.stringify(values.level ?? '')}`,
        );
      }
      const version = parseVersion(values.version ?? 'latest');
      if (version === undefined) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--version must be "latest" or "v1.N", not ${JSON.stringify(values.version)}`,
        );
      }
      const output = values.output ?? 'text';
      if (output !== 'text' && output !== 'json') {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--output must be text or json, not ${JSON.stringify(output)}`,
        );
      }
      const lv = { level, version };
      const objects = clusterObjectsFrom(readManifests(files));
      const results = objects.podSources.map((p) => {
        const r = evaluatePodSecurity(lv, p.template.metadata, p.template.spec);
        return {
          file: p.file,
          kind: p.kind,
          name: p.name,
          namespace: p.namespace ?? null,
          allowed: r.allowed,
          violations: r.violations.map((v) => ({ check: v.check, message: v.message })),
          ...(r.allowed ? {} : { message: violationMessage(lv, r.violations) }),
        };
      });
      if (output === 'json') io.stdout(`${JSON.stringify(results, null, 2)}\n`);
      else {
        for (const r of results) {
          const what = `${r.file}: ${r.kind} ${r.namespace === null ? '' : `${r.namespace}/`}${r.name}`;
          io.stdout(
            r.allowed
              ? `${what}: allowed by ${formatLevelVersion(lv)}\n`
              : `${what}: ${r.message ?? ''}\n`,
          );
        }
        if (results.length === 0) io.stdout('no pods or pod templates found\n');
      }
      return results.every((r) => r.allowed) ? 0 : 1;
    }),
};
