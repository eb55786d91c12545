/**
 * The audit log: `--audit-policy-file` (an `audit.k8s.io/v1` Policy) decides
 * per request a level — None, Metadata, Request, RequestResponse — by its
 * first matching rule (users, userGroups, verbs, resources with group,
 * resources and resourceNames, namespaces, nonResourceURLs); no match is
 * None. `--audit-log-path` receives one JSON line per stage of each
 * audited request, an `audit.k8s.io/v1` Event: RequestReceived (unless
 * omitted) and ResponseComplete (ResponseStarted for watches), with
 * requestObject at Request and above and responseObject at
 * RequestResponse, and the annotations the chain added
 * (authorization.k8s.io/decision and /reason, pod-security.kubernetes.io/*,
 * admission webhooks' audit annotations). `-` writes to stdout.
 *
 * Kubernetes: "Auditing"; k8s.io/apiserver/pkg/apis/audit/v1.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { PalisadeError } from '../errors/index.js';
import type { AuthUser } from './authn.js';
import type { RequestInfo } from './request-info.js';

export type AuditLevel = 'None' | 'Metadata' | 'Request' | 'RequestResponse';
const LEVELS: readonly AuditLevel[] = ['None', 'Metadata', 'Request', 'RequestResponse'];
const STAGES = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

interface Rule {
  readonly level: AuditLevel;
  readonly users?: readonly string[];
  readonly userGroups?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resources?: readonly { group: string; resources: string[]; resourceNames: string[] }[];
  readonly namespaces?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
  readonly omitStages?: readonly string[];
}

export interface AuditPolicy {
  readonly rules: readonly Rule[];
  readonly omitStages: readonly string[];
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

/** Reads and validates a Policy file; errors name the field path. */
export function readAuditPolicy(path: string): AuditPolicy {
  let doc: Record<string, unknown>;
  try {
    doc = rec(parseYaml(readFileSync(path, 'utf8')));
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `--audit-policy-file ${path}: cannot read`, {
      cause,
    });
  }
  const bad = (field: string, msg: string): PalisadeError =>
    new PalisadeError('PAL_ERR_CONFIG_INVALID', `--audit-policy-file ${path}: ${field}: ${msg}`);
  if (doc.apiVersion !== 'audit.k8s.io/v1' || doc.kind !== 'Policy')
    throw bad('apiVersion/kind', 'expected audit.k8s.io/v1 Policy');
  const list = (v: unknown, field: string): string[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw bad(field, 'expected a list of strings');
    return v as string[];
  };
  const stages = (v: unknown, field: string): string[] => {
    const s = list(v, field) ?? [];
    for (const [i, x] of s.entries())
      if (!STAGES.includes(x))
        throw bad(`${field}[${String(i)}]`, `Unsupported value: ${JSON.stringify(x)}`);
    return s;
  };
  const rawRules = Array.isArray(doc.rules) ? doc.rules : [];
  const rules = rawRules.map((raw, i): Rule => {
    const r = rec(raw);
    const at = `rules[${String(i)}]`;
    if (!LEVELS.includes(r.level as AuditLevel))
      throw bad(
        `${at}.level`,
        `Unsupported value: ${JSON.stringify(r.level ?? '')}: supported values: "None", "Metadata", "Request", "RequestResponse"`,
      );
    const users = list(r.users, `${at}.users`);
    const userGroups = list(r.userGroups, `${at}.userGroups`);
    const verbs = list(r.verbs, `${at}.verbs`);
    const namespaces = list(r.namespaces, `${at}.namespaces`);
    const nonResourceURLs = list(r.nonResourceURLs, `${at}.nonResourceURLs`);
    const resources =
      r.resources === undefined
        ? undefined
        : (Array.isArray(r.resources) ? r.resources : []).map((g, j) => {
            const gr = rec(g);
            return {
              group: typeof gr.group === 'string' ? gr.group : '',
              resources: list(gr.resources, `${at}.resources[${String(j)}].resources`) ?? [],
              resourceNames:
                list(gr.resourceNames, `${at}.resources[${String(j)}].resourceNames`) ?? [],
            };
          });
    return {
      level: r.level as AuditLevel,
      ...(users === undefined ? {} : { users }),
      ...(userGroups === undefined ? {} : { userGroups }),
      ...(verbs === undefined ? {} : { verbs }),
      ...(namespaces === undefined ? {} : { namespaces }),
      ...(nonResourceURLs === undefined ? {} : { nonResourceURLs }),
      ...(resources === undefined ? {} : { resources }),
      omitStages: stages(r.omitStages, `${at}.omitStages`),
    };
  });
  return { rules, omitStages: stages(doc.omitStages, 'omitStages') };
}

/** The policy's decision for one request: level and the stages left out. */
export function auditLevel(
  policy: AuditPolicy,
  user: AuthUser | undefined,
  info: RequestInfo,
): { level: AuditLevel; omitStages: readonly string[] } {
  for (const r of policy.rules) {
    if (r.users !== undefined && !r.users.includes(user?.name ?? '')) continue;
    if (r.userGroups !== undefined && !r.userGroups.some((g) => user?.groups.includes(g) === true))
      continue;
    if (r.verbs !== undefined && !r.verbs.includes(info.verb)) continue;
    if (info.isResourceRequest) {
      if (
        r.nonResourceURLs !== undefined &&
        r.resources === undefined &&
        r.namespaces === undefined
      )
        continue;
      if (r.namespaces !== undefined && !r.namespaces.includes(info.namespace)) continue;
      if (r.resources !== undefined) {
        const full =
          info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
        const hit = r.resources.some(
          (g) =>
            g.group === info.apiGroup &&
            (g.resources.length === 0 ||
              g.resources.some(
                (x) =>
                  x === full ||
                  x === '*' ||
                  (x.startsWith('*/') && x.slice(2) === info.subresource) ||
                  (x.endsWith('/*') && x.slice(0, -2) === info.resource),
              )) &&
            (g.resourceNames.length === 0 || g.resourceNames.includes(info.name)),
        );
        if (!hit) continue;
      }
    } else {
      if (r.resources !== undefined || r.namespaces !== undefined) continue;
      if (
        r.nonResourceURLs !== undefined &&
        !r.nonResourceURLs.some((u) =>
          u.endsWith('*') ? info.path.startsWith(u.slice(0, -1)) : u === info.path,
        )
      )
        continue;
    }
    return { level: r.level, omitStages: [...policy.omitStages, ...(r.omitStages ?? [])] };
  }
  return { level: 'None', omitStages: policy.omitStages };
}

/** RFC 3339 with microseconds, as metav1.MicroTime serialises. */
export function microTime(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}

export interface AuditSink {
  write(event: Record<string, unknown>): void;
  close(): void;
}

/** Appends JSON lines to `path` (`-`: stdout); each line one write(2), so lines never interleave. */
export function openAuditLog(path: string): AuditSink {
  if (path === '-')
    return {
      write(e) {
        process.stdout.write(`${JSON.stringify(e)}\n`);
      },
      close() {},
    };
  let fd: number;
  try {
    fd = openSync(path, 'a', 0o600);
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `--audit-log-path ${path}: cannot open`, {
      cause,
    });
  }
  let open = true;
  return {
    write(e) {
      if (open) writeSync(fd, `${JSON.stringify(e)}\n`);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
