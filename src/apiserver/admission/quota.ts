/**
 * The ResourceQuota admission plugin and the bookkeeping of the quota
 * controller: object counts (`count/<resource>[.<group>]` and the legacy
 * `pods`, `services`, `secrets`, `configmaps`, `resourcequotas`) and pod
 * compute (`requests.cpu|memory`, `limits.cpu|memory`, `cpu`, `memory`).
 *
 * As in Kubernetes, the quota's `status.used` is the admission's commit
 * point: a create is charged by a compare-and-swap update of every matching
 * quota, so two concurrent creates cannot both take the last unit. After a
 * delete (and when a quota is written) `status.used` is recounted from the
 * store, as the quota controller does. Scopes and scope selectors are not
 * implemented: every quota in the namespace applies.
 *
 * Kubernetes: "Resource Quotas"; plugin/pkg/admission/resourcequota
 * (`exceeded quota: …`, `failed quota: …: must specify …`).
 */
import { ApiError, forbiddenByAdmission } from '../status.js';
import { findResource, qualifiedResource, storagePrefix, type ResourceType } from '../resources.js';
import { StoreError, type KubeObject, type ObjectStore } from '../store/types.js';

const QUOTA_TYPE = findResource('', 'v1', 'resourcequotas') as ResourceType;
const LEGACY_COUNTS: Record<string, string> = {
  pods: 'pods',
  services: 'services',
  secrets: 'secrets',
  configmaps: 'configmaps',
  resourcequotas: 'resourcequotas',
};
const COMPUTE = ['requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory', 'cpu', 'memory'];

/** A resource.Quantity as milli-units, and whether it was written with a binary suffix. */
export interface Quantity {
  readonly milli: bigint;
  readonly binary: boolean;
}

const SUFFIX: Record<string, [bigint, boolean]> = {
  '': [1n, false],
  m: [1n, false], // handled as milli below
  k: [10n ** 3n, false],
  M: [10n ** 6n, false],
  G: [10n ** 9n, false],
  T: [10n ** 12n, false],
  P: [10n ** 15n, false],
  E: [10n ** 18n, false],
  Ki: [2n ** 10n, true],
  Mi: [2n ** 20n, true],
  Gi: [2n ** 30n, true],
  Ti: [2n ** 40n, true],
  Pi: [2n ** 50n, true],
  Ei: [2n ** 60n, true],
};

/** Parses `100m`, `1.5`, `128Mi`, `1e3`; undefined when it is not a quantity. Rounds up to milli-units. */
export function parseQuantity(text: unknown): Quantity | undefined {
  const s = typeof text === 'number' ? String(text) : typeof text === 'string' ? text.trim() : '';
  const m = /^(\d+)(?:\.(\d+))?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE]\d+)?$/.exec(s);
  if (m === null) return undefined;
  const frac = m[2] ?? '';
  const digits = BigInt(`${m[1] ?? '0'}${frac}`);
  const scale = 10n ** BigInt(frac.length);
  const suffix = m[3] ?? '';
  let mult: bigint;
  let binary = false;
  let milliBase = 1000n;
  if (suffix === 'm') {
    mult = 1n;
    milliBase = 1n;
  } else if (/^[eE]\d+$/.test(suffix)) mult = 10n ** BigInt(suffix.slice(1));
  else [mult, binary] = SUFFIX[suffix] ?? [1n, false];
  const num = digits * mult * milliBase;
  return { milli: (num + scale - 1n) / scale, binary };
}

