/**
 * `palisade auth covers` — the API server's escalation check offline: does
 * role A hold every permission of role B (Kubernetes' `Covers`)? Someone
 * holding only A could not create or bind B without the `escalate` or
 * `bind` verb.
 */
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  clusterObjectsFrom,
  compactRuleString,
  createRbacAuthorizer,
  roleCovers,
  type RbacAuthorizer,
} from '../../kubernetes/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade auth covers OWNER_ROLE ROLE -f RBAC_FILE_OR_DIR [-o json]

Roles are written clusterrole/NAME or role/NAMESPACE/NAME (aggregated
ClusterRoles use their aggregated rules). Prints "yes" (exit 0) when
OWNER_ROLE covers every permission of ROLE, else "no" and the permissions it
lacks, in Kubernetes' words (exit 1).

Options:
  -f, --filename PATH     RBAC manifests (file or directory; repeatable)
  -o, --output FORMAT     text (default) or json: {covered, uncovered}
`;

function rulesOf(authz: RbacAuthorizer, ref: string) {
  const parts = ref.split('/');
  const kind = parts[0]?.toLowerCase();
  const rules =
    kind === 'clusterrole' && parts.length === 2
      ? authz.roleRules('ClusterRole', parts[1] ?? '')
      : kind === 'role' && parts.length === 3
        ? authz.roleRules('Role', parts[2] ?? '', parts[1])
        : undefined;
  if (rules === undefined) {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `${JSON.stringify(ref)}: no such role (write clusterrole/NAME or role/NAMESPACE/NAME)`,
    );
  }
  return rules;
}

export const authCoversCommand: Command = {
  path: ['auth', 'covers'],
  summary: 'Check whether one RBAC role covers another (the escalation check)',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values, positionals } = parseCommandArgs(args, {
        filename: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o' },
      });
      const files = values.filename ?? [];
      if (files.length === 0) {
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      }
      const [owner, servant, ...extra] = positionals;
      if (owner === undefined || servant === undefined || extra.length > 0) {
        throw new PalisadeError('PAL_ERR_USAGE', 'expected OWNER_ROLE ROLE');
      }
      const objects = clusterObjectsFrom(readManifests(files));
      const authz = createRbacAuthorizer({ roles: objects.roles, bindings: objects.bindings });
      const r = roleCovers(rulesOf(authz, owner), rulesOf(authz, servant));
      if (values.output === 'json') io.stdout(`${JSON.stringify(r, null, 2)}\n`);
      else {
        io.stdout(r.covered ? 'yes\n' : 'no\n');
        for (const rule of r.uncovered) io.stdout(`  missing ${compactRuleString(rule)}\n`);
      }
      return r.covered ? 0 : 1;
    }),
};
