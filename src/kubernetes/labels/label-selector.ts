/**
 * Kubernetes label selectors (metav1.LabelSelector): `matchLabels` and
 * `matchExpressions` with In, NotIn, Exists and DoesNotExist, ANDed together.
 * Shared by NetworkPolicy peers, ClusterRole aggregation and the audit.
 *
 * Kubernetes: "Labels and Selectors" — an empty selector matches everything;
 * a missing selector (null) matches nothing where the API says so (callers
 * decide that: this module only sees selectors that are present).
 */

/** One `matchExpressions` entry. */
export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

/** metav1.LabelSelector. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** Labels of an object; absent labels are an empty map. */
export type Labels = Readonly<Record<string, string>>;

/**
 * True when `labels` satisfy `selector`. An unknown operator matches nothing
 * (fails closed; the API server would have rejected it at validation).
 */
export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** True when the selector has no requirements (selects every object). */
export function isEmptySelector(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}

/** Reads a string map (labels/annotations) from an unknown value, dropping non-strings. */
export function readStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}