/** The canonical text of a quantity, near enough to resource.Quantity.String(). */
export function formatQuantity(q: Quantity): string {
  if (q.milli % 1000n !== 0n) return `${q.milli.toString()}m`;
  const n = q.milli / 1000n;
  if (n === 0n) return '0';
  const ladder: [string, bigint][] = q.binary
    ? [
        ['Ei', 2n ** 60n],
        ['Pi', 2n ** 50n],
        ['Ti', 2n ** 40n],
        ['Gi', 2n ** 30n],
        ['Mi', 2n ** 20n],
        ['Ki', 2n ** 10n],
      ]
    : [
        ['E', 10n ** 18n],
        ['P', 10n ** 15n],
        ['T', 10n ** 12n],
        ['G', 10n ** 9n],
        ['M', 10n ** 6n],
        ['k', 10n ** 3n],
      ];
  for (const [s, v] of ladder) if (n % v === 0n) return `${(n / v).toString()}${s}`;
  return n.toString();
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

const add = (a: Quantity | undefined, b: Quantity): Quantity => ({
  milli: (a?.milli ?? 0n) + b.milli,
  binary: a?.binary ?? b.binary,
});
const ONE: Quantity = { milli: 1000n, binary: false };

/** What an object uses, by quota resource name (Kubernetes' evaluators). */
export function usageOf(t: ResourceType, o: KubeObject): Map<string, Quantity> {
  const out = new Map<string, Quantity>();
  out.set(`count/${qualifiedResource(t)}`, ONE);
  if (t.group === '' && LEGACY_COUNTS[t.plural] !== undefined) out.set(t.plural, ONE);
  if (t.group === '' && t.kind === 'Pod') {
    const phase = rec(o.status).phase;
    if (phase === 'Succeeded' || phase === 'Failed') return new Map(); // terminal pods are not charged
    const spec = rec(o.spec);
    const containers = Array.isArray(spec.containers) ? spec.containers.map(rec) : [];
    const inits = Array.isArray(spec.initContainers) ? spec.initContainers.map(rec) : [];
    for (const kind of ['requests', 'limits'] as const) {
      for (const res of ['cpu', 'memory'] as const) {
        // max(sum over containers, max over init containers), as PodRequests computes it.
        const of = (c: Record<string, unknown>): Quantity | undefined => {
          const r = rec(c.resources);
          // API defaulting: requests default to limits when only limits are set.
          return (
            parseQuantity(rec(r[kind])[res]) ??
            (kind === 'requests' ? parseQuantity(rec(r.limits)[res]) : undefined)
          );
        };
        let sum: Quantity | undefined;
        for (const c of containers) {
          const q = of(c);
          if (q !== undefined) sum = add(sum, q);
        }
        for (const c of inits) {
          const q = of(c);
          if (q !== undefined && (sum === undefined || q.milli > sum.milli)) sum = q;
        }
        if (sum === undefined) continue;
        out.set(`${kind}.${res}`, sum);
        if (kind === 'requests') out.set(res, sum);
      }
    }
  }
  return out;
}

/** `must specify limits.cpu for: app; requests.memory for: app,side` or undefined. */
function missingCompute(o: KubeObject, hard: readonly string[]): string | undefined {
  const required = hard.filter((h) => COMPUTE.includes(h));
  if (required.length === 0) return undefined;
  const spec = rec(o.spec);
  const all = [
    ...(Array.isArray(spec.containers) ? spec.containers.map(rec) : []),
    ...(Array.isArray(spec.initContainers) ? spec.initContainers.map(rec) : []),
  ];
  const missing = new Map<string, Set<string>>();
  for (const c of all) {
    const r = rec(c.resources);
    for (const req of required) {
      const [kind, res] = req.includes('.')
        ? (req.split('.') as [string, string])
        : ['requests', req];
      const has =
        rec(r[kind])[res] !== undefined ||
        (kind === 'requests' && rec(r.limits)[res] !== undefined);
      if (!has) {
        const set = missing.get(req) ?? new Set<string>();
        set.add(typeof c.name === 'string' ? c.name : '');
        missing.set(req, set);
      }
    }
  }
  if (missing.size === 0) return undefined;
  return `must specify ${[...missing.keys()]
    .sort()
    .map((k) => `${k} for: ${[...(missing.get(k) ?? [])].sort().join(',')}`)
    .join('; ')}`;
}

const pretty = (m: Map<string, Quantity>, keys: readonly string[]): string =>
  [...keys]
    .sort()
    .map((k) => `${k}=${formatQuantity(m.get(k) ?? { milli: 0n, binary: false })}`)
    .join(',');

function quantities(v: unknown): Map<string, Quantity> {
  const out = new Map<string, Quantity>();
  for (const [k, x] of Object.entries(rec(v))) {
    const q = parseQuantity(x);
    if (q !== undefined) out.set(k, q);
  }
  return out;
}

/** Recounts what a namespace uses of the given quota resources. */
async function countUsed(
  store: ObjectStore,
  types: readonly ResourceType[],
  ns: string,
  keys: readonly string[],
): Promise<Map<string, Quantity>> {
  const used = new Map<string, Quantity>();
  for (const k of keys) used.set(k, { milli: 0n, binary: false });
  const seen = new Set<string>();
  for (const t of types) {
    if (!t.namespaced || t.virtual === true) continue;
    const prefix = storagePrefix(t, ns);
    if (seen.has(prefix)) continue;
    seen.add(prefix);
    const usage0 = usageOf(t, { metadata: {} });
    const relevant = keys.some((k) => usage0.has(k) || (t.kind === 'Pod' && COMPUTE.includes(k)));
    if (!relevant) continue;
    const { items } = await store.list(prefix);
    for (const i of items) {
      if (i.object.metadata?.deletionTimestamp !== undefined && t.kind !== 'Pod') continue;
      for (const [k, q] of usageOf(t, i.object)) if (used.has(k)) used.set(k, add(used.get(k), q));
    }
  }
  return used;
}

function statusOf(
  hard: Map<string, Quantity>,
  used: Map<string, Quantity>,
): Record<string, unknown> {
  const h: Record<string, string> = {};
  const u: Record<string, string> = {};
  for (const [k, q] of hard) {
    h[k] = formatQuantity(q);
    const v = used.get(k) ?? { milli: 0n, binary: q.binary };
    u[k] = formatQuantity({ milli: v.milli, binary: q.binary });
  }
  return { hard: h, used: u };
}

/** The quota controller's recount: every quota in `ns` gets fresh `status.hard` and `status.used`. */
export async function refreshQuotas(
  store: ObjectStore,
  types: readonly ResourceType[],
  ns: string,
): Promise<void> {
  const { items } = await store.list(storagePrefix(QUOTA_TYPE, ns));
  for (const q of items) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = attempt === 0 ? q : await store.get(q.key);
      if (cur === undefined) break;
      const hard = quantities(rec(cur.object.spec).hard);
      const used = await countUsed(store, types, ns, [...hard.keys()]);
      const status = statusOf(hard, used);
      if (JSON.stringify(status) === JSON.stringify(cur.object.status)) break;
      try {
        await store.update(cur.key, { ...cur.object, status }, cur.revision);
        break;
      } catch (e) {
        if (!(e instanceof StoreError && e.reason === 'Conflict')) throw e;
      }
    }
  }
}

