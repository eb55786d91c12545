/**
 * A reader for the Prometheus text exposition format (version 0.0.4), enough
 * for the dashboard to read the Istio standard metrics a proxy serves on its
 * admin `/stats/prometheus`: `name{label="value",…} value [timestamp]` lines,
 * with `# HELP` / `# TYPE` comments skipped and label values unescaped
 * (`\\`, `\"`, `\n`, per the exposition format spec).
 */

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/**
 * Parses exposition text; lines that do not parse are skipped (the proxy is
 * the producer, but a dashboard must not die on one odd line). Only samples
 * whose name passes `keep` are returned, so a big scrape costs little.
 */
export function parsePrometheusText(
  text: string,
  keep: (name: string) => boolean = () => true,
): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!keep(name)) continue;
    const labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') {
      i += 1;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i += 1;
        if (line[i] === '}') {
          i += 1;
          break;
        }
        const eq = line.indexOf('=', i);
        if (eq < 0 || line[eq + 1] !== '"') {
          i = -1;
          break;
        }
        const key = line.slice(i, eq).trim();
        let value = '';
        let j = eq + 2;
        for (; j < line.length && line[j] !== '"'; j += 1) {
          if (line[j] === '\\' && j + 1 < line.length) {
            j += 1;
            value += line[j] === 'n' ? '\n' : (line[j] ?? '');
          } else value += line[j] ?? '';
        }
        if (j >= line.length) {
          i = -1;
          break;
        }
        labels[key] = value;
        i = j + 1;
      }
      if (i < 0) continue;
    }
    const [valueText] = line.slice(i).trim().split(/\s+/);
    if (valueText === undefined || valueText === '') continue;
    const value = parseValue(valueText);
    if (Number.isNaN(value)) continue;
    out.push({ name, labels, value });
  }
  return out;
}
