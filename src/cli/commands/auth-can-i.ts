/**
 * `palisade auth can-i` — asks the RBAC authorizer, like `kubectl auth can-i`
 * against a cluster, but over RBAC manifests on disk. Prints `yes` (exit 0)
 * or `no` (exit 1); `--requests FILE -o json` answers many requests at once.
 */
import { readFileSync } from 'node:fs';
import { readManifests } from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  authenticatedUser,
  clusterObjectsFrom,
  createRbacAuthorizer,
  formatRuleTable,
  resolveResource,
  ruleRows,
  type RequestAttributes,
} from '../../kubernetes/index.js';

import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage:
  palisade auth can-i VERB RESOURCE[/SUBRESOURCE] [NAME] -f RBAC_FILE_OR_DIR --as USER [--as-group G ...] [-n NS]
  palisade auth can-i VERB /NON/RESOURCE/URL -f RBAC_FILE_OR_DIR --as USER [--as-group G ...]
  palisade auth can-i --requests REQUESTS.json -f RBAC_FILE_OR_DIR -o json
  palisade auth can-i --list -f RBAC_FILE_OR_DIR --as USER [-n NS] [-o json]

Decides with Kubernetes RBAC (Role, ClusterRole with aggregation, RoleBinding,
ClusterRoleBinding) read from the files. Prints "yes" (exit 0) or "no" (exit 1),
like kubectl. RESOURCE may name its group (deployments.apps); common resources
know their group. Without -n, namespaced resources are checked in "default"
(kubectl's default) and cluster-scoped ones at cluster scope; -A checks at
cluster scope only. Users get the groups the API server adds:
system:authenticated, and for system:serviceaccount:NS:NAME also
system:serviceaccounts and system:serviceaccounts:NS.

Options:
  -f, --filename PATH     RBAC manifests (file or directory; repeatable)
      --as USER           the user to ask for
      --as-group GROUP    a group of the user (repeatable)
  -n, --namespace NS      the namespace of the request
  -A, --all-namespaces    ask at cluster scope
      --requests FILE     a JSON array of {user, groups, verb, apiGroup, resource,
                          subresource, name, namespace, nonResourceURL}
  -o, --output json       with --requests: print [{allowed, reason}] in order
      --list              list everything the user may do in the namespace
                          (cluster-wide grants included), like kubectl
  -v, --verbose           print the reason after yes/no
`;

type Json = Record<string, unknown>;

function requestFromJson(entry: unknown, i: number): RequestAttributes {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new PalisadeError(
      'PAL_ERR_K8S_REQUEST_INVALID',
      `requests[${String(i)}]: must be an object`,
    );
  }
  const e = entry as Json;
  const str = (k: string, required = false): string => {
    const v = e[k];
    if (v === undefined || v === null) {
      if (required)
        throw new PalisadeError(
          'PAL_ERR_K8S_REQUEST_INVALID',
          `requests[${String(i)}].${k}: required field is missing`,
        );
      return '';
    }
    if (typeof v !== 'string')
      throw new PalisadeError(
        'PAL_ERR_K8S_REQUEST_INVALID',
        `requests[${String(i)}].${k}: must be string`,
      );
    return v;
  };
  const groupsRaw = e['groups'] ?? [];
  if (!Array.isArray(groupsRaw) || groupsRaw.some((g) => typeof g !== 'string')) {
    throw new PalisadeError(
      'PAL_ERR_K8S_REQUEST_INVALID',
      `requests[${String(i)}].groups: must be an array of strings`,
    );
  }
  return {
    user: authenticatedUser(str('user', true), groupsRaw as string[]),
    verb: str('verb', true),
    apiGroup: str('apiGroup'),
    resource: str('resource'),
    subresource: str('subresource'),
    name: str('name'),
    namespace: str('namespace'),
    nonResourceURL: str('nonResourceURL'),
  };
}

export const authCanICommand: Command = {
  path: ['auth', 'can-i'],
  summary: 'Check whether a user may do something under Kubernetes RBAC manifests',
  usage: USAGE,
  run: (args, io) =>
    Promise.resolve().then(() => {
      const { values, positionals } = parseCommandArgs(args, {
        filename: { type: 'string', short: 'f', multiple: true },
        as: { type: 'string' },
        'as-group': { type: 'string', multiple: true },
        namespace: { type: 'string', short: 'n' },
        'all-namespaces': { type: 'boolean', short: 'A' },
        requests: { type: 'string' },
        output: { type: 'string', short: 'o' },
        verbose: { type: 'boolean', short: 'v' },
        list: { type: 'boolean' },
      });
      const files = values.filename ?? [];
      if (files.length === 0)
        throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f/--filename');
      const objects = clusterObjectsFrom(readManifests(files));
      const authz = createRbacAuthorizer({ roles: objects.roles, bindings: objects.bindings });

      if (values.list === true) {
        const user = authenticatedUser(requireOption(values.as, '--as'), values['as-group'] ?? []);
        const namespace = values['all-namespaces'] === true ? '' : (values.namespace ?? 'default');
        const rows = ruleRows(authz.rulesFor(user, namespace));
        if (values.output === 'json') io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
        else io.stdout(formatRuleTable(rows));
        return 0;
      }

      if (values.requests !== undefined) {
        if (values.output !== undefined && values.output !== 'json') {
          throw new PalisadeError(
            'PAL_ERR_USAGE',
            `--output must be json with --requests, not ${JSON.stringify(values.output)}`,
          );
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(readFileSync(values.requests, 'utf8'));
        } catch (cause) {
          throw new PalisadeError(
            'PAL_ERR_K8S_REQUEST_INVALID',
            `${values.requests}: ${cause instanceof Error ? cause.message : String(cause)}`,
            { cause },
          );
        }
        if (!Array.isArray(parsed)) {
          throw new PalisadeError(
            'PAL_ERR_K8S_REQUEST_INVALID',
            `${values.requests}: must be a JSON array of requests`,
          );
        }
        const answers = (parsed as unknown[]).map((entry, i) =>
          authz.authorize(requestFromJson(entry, i)),
        );
        io.stdout(`${JSON.stringify(answers, null, 2)}\n`);
        return 0;
      }

      const [verb, target, name, ...extra] = positionals;
      if (verb === undefined || target === undefined) {
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          'expected VERB and RESOURCE (or a non-resource URL)',
        );
      }
      if (extra.length > 0)
        throw new PalisadeError('PAL_ERR_USAGE', `unexpected argument ${JSON.stringify(extra[0])}`);
      const user = authenticatedUser(requireOption(values.as, '--as'), values['as-group'] ?? []);
      let request: RequestAttributes;
      if (target.startsWith('/')) {
        if (name !== undefined)
          throw new PalisadeError('PAL_ERR_USAGE', 'a non-resource URL takes no NAME');
        request = { user, verb, nonResourceURL: target };
      } else {
        const slash = target.indexOf('/');
        const resText = slash < 0 ? target : target.slice(0, slash);
        const subresource = slash < 0 ? '' : target.slice(slash + 1);
        const r = resolveResource(resText);
        const namespace =
          values['all-namespaces'] === true || r.clusterScoped
            ? ''
            : (values.namespace ?? 'default');
        request = {
          user,
          verb,
          apiGroup: r.apiGroup,
          resource: r.resource,
          subresource,
          name: name ?? '',
          namespace,
        };
      }
      const d = authz.authorize(request);
      const verbose = values.verbose === true && d.reason !== '';
      if (d.allowed) io.stdout(verbose ? `yes - ${d.reason}\n` : 'yes\n');
      else io.stdout(d.reason !== '' ? `no - ${d.reason}\n` : 'no\n');
      return d.allowed ? 0 : 1;
    }),
};
