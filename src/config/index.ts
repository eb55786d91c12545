/**
 * The one reader of process.env (STYLE.md §5). Every variable Palisade reads
 * is named here with its default; `readConfig()` parses them all and reports
 * every bad value at once.
 */
import { PalisadeError } from '../errors/index.js';

/** Environment variable names. */
export const ENV = {
  LOG_LEVEL: 'PALISADE_LOG_LEVEL',
  STATE_DIR: 'PALISADE_STATE_DIR',
  TRUST_DOMAIN: 'PALISADE_TRUST_DOMAIN',
  CONTROL_ADDRESS: 'PALISADE_CONTROL_ADDRESS',
  /** OpenTelemetry's standard variables: the traces URL as is, or a base URL (+ /v1/traces). */
  OTLP_TRACES_ENDPOINT: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  OTLP_ENDPOINT: 'OTEL_EXPORTER_OTLP_ENDPOINT',
} as const;

export const DEFAULTS = {
  LOG_LEVEL: 'info',
  STATE_DIR: '.palisade',
  TRUST_DOMAIN: 'cluster.local',
  CONTROL_ADDRESS: '127.0.0.1:15010',
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PalisadeConfig {
  readonly logLevel: LogLevel;
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly controlAddress: string;
  /** Where proxies export spans (OTLP/HTTP), when set. */
  readonly otlpEndpoint: string | undefined;
}

/** Reads and validates the environment; throws one error naming every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): PalisadeConfig {
  const problems: string[] = [];
  const logLevel = env[ENV.LOG_LEVEL] ?? DEFAULTS.LOG_LEVEL;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(
      `${ENV.LOG_LEVEL}=${JSON.stringify(logLevel)}: must be one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const controlAddress = env[ENV.CONTROL_ADDRESS] ?? DEFAULTS.CONTROL_ADDRESS;
  if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(controlAddress)) {
    problems.push(`${ENV.CONTROL_ADDRESS}=${JSON.stringify(controlAddress)}: must be HOST:PORT`);
  }
  if (problems.length > 0) {
    throw new PalisadeError('PAL_ERR_CONFIG_INVALID', problems.join('; '));
  }
  return {
    logLevel: logLevel as LogLevel,
    stateDir: env[ENV.STATE_DIR] ?? DEFAULTS.STATE_DIR,
    trustDomain: env[ENV.TRUST_DOMAIN] ?? DEFAULTS.TRUST_DOMAIN,
    controlAddress,
    otlpEndpoint: env[ENV.OTLP_TRACES_ENDPOINT] ?? env[ENV.OTLP_ENDPOINT],
  };
}
