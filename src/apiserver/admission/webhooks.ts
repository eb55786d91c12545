/**
 * Dynamic admission control: the webhooks registered through
 * `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration`
 * (admissionregistration.k8s.io/v1), called with an `admission.k8s.io/v1`
 * AdmissionReview over HTTPS (`clientConfig.url` or `.service`, verified
 * against `caBundle`).
 *
 * Semantics as kube-apiserver's: a webhook is called when one of its
 * `rules` matches (operations, apiGroups, apiVersions, resources with
 * `*` and `res/sub`, scope), its `namespaceSelector` matches the
 * namespace's labels (the object's own labels for a Namespace) and its
 * `objectSelector` the new or old object's labels. Mutating webhooks run
 * one after another (configurations by name, webhooks in order) and may
 * answer a JSONPatch; validating webhooks run in parallel on the final
 * object. A refusal is `admission webhook "NAME" denied the request: MSG`
 * with the webhook's code (at least 400); a failed call (refused,
 * `timeoutSeconds` elapsed, bad answer) is `failed calling webhook` under
 * `failurePolicy: Fail` (the default) and skipped under `Ignore`.
 * Webhook configurations themselves are never sent to webhooks.
 * Not implemented: reinvocationPolicy, matchConditions, matchPolicy
 * (every kind is served at one storage version).
 *
 * Kubernetes: "Dynamic Admission Control".
 */
import { randomUUID } from 'node:crypto';
import { selectorMatches } from '../../kubernetes/index.js';
import { jsonPatch } from '../patch.js';
import { ApiError } from '../status.js';
import { findResource, storageKey, storagePrefix, type ResourceType } from '../resources.js';
import type { KubeObject, ObjectStore } from '../store/types.js';
import { postReview, WebhookCallError, type WebhookTarget } from '../webhook-client.js';

const prefixOf = (plural: string): string =>
  storagePrefix(
    findResource('admissionregistration.k8s.io', 'v1', plural) as ResourceType,
    undefined,
  );
const MUTATING_PREFIX = prefixOf('mutatingwebhookconfigurations');
const VALIDATING_PREFIX = prefixOf('validatingwebhookconfigurations');
const NAMESPACE_TYPE = findResource('', 'v1', 'namespaces') as ResourceType;

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

export interface AdmissionAttributes {
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE';
  readonly type: ResourceType;
  readonly version: string;
  readonly subresource: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly object: KubeObject | undefined;
  readonly oldObject: KubeObject | undefined;
  readonly user: {
    readonly name: string;
    readonly uid?: string;
    readonly groups: readonly string[];
    readonly extra?: Readonly<Record<string, readonly string[]>>;
  };
  readonly dryRun: boolean;
}

export interface WebhookOutcome {
  readonly object: KubeObject | undefined;
  readonly warnings: string[];
  /** Audit annotations, `<webhook name>/<key>`. */
  readonly annotations: Record<string, string>;
}

/**
 * metav1.LabelSelector from a decoded webhook configuration: matchLabels and
 * matchExpressions; empty matches everything. Matching is the shared engine
 * (src/kubernetes selectorMatches); this only reads the untyped object.
 */
export function labelSelectorMatches(selector: unknown, labels: Record<string, unknown>): boolean {
  const s = rec(selector);
  const matchLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec(s.matchLabels)))
    // A non-string value can equal no label value.
    matchLabels[k] = typeof v === 'string' ? v : `\u0000${JSON.stringify(v)}`;
  const matchExpressions = (Array.isArray(s.matchExpressions) ? s.matchExpressions : [])
    .map(rec)
    .map((e) => ({
      key: typeof e.key === 'string' ? e.key : '',
      operator: typeof e.operator === 'string' ? e.operator : '',
      values: strs(e.values),
    }));
  const present: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels))
    if (v !== undefined) present[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return selectorMatches({ matchLabels, matchExpressions }, present);
}

