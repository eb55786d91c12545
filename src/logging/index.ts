/**
 * Process logs: one JSON object per line on stderr (pino), so a supervisor
 * can keep them per process and a human can pipe them through `pino-pretty`
 * or `jq`. The level comes from the config reader (PALISADE_LOG_LEVEL).
 */
import { pino, type Logger } from 'pino';
import { readConfig } from '../config/index.js';

export type { Logger } from 'pino';

/** A logger named after the component (`control`, `proxy`, `runtime`…). */
export function createLogger(name: string, level?: string): Logger {
  return pino(
    { name, level: level ?? readConfig().logLevel, base: { pid: process.pid } },
    pino.destination(2),
  );
}

/** A logger that drops everything (tests, library callers without logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
