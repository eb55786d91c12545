/**
 * `palisade auth who-can` — the reverse of can-i: every subject the RBAC
 * manifests allow to do something, with the binding and role that let it.
 */
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  clusterObjectsFrom,
  createRbacAuthorizer,
  resolveResource,
} from '../../kubernetes/index.js';

import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade auth who-can VERB RESOURCE[/SUBRESOURCE] [NAME] -f RBAC_FILE_OR_DIR [-n NS] [-o json]
  palisade auth who-can VERB /NON/RESOURCE/URL -f RBAC_FILE_OR_DIR [-o json]

Lists every subject (User, Group, ServiceAccount) that a binding allows to
make the request, with the binding and role, in Kubernetes' visiting order.
Namespace handling is as in auth can-i. Exit 0.

Options:
  -f, --filename PATH     RBAC manifests (file or directory; repeatable)
  -n, --namespace NS      the namespace of the request
  -A, --all-namespaces    ask at cluster scope
  -o, --output FORMAT     text (default) or json
`;

export const authWhoCanCommand: Command = {
  path: ['auth', 'who-can'],
  summary: 'List the subjects Kubernetes RBAC manifests allow to do something',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values, positionals } = parseCommandArgs(args, {
        filename: { type: 'string', short: 'f', multiple: true },
        namespace: { type: 'string', short: 'n' },
        'all-namespaces': { type: 'boolean', short: 'A' },
        output: { type: 'string', short: 'o' },
      });
      const files = values.filename ?? [];
      if (files.length === 0) {
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      }
      const output = values.output ?? 'text';
      if (output !== 'text' && output !== 'json') {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--output must be text or json, not ${JSON.stringify(output)}`,
        );
      }
      const [verb, target, name, ...extra] = positionals;
      if (verb === undefined || target === undefined || extra.length > 0) {
        throw new PalisadeError('PAL_ERR_USAGE', 'expected VERB RESOURCE[/SUBRESOURCE] [NAME]');
      }
      const objects = clusterObjectsFrom(readManifests(files));
      const authz = createRbacAuthorizer({ roles: objects.roles, bindings: objects.bindings });
      let grants;
      if (target.startsWith('/')) grants = authz.whoCan({ verb, nonResourceURL: target });
      else {
        const slash = target.indexOf('/');
        const r = resolveResource(slash < 0 ? target : target.slice(0, slash));
        grants = authz.whoCan({
          verb,
          apiGroup: r.apiGroup,
          resource: r.resource,
          subresource: slash < 0 ? '' : target.slice(slash + 1),
          name: name ?? '',
          namespace:
            values['all-namespaces'] === true || r.clusterScoped
              ? ''
              : (values.namespace ?? 'default'),
        });
      }
      if (output === 'json') io.stdout(`${JSON.stringify(grants, null, 2)}\n`);
      else if (grants.length === 0) io.stdout('nobody\n');
      else for (const g of grants) io.stdout(`${g.via}\n`);
      return 0;
    }),
};
