/**
 * Config source for local use: a directory of YAML, watched for changes
 * (`palisade control --config-dir DIR`). Every change re-reads the whole
 * directory and validates it as one unit; a change that fails is rejected
 * whole — each problem is logged with file, object, field and reason and kept
 * in `problems` for `proxy-status`/the debug API — while the last good
 * snapshot keeps serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readManifests } from '../../api/index.js';
import { createDebouncer } from '../debounce.js';
import { PalisadeError } from '../../errors/index.js';
import type { Logger } from '../../logging/index.js';
import {
  createSnapshot,
  formatProblem,
  validateManifests,
  type ConfigProblem,
  type ConfigSnapshot,
} from './config-snapshot.js';
import type { ConfigSource } from './config-source.js';

/** Options of {@link createConfigDirSource}. */
export interface ConfigDirSourceOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** Called with every accepted snapshot (not called for rejected changes). */
  readonly onSnapshot: (snapshot: ConfigSnapshot) => void;
  /** Quiet period after a file event before reloading (default 100 ms). */
  readonly debounceMs?: number;
  /** Longest delay after the first change of a steady stream (default 10 s, PILOT_DEBOUNCE_MAX). */
  readonly debounceMaxMs?: number;
}

/** A watched config directory. */
export interface ConfigDirSource extends ConfigSource {
  /** Re-reads the directory now; resolves true when the result was accepted. */
  reload(): boolean;
}

type LoadResult = { ok: true; snapshot: ConfigSnapshot } | { ok: false; problems: ConfigProblem[] };

function load(dir: string, version: number): LoadResult {
  let manifests;
  try {
    manifests = readManifests([dir]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      problems: [{ file: dir, index: 0, object: 'directory', issues: [{ path: '', message }] }],
    };
  }
  const result = validateManifests(manifests);
  if (!result.ok) return result;
  return { ok: true, snapshot: createSnapshot(version, result.objects) };
}

/**
 * Loads `dir` and starts watching it. Throws `PAL_ERR_CONTROL_CONFIG_INVALID`
 * naming every problem when the initial load fails: the control plane does
 * not start on a bad config.
 */
export function createConfigDirSource(options: ConfigDirSourceOptions): ConfigDirSource {
  const { dir, logger } = options;
  let version = 1;
  const first = load(dir, version);
  if (!first.ok)
    throw new PalisadeError(
      'PAL_ERR_CONTROL_CONFIG_INVALID',
      `config in ${dir} rejected:\n  ${first.problems.map(formatProblem).join('\n  ')}`,
    );
  let current = first.snapshot;
  let problems: ConfigProblem[] = [];
  let watcher: FSWatcher | undefined;

  const reload = (): boolean => {
    const result = load(dir, version + 1);
    if (!result.ok) {
      problems = result.problems;
      for (const problem of problems)
        logger.error(
          { file: problem.file, object: problem.object, issues: problem.issues },
          `config change rejected: ${formatProblem(problem)}`,
        );
      return false;
    }
    problems = [];
    version += 1;
    current = result.snapshot;
    logger.info({ version, objects: current.objects.size }, 'config accepted');
    options.onSnapshot(current);
    return true;
  };

  const debounced = createDebouncer(
    () => {
      reload();
    },
    {
      ...(options.debounceMs === undefined ? {} : { afterMs: options.debounceMs }),
      ...(options.debounceMaxMs === undefined ? {} : { maxMs: options.debounceMaxMs }),
    },
  );
  try {
    watcher = watch(dir, () => {
      debounced.trigger();
    });
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_CONTROL_CONFIG_INVALID', `cannot watch ${dir}`, { cause });
  }
  options.onSnapshot(current);

  return {
    origin: dir,
    get current() {
      return current;
    },
    get problems() {
      return problems;
    },
    reload,
    close() {
      debounced.cancel();
      watcher.close();
    },
  };
}