/** One rule of `rules[]` (admissionregistration/v1 RuleWithOperations). */
function ruleMatches(rule: Record<string, unknown>, a: AdmissionAttributes): boolean {
  const any = (list: string[], v: string): boolean => list.includes('*') || list.includes(v);
  if (!any(strs(rule.operations), a.operation)) return false;
  if (!any(strs(rule.apiGroups), a.type.group)) return false;
  if (!any(strs(rule.apiVersions), a.version)) return false;
  const resMatch = strs(rule.resources).some((r) => {
    const [res = '', sub = ''] = r.split('/', 2);
    return (res === '*' || res === a.type.plural) && (sub === '*' || sub === a.subresource);
  });
  if (!resMatch) return false;
  const scope = typeof rule.scope === 'string' ? rule.scope : '*';
  if (scope === 'Cluster' && a.type.namespaced) return false;
  if (scope === 'Namespaced' && !a.type.namespaced) return false;
  return true;
}

function targetOf(webhook: Record<string, unknown>): WebhookTarget {
  const cc = rec(webhook.clientConfig);
  const ca =
    typeof cc.caBundle === 'string' && cc.caBundle !== ''
      ? Buffer.from(cc.caBundle, 'base64').toString('utf8')
      : undefined;
  let url: string;
  if (typeof cc.url === 'string') url = cc.url;
  else {
    const svc = rec(cc.service);
    const port = typeof svc.port === 'number' ? svc.port : 443;
    url = `https://${String(svc.name)}.${String(svc.namespace)}.svc:${String(port)}${typeof svc.path === 'string' ? svc.path : '/'}`;
  }
  return { url, ...(ca === undefined ? {} : { caPem: ca }) };
}

/** `webhookerrors.ToStatusErr`: the refusal as the client sees it. */
function denied(name: string, status: Record<string, unknown>): ApiError {
  const by = `admission webhook ${JSON.stringify(name)} denied the request`;
  const message =
    typeof status.message === 'string' && status.message !== ''
      ? `${by}: ${status.message}`
      : typeof status.reason === 'string' && status.reason !== ''
        ? `${by}: ${status.reason}`
        : `${by} without explanation`;
  const code = typeof status.code === 'number' && status.code >= 400 ? status.code : 400;
  return ApiError.withCode(code, typeof status.reason === 'string' ? status.reason : '', message);
}

