/**
 * `palisade analyze -f DIR` — lint mesh configuration like `istioctl analyze`:
 * one line per finding with a stable code, exit 1 when any is an Error.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { listManifestFiles, parseManifests, type Manifest } from '../../api/index.js';
import { analyzeManifests, formatFinding, type Finding } from '../../control/analyze/index.js';
import { PalisadeError } from '../../errors/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

export const analyzeCommand: Command = {
  path: ['analyze'],
  summary: 'Lint mesh configuration (istioctl analyze style, stable PAL codes)',
  usage: `Usage: palisade analyze -f DIR|FILE [-f ...] [-o json] [--root-namespace istio-system]

Validates every object (schema and Istio's rules) and checks what one object
cannot: hosts, subsets and gateways that are referenced but not defined,
selectors matching no workload, VirtualServices claiming the same host,
unreachable rules, TLS without server verification, mTLS weaker than the
mesh-wide STRICT policy, Service port naming. Prints
  Error [PAL0101] (VirtualService default/reviews) Referenced host not found: "ratings2"
per finding (codes in docs/analyze.md); exits 1 when any finding is an Error.`,
  run: (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        file: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o' },
        'root-namespace': { type: 'string' },
      },
      false,
    );
    const paths = (values.file ?? []).map((f) => resolve(io.cwd, f));
    if (paths.length === 0) throw new PalisadeError('PAL_ERR_USAGE', 'missing -f DIR|FILE');
    if (values.output !== undefined && values.output !== 'json')
      throw new PalisadeError('PAL_ERR_USAGE', `-o ${values.output}: expected json`);
    const manifests: Manifest[] = [];
    const findings: Finding[] = [];
    for (const file of paths.flatMap((p) => listManifestFiles(p))) {
      try {
        manifests.push(...parseManifests(readFileSync(file, 'utf8'), file));
      } catch (error) {
        findings.push({
          level: 'Error',
          code: 'PAL0001',
          kind: 'File',
          namespace: '',
          name: file,
          message: `Schema validation error: ${error instanceof Error ? error.message : String(error)}`,
          file,
        });
      }
    }
    findings.push(
      ...analyzeManifests(
        manifests,
        values['root-namespace'] === undefined ? {} : { rootNamespace: values['root-namespace'] },
      ),
    );
    if (values.output === 'json') io.stdout(`${JSON.stringify(findings, null, 2)}\n`);
    else if (findings.length === 0)
      io.stdout(`✔ No validation issues found when analyzing ${(values.file ?? []).join(', ')}.\n`);
    else for (const f of findings) io.stdout(`${formatFinding(f)}\n`);
    return Promise.resolve(findings.some((f) => f.level === 'Error') ? 1 : 0);
  },
};
