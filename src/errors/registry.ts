/**
 * The error registry: the union of every area's codes. Each code has a
 * one-line summary and the process exit status the CLI uses for it.
 */
import { COMMON_ERRORS } from './codes-common.js';
import { CONTROL_ERRORS } from './codes-control.js';
import { IDENTITY_ERRORS } from './codes-identity.js';
import { KUBERNETES_ERRORS } from './codes-kubernetes.js';
import { POLICY_ERRORS } from './codes-policy.js';
import { PROXY_ERRORS } from './codes-proxy.js';
import { RUNTIME_ERRORS } from './codes-runtime.js';

export interface ErrorCodeInfo {
  readonly summary: string;
  readonly exit: number;
}

export const ERROR_CODES = {
  ...COMMON_ERRORS,
  ...IDENTITY_ERRORS,
  ...POLICY_ERRORS,
  ...KUBERNETES_ERRORS,
  ...CONTROL_ERRORS,
  ...PROXY_ERRORS,
  ...RUNTIME_ERRORS,
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
