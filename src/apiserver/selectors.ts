/**
 * `labelSelector` and `fieldSelector` query parameters (k8s.io/apimachinery
 * pkg/labels and pkg/fields): `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x)`, `a`, `!a`. Field selectors support `metadata.name` and
 * `metadata.namespace` for every kind, as kube-apiserver does.
 */
import { badRequest } from './status.js';

type Requirement = (get: (key: string) => string | undefined) => boolean;

const KEY =
  /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

/** Splits on commas outside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of text) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key))
    throw badRequest(
      `unable to parse requirement: invalid label key "${key}" in ${JSON.stringify(text)}`,
    );
  return key;
}

function parse(text: string, field: boolean): Requirement[] {
  if (text.length > 4096) throw badRequest('selector too long');
  return terms(text).map((t): Requirement => {
    let m = /^(\S+?)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m !== null && !field) {
      const key = checkKey(m[1] ?? '', text);
      const values = (m[3] ?? '').split(',').map((v) => v.trim());
      const notin = m[2] === 'notin';
      return (get) => {
        const v = get(key);
        return notin
          ? v === undefined || !values.includes(v)
          : v !== undefined && values.includes(v);
      };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(t);
    if (m !== null) {
      const key = field ? (m[1] ?? '') : checkKey(m[1] ?? '', text);
      const value = m[3] ?? '';
      return m[2] === '!=' ? (get) => get(key) !== value : (get) => get(key) === value;
    }
    if (!field) {
      m = /^(!?)\s*(\S+)$/.exec(t);
      if (m !== null) {
        const key = checkKey(m[2] ?? '', text);
        return m[1] === '!' ? (get) => get(key) === undefined : (get) => get(key) !== undefined;
      }
    }
    throw badRequest(`unable to parse requirement: ${JSON.stringify(t)}`);
  });
}

/** A predicate over an object from the two selector parameters. */
export function objectFilter(
  labelSelector: string | null,
  fieldSelector: string | null,
): (o: { metadata?: Record<string, unknown> }) => boolean {
  const labels = labelSelector === null ? [] : parse(labelSelector, false);
  const fields = fieldSelector === null ? [] : parse(fieldSelector, true);
  for (const f of terms(fieldSelector ?? '')) {
    const key = /^([^=!\s]+)/.exec(f)?.[1] ?? '';
    if (key !== 'metadata.name' && key !== 'metadata.namespace')
      throw badRequest(`field label not supported: ${key}`);
  }
  return (o) => {
    const meta = o.metadata ?? {};
    const l = (meta.labels ?? {}) as Record<string, string>;
    const getLabel = (k: string): string | undefined => (Object.hasOwn(l, k) ? l[k] : undefined);
    const getField = (k: string): string | undefined => {
      if (k === 'metadata.name') return typeof meta.name === 'string' ? meta.name : '';
      if (k === 'metadata.namespace')
        return typeof meta.namespace === 'string' ? meta.namespace : '';
      return undefined;
    };
    return labels.every((r) => r(getLabel)) && fields.every((r) => r(getField));
  };
}
