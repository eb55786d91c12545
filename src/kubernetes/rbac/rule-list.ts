/**
 * The rules a user holds, laid out as `kubectl auth can-i --list` prints
 * them: one row per resource (as `resource.group`), non-resource URL and
 * resource names, with the verbs merged and sorted; resources first, then
 * non-resource URLs.
 */
import type { PolicyRule } from './types.js';

/** One row of `can-i --list`. */
export interface RuleRow {
  readonly resource: string;
  readonly nonResourceURL: string;
  readonly resourceNames: readonly string[];
  readonly verbs: readonly string[];
}

/** Merges rules into rows keyed by resource (or URL) and resource names. */
export function ruleRows(rules: readonly PolicyRule[]): RuleRow[] {
  const rows = new Map<string, { row: Omit<RuleRow, 'verbs'>; verbs: Set<string> }>();
  const add = (
    resource: string,
    url: string,
    names: readonly string[],
    verbs: readonly string[],
  ): void => {
    const key = JSON.stringify([resource, url, names]);
    let r = rows.get(key);
    if (r === undefined) {
      r = { row: { resource, nonResourceURL: url, resourceNames: names }, verbs: new Set() };
      rows.set(key, r);
    }
    for (const v of verbs) r.verbs.add(v);
  };
  for (const rule of rules) {
    const names = [...(rule.resourceNames ?? [])].sort();
    for (const group of rule.apiGroups ?? []) {
      for (const res of rule.resources ?? [])
        add(group === '' ? res : `${res}.${group}`, '', names, rule.verbs);
    }
    for (const url of rule.nonResourceURLs ?? []) add('', url, [], rule.verbs);
  }
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows.values()]
    .map(({ row, verbs }) => ({ ...row, verbs: [...verbs].sort(cmp) }))
    .sort(
      (a, b) =>
        Number(a.resource === '') - Number(b.resource === '') ||
        cmp(a.resource, b.resource) ||
        cmp(a.nonResourceURL, b.nonResourceURL),
    );
}

/** The table kubectl prints: Resources, Non-Resource URLs, Resource Names, Verbs. */
export function formatRuleTable(rows: readonly RuleRow[]): string {
  const list = (xs: readonly string[]): string => `[${xs.join(' ')}]`;
  const cells = [
    ['Resources', 'Non-Resource URLs', 'Resource Names', 'Verbs'],
    ...rows.map((r) => [
      r.resource,
      list(r.nonResourceURL === '' ? [] : [r.nonResourceURL]),
      list(r.resourceNames),
      list(r.verbs),
    ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells
    .map((c) =>
      c
        .map((x, i) => (i < 3 ? x.padEnd((widths[i] ?? 0) + 3) : x))
        .join('')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}
