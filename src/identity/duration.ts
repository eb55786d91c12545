/** Durations as users write them: `90s`, `30m`, `1h`, `24h`, `720h`, `1h30m`, `500ms`. */
import { PalisadeError } from '../errors/index.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration to milliseconds; throws PAL_ERR_USAGE naming the bad value. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length || !(total > 0)) {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `invalid duration ${JSON.stringify(text)}: use e.g. 90s, 30m, 1h, 24h`,
    );
  }
  return total;
}