/** Runs the matching webhooks of both kinds; throws the refusal or the failure. */
export function createWebhookAdmission(store: ObjectStore): {
  mutate(a: AdmissionAttributes): Promise<WebhookOutcome>;
  validate(a: AdmissionAttributes): Promise<WebhookOutcome>;
} {
  const namespaceLabels = async (
    a: AdmissionAttributes,
  ): Promise<Record<string, unknown> | undefined> => {
    if (a.type.group === '' && a.type.kind === 'Namespace')
      return rec((a.object ?? a.oldObject)?.metadata?.labels);
    if (!a.type.namespaced || a.namespace === undefined) return undefined;
    const ns = await store.get(storageKey(NAMESPACE_TYPE, undefined, a.namespace));
    return rec(ns?.object.metadata?.labels);
  };

  const matching = async (
    prefix: string,
    a: AdmissionAttributes,
  ): Promise<Record<string, unknown>[]> => {
    if (a.type.group === 'admissionregistration.k8s.io') return [];
    const { items } = await store.list(prefix);
    if (items.length === 0) return [];
    const nsLabels = await namespaceLabels(a);
    const out: Record<string, unknown>[] = [];
    for (const cfg of [...items].sort((x, y) => x.key.localeCompare(y.key))) {
      const hooks = Array.isArray(cfg.object.webhooks) ? cfg.object.webhooks.map(rec) : [];
      for (const h of hooks) {
        const rules = Array.isArray(h.rules) ? h.rules.map(rec) : [];
        if (!rules.some((r) => ruleMatches(r, a))) continue;
        if (nsLabels !== undefined && !labelSelectorMatches(h.namespaceSelector, nsLabels))
          continue;
        const newLabels = rec(a.object?.metadata?.labels);
        const oldLabels = rec(a.oldObject?.metadata?.labels);
        if (
          !labelSelectorMatches(h.objectSelector, newLabels) &&
          !(a.oldObject !== undefined && labelSelectorMatches(h.objectSelector, oldLabels))
        )
          continue;
        out.push(h);
      }
    }
    return out;
  };

  /** One call; returns the response, or undefined when the failure is ignored. */
  const call = async (
    h: Record<string, unknown>,
    a: AdmissionAttributes,
    object: KubeObject | undefined,
  ): Promise<Record<string, unknown> | undefined> => {
    const name = typeof h.name === 'string' ? h.name : '';
    const uid = randomUUID();
    const gvk = { group: a.type.group, version: a.version, kind: a.type.kind };
    const gvr = { group: a.type.group, version: a.version, resource: a.type.plural };
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: gvk,
        resource: gvr,
        ...(a.subresource === ''
          ? {}
          : { subResource: a.subresource, requestSubResource: a.subresource }),
        requestKind: gvk,
        requestResource: gvr,
        name: a.name,
        ...(a.namespace === undefined ? {} : { namespace: a.namespace }),
        operation: a.operation,
        userInfo: {
          username: a.user.name,
          ...(a.user.uid === undefined ? {} : { uid: a.user.uid }),
          groups: a.user.groups,
          ...(a.user.extra === undefined ? {} : { extra: a.user.extra }),
        },
        object: object ?? null,
        oldObject: a.oldObject ?? null,
        dryRun: a.dryRun,
        options: {
          apiVersion: 'meta.k8s.io/v1',
          kind:
            a.operation === 'CREATE'
              ? 'CreateOptions'
              : a.operation === 'UPDATE'
                ? 'UpdateOptions'
                : 'DeleteOptions',
        },
      },
    };
    const timeoutSeconds =
      typeof h.timeoutSeconds === 'number' ? Math.min(30, Math.max(1, h.timeoutSeconds)) : 10;
    try {
      const answer = rec(await postReview(targetOf(h), review, timeoutSeconds * 1000));
      const response = rec(answer.response);
      if (answer.response === undefined) throw new WebhookCallError('webhook response was absent');
      if (response.uid !== uid)
        throw new WebhookCallError(
          `expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? '')}`,
        );
      return response;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (h.failurePolicy === 'Ignore') {
        process.stderr.write(
          `apiserver: admission webhook ${JSON.stringify(name)} failed and is ignored: ${msg}\n`,
        );
        return undefined;
      }
      throw new ApiError(
        'InternalError',
        `Internal error occurred: failed calling webhook ${JSON.stringify(name)}: failed to call webhook: ${msg}`,
      );
    }
  };

  const collect = (
    h: Record<string, unknown>,
    r: Record<string, unknown>,
    out: WebhookOutcome,
  ): void => {
    out.warnings.push(...strs(r.warnings));
    for (const [k, v] of Object.entries(rec(r.auditAnnotations)))
      if (typeof v === 'string') out.annotations[`${String(h.name)}/${k}`] = v;
  };

  return {
    async mutate(a) {
      const out: WebhookOutcome & { object: KubeObject | undefined } = {
        object: a.object,
        warnings: [],
        annotations: {},
      };
      for (const h of await matching(MUTATING_PREFIX, a)) {
        const r = await call(h, a, out.object);
        if (r === undefined) continue;
        collect(h, r, out);
        if (r.allowed !== true) throw denied(String(h.name), rec(r.status));
        if (typeof r.patch === 'string' && r.patch !== '') {
          if (r.patchType !== 'JSONPatch')
            throw new ApiError(
              'InternalError',
              `Internal error occurred: unsupported patch type ${JSON.stringify(r.patchType ?? '')}`,
            );
          let ops: unknown;
          try {
            ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
          } catch {
            throw new ApiError(
              'InternalError',
              'Internal error occurred: the webhook patch is not valid JSON',
            );
          }
          try {
            out.object = jsonPatch(out.object, ops) as KubeObject;
          } catch (e) {
            throw new ApiError(
              'InternalError',
              `Internal error occurred: applying the patch of webhook ${JSON.stringify(String(h.name))}: ${e instanceof Error ? e.message : String(e)}`,
            );
          }
        }
      }
      return out;
    },
    async validate(a) {
      const out: WebhookOutcome = { object: a.object, warnings: [], annotations: {} };
      const hooks = await matching(VALIDATING_PREFIX, a);
      const results = await Promise.allSettled(hooks.map((h) => call(h, a, a.object)));
      for (const [i, res] of results.entries()) {
        const h = hooks[i] ?? {};
        if (res.status === 'rejected') throw res.reason;
        if (res.value === undefined) continue;
        collect(h, res.value, out);
        if (res.value.allowed !== true) throw denied(String(h.name), rec(res.value.status));
      }
      return out;
    },
  };
}