/**
 * Charges a create of `o` to every quota of its namespace, or refuses it
 * (403) as Kubernetes words it.
 */
export async function admitQuota(
  store: ObjectStore,
  types: readonly ResourceType[],
  t: ResourceType,
  ns: string,
  o: KubeObject,
  dryRun: boolean,
): Promise<void> {
  if (t.kind === 'ResourceQuota') return;
  const name = typeof o.metadata?.name === 'string' ? o.metadata.name : '';
  for (let attempt = 0; attempt < 10; attempt++) {
    const { items } = await store.list(storagePrefix(QUOTA_TYPE, ns));
    if (items.length === 0) return;
    const requested = usageOf(t, o);
    const charges: { key: string; object: KubeObject; revision: number }[] = [];
    for (const q of [...items].sort((a, b) => a.key.localeCompare(b.key))) {
      const qname = typeof q.object.metadata?.name === 'string' ? q.object.metadata.name : '';
      const hard = quantities(rec(q.object.spec).hard);
      const hardKeys = [...hard.keys()];
      if (t.kind === 'Pod') {
        const missing = missingCompute(o, hardKeys);
        if (missing !== undefined)
          throw forbiddenByAdmission(t, name, `failed quota: ${qname}: ${missing}`);
      }
      const touched = hardKeys.filter((k) => requested.has(k));
      if (touched.length === 0) continue;
      let used = quantities(rec(q.object.status).used);
      if (hardKeys.some((k) => !used.has(k))) used = await countUsed(store, types, ns, hardKeys);
      const next = new Map(used);
      for (const k of touched) next.set(k, add(used.get(k), requested.get(k) ?? ONE));
      const exceeded = touched.filter(
        (k) => (next.get(k)?.milli ?? 0n) > (hard.get(k)?.milli ?? 0n),
      );
      if (exceeded.length > 0)
        throw forbiddenByAdmission(
          t,
          name,
          `exceeded quota: ${qname}, requested: ${pretty(requested, exceeded)}, used: ${pretty(used, exceeded)}, limited: ${pretty(hard, exceeded)}`,
        );
      charges.push({
        key: q.key,
        object: { ...q.object, status: statusOf(hard, next) },
        revision: q.revision,
      });
    }
    if (dryRun) return;
    try {
      for (const c of charges) await store.update(c.key, c.object, c.revision);
      return;
    } catch (e) {
      if (!(e instanceof StoreError && e.reason === 'Conflict')) throw e;
      // Another request charged a quota first: decide again on its new status.
    }
  }
  throw new ApiError(
    'InternalError',
    `Internal error occurred: resource quota evaluation timed out for ${qualifiedResource(t)} "${name}"`,
  );
}
