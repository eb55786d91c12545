/**
 * The operator's access to the control plane's debug API, found the way
 * `kubectl` finds its kubeconfig: from `--state-dir`, else the running local
 * mesh under `.palisade/` (palisade up), else $PALISADE_STATE_DIR (default
 * `.palisade`, where `palisade control` keeps its CA). The state directory
 * holds `debug-token` (the bearer token the debug API requires, 0600) and
 * `ca/root-cert.pem` + `ca/ca.json` (the roots and trust domain that verify
 * the control plane's TLS certificate).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readConfig } from '../../config/index.js';
import { DEBUG_TOKEN_FILE, type DebugAccess } from '../../control/index.js';
import { PalisadeError } from '../../errors/index.js';
import { CA_FILES } from '../../identity/index.js';
import { findMeshState } from '../../runtime/index.js';

/** Where a debug-API client looked, and what it found. */
export interface ResolvedDebugAccess extends DebugAccess {
  /** The state directory used (undefined when none had a token). */
  readonly stateDir: string | undefined;
  readonly searched: readonly string[];
}

function candidates(stateDirFlag: string | undefined, cwd: string): string[] {
  if (stateDirFlag !== undefined) return [resolve(cwd, stateDirFlag)];
  const out: string[] = [];
  try {
    out.push(findMeshState(undefined, cwd));
  } catch {
    // no (single) local mesh: fall through to the configured state dir
  }
  out.push(resolve(cwd, readConfig().stateDir));
  return out;
}

/** The debug access for a state directory (the CLI's --state-dir, or found), or plaintext when asked. */
export function debugAccessAt(
  stateDirFlag: string | undefined,
  cwd: string,
  insecure: boolean,
): ResolvedDebugAccess {
  const searched = candidates(stateDirFlag, cwd);
  const stateDir = searched.find((d) => existsSync(join(d, DEBUG_TOKEN_FILE)));
  const token =
    stateDir === undefined
      ? undefined
      : readFileSync(join(stateDir, DEBUG_TOKEN_FILE), 'utf8').trim();
  if (insecure) return { transport: 'plaintext', token, stateDir, searched };
  const caDir = join(stateDir ?? searched[0] ?? cwd, 'ca');
  const rootFile = join(caDir, CA_FILES.rootCert);
  if (!existsSync(rootFile))
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `cannot verify the control plane's TLS certificate: no mesh root at ${rootFile} (pass --state-dir, or --xds-insecure for a plaintext control plane)`,
    );
  let trustDomain = readConfig().trustDomain;
  const meta = join(caDir, CA_FILES.meta);
  if (existsSync(meta)) {
    const parsed = JSON.parse(readFileSync(meta, 'utf8')) as { trustDomain?: unknown };
    if (typeof parsed.trustDomain === 'string') trustDomain = parsed.trustDomain;
  }
  return {
    transport: { rootPem: readFileSync(rootFile, 'utf8'), trustDomain },
    token,
    stateDir,
    searched,
  };
}

/** The CLI's message for a debug call the control plane refused (gRPC PERMISSION_DENIED). */
export function permissionDeniedError(access: ResolvedDebugAccess, details: string): PalisadeError {
  const where =
    access.stateDir === undefined
      ? `no ${DEBUG_TOKEN_FILE} found in ${access.searched.join(' or ')}`
      : `sent the token from ${join(access.stateDir, DEBUG_TOKEN_FILE)}`;
  return new PalisadeError(
    'PAL_ERR_CONTROL_PERMISSION_DENIED',
    `${details} — ${where}; run as the operator who started the control plane, or pass --state-dir DIR`,
  );
}