/** Edge validation of a webhook configuration, with field paths as kube-apiserver reports them. */
export function validateWebhookConfiguration(o: KubeObject): { field: string; message: string }[] {
  const issues: { field: string; message: string }[] = [];
  const hooks = Array.isArray(o.webhooks) ? o.webhooks.map(rec) : [];
  for (const [i, h] of hooks.entries()) {
    const at = `webhooks[${String(i)}]`;
    const name = typeof h.name === 'string' ? h.name : '';
    if (name.split('.').length < 3)
      issues.push({
        field: `${at}.name`,
        message: `Invalid value: ${JSON.stringify(name)}: should be a domain with at least three segments separated by dots`,
      });
    if (!['None', 'NoneOnDryRun'].includes(String(h.sideEffects)))
      issues.push({
        field: `${at}.sideEffects`,
        message:
          h.sideEffects === undefined
            ? 'Required value: must specify one of None, NoneOnDryRun'
            : `Unsupported value: ${JSON.stringify(h.sideEffects)}: supported values: "None", "NoneOnDryRun"`,
      });
    const versions = strs(h.admissionReviewVersions);
    if (versions.length === 0)
      issues.push({
        field: `${at}.admissionReviewVersions`,
        message: 'Required value: must specify one of v1, v1beta1',
      });
    else if (!versions.includes('v1'))
      issues.push({
        field: `${at}.admissionReviewVersions`,
        message: `Invalid value: ${JSON.stringify(versions)}: must include at least one of v1 (the version this server speaks)`,
      });
    if (
      h.failurePolicy !== undefined &&
      (typeof h.failurePolicy !== 'string' || !['Fail', 'Ignore'].includes(h.failurePolicy))
    )
      issues.push({
        field: `${at}.failurePolicy`,
        message: `Unsupported value: ${JSON.stringify(h.failurePolicy)}: supported values: "Fail", "Ignore"`,
      });
    const cc = rec(h.clientConfig);
    const hasUrl = typeof cc.url === 'string';
    const hasSvc = cc.service !== undefined;
    if (hasUrl === hasSvc)
      issues.push({
        field: `${at}.clientConfig`,
        message: 'Required value: exactly one of url or service is required',
      });
    else if (hasUrl && !String(cc.url).startsWith('https://'))
      issues.push({
        field: `${at}.clientConfig.url`,
        message: `Unsupported value: ${JSON.stringify(cc.url)}: 'https' is the only allowed URL scheme`,
      });
    if (
      h.timeoutSeconds !== undefined &&
      (typeof h.timeoutSeconds !== 'number' || h.timeoutSeconds < 1 || h.timeoutSeconds > 30)
    )
      issues.push({
        field: `${at}.timeoutSeconds`,
        message: `Invalid value: ${JSON.stringify(h.timeoutSeconds)}: the timeout value must be between 1 and 30 seconds`,
      });
  }
  return issues;
}
