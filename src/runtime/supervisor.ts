/**
 * Process supervision for the local runtime: starts each mesh process (app
 * instance, sidecar, gateway, control plane) in its own process group, logs
 * it to `<logDir>/<name>.log`, restarts it when it dies with exponential
 * backoff, and stops every
 * group on shutdown — SIGTERM, a grace period, then SIGKILL — so no orphan
 * (not even a grandchild) outlives `palisade up`.
 *
 * Restarts follow Kubernetes' CrashLoopBackOff: the delay doubles from
 * `initialBackoffMs` up to `maxBackoffMs`, and goes back to the initial delay
 * once a run has lasted `stableAfterMs`. A process may restart `maxRestarts`
 * times per `restartWindowMs`; past that budget it is in back-off (listed by
 * `failed()`, a `failed` event with the wait) until the oldest restart leaves
 * the window, then it is tried again. It is never given up on for good: a
 * proxy killed by a burst of bad input comes back once the burst is over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/** What to run. `name` is also the log file name. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** Options of {@link createSupervisor}. */
export interface SupervisorOptions {
  /** Directory of the per-process logs. Created if missing. */
  readonly logDir: string;
  /** First restart delay in ms (doubles each time). Default 250. */
  readonly initialBackoffMs?: number;
  /** Upper bound of the restart delay in ms. Default 10 000. */
  readonly maxBackoffMs?: number;
  /** Restarts allowed per process within `restartWindowMs`. Default 5. */
  readonly maxRestarts?: number;
  /** The window of the restart budget, in ms. Default 60 000. */
  readonly restartWindowMs?: number;
  /** A run this long resets the backoff to its initial delay, in ms. Default 60 000. */
  readonly stableAfterMs?: number;
  /** Time between SIGTERM and SIGKILL on shutdown, in ms. Default 5 000. */
  readonly stopGraceMs?: number;
  /** Called on every lifecycle event (for the CLI's output and tests). */
  readonly onEvent?: (event: SupervisorEvent) => void;
}

/** A lifecycle event of one supervised process. */
export type SupervisorEvent =
  | { readonly type: 'started'; readonly name: string; readonly pid: number }
  | {
      readonly type: 'exited';
      readonly name: string;
      readonly code: number | null;
      readonly signal: string | null;
    }
  | {
      readonly type: 'restarting';
      readonly name: string;
      readonly attempt: number;
      readonly delayMs: number;
    }
  | {
      /** The restart budget of the window is spent: back-off until `delayMs` has passed. */
      readonly type: 'failed';
      readonly name: string;
      readonly restarts: number;
      readonly windowMs: number;
      readonly delayMs: number;
    };

/** The supervisor's handle. */
export interface Supervisor {
  /** Starts a process and keeps it running. */
  start(spec: ProcessSpec): void;
  /** PIDs of the processes currently alive, by name. */
  pids(): Map<string, number>;
  /** Names of processes in crash-loop back-off (their restart budget for the window is spent). */
  failed(): string[];
  /** Stops every process group and resolves when all have exited. */
  stop(): Promise<void>;
}

/** Delay before restart number `attempt` (1-based): initial·2^(attempt−1), capped. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
}

interface Entry {
  readonly spec: ProcessSpec;
  child: ChildProcess | undefined;
  /** Consecutive quick restarts: the backoff exponent. */
  restarts: number;
  /** When each restart within the current window happened (ms, monotonic). */
  restartTimes: number[];
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  failed: boolean;
  exited: Promise<void>;
}

/** Creates a supervisor; see the module comment for its behaviour. */
export function createSupervisor(options: SupervisorOptions): Supervisor {
  const initial = options.initialBackoffMs ?? 250;
  const max = options.maxBackoffMs ?? 10_000;
  const maxRestarts = options.maxRestarts ?? 5;
  const windowMs = options.restartWindowMs ?? 60_000;
  const stableMs = options.stableAfterMs ?? 60_000;
  const now = (): number => performance.now();
  const grace = options.stopGraceMs ?? 5_000;
  const emit = options.onEvent ?? (() => undefined);
  const entries = new Map<string, Entry>();
  let stopping = false;
  mkdirSync(options.logDir, { recursive: true });

  function launch(entry: Entry): void {
    const fd = openSync(join(options.logDir, `${entry.spec.name}.log`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(entry.spec.command, [...(entry.spec.args ?? [])], {
        cwd: entry.spec.cwd,
        env: entry.spec.env ? { ...entry.spec.env } : {},
        stdio: ['ignore', fd, fd],
        detached: true, // own process group, so shutdown reaches grandchildren
      });
    } finally {
      closeSync(fd);
    }
    entry.child = child;
    entry.startedAt = now();
    entry.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        entry.child = undefined;
        emit({ type: 'exited', name: entry.spec.name, code, signal });
        resolve();
        if (!stopping) scheduleRestart(entry);
      });
      child.once('error', () => {
        // spawn failure (ENOENT…): 'exit' may not follow, so treat it as one.
        if (entry.child === child) {
          entry.child = undefined;
          emit({ type: 'exited', name: entry.spec.name, code: null, signal: null });
          resolve();
          if (!stopping) scheduleRestart(entry);
        }
      });
    });
    if (child.pid !== undefined) emit({ type: 'started', name: entry.spec.name, pid: child.pid });
  }

  function scheduleRestart(entry: Entry): void {
    const at = now();
    // A run that lasted stableAfterMs was healthy: the next restart is quick again.
    if (at - entry.startedAt >= stableMs) entry.restarts = 0;
    entry.restartTimes = entry.restartTimes.filter((t) => at - t < windowMs);
    entry.restarts += 1;
    let delayMs = backoffDelay(entry.restarts, initial, max);
    const oldest = entry.restartTimes[0];
    if (entry.restartTimes.length >= maxRestarts && oldest !== undefined) {
      // Budget spent: wait until the oldest restart leaves the window (and at least the backoff).
      delayMs = Math.max(delayMs, Math.ceil(oldest + windowMs - at));
      entry.failed = true;
      emit({
        type: 'failed',
        name: entry.spec.name,
        restarts: entry.restartTimes.length,
        windowMs,
        delayMs,
      });
    } else emit({ type: 'restarting', name: entry.spec.name, attempt: entry.restarts, delayMs });
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (stopping) return;
      entry.failed = false;
      entry.restartTimes.push(now());
      launch(entry);
    }, delayMs);
  }

  function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is already gone
    }
  }

  return {
    start(spec) {
      if (stopping) throw new Error('supervisor is stopping');
      if (entries.has(spec.name)) throw new Error(`process ${spec.name} is already supervised`);
      const entry: Entry = {
        spec,
        child: undefined,
        restarts: 0,
        restartTimes: [],
        startedAt: now(),
        timer: undefined,
        failed: false,
        exited: Promise.resolve(),
      };
      entries.set(spec.name, entry);
      launch(entry);
    },
    pids() {
      const out = new Map<string, number>();
      for (const [name, e] of entries) if (e.child?.pid !== undefined) out.set(name, e.child.pid);
      return out;
    },
    failed() {
      return [...entries.values()].filter((e) => e.failed).map((e) => e.spec.name);
    },
    async stop() {
      stopping = true;
      const waits: Promise<void>[] = [];
      for (const e of entries.values()) {
        if (e.timer) clearTimeout(e.timer);
        const child = e.child;
        if (!child) continue;
        signalGroup(child, 'SIGTERM');
        const killer = setTimeout(() => {
          signalGroup(child, 'SIGKILL');
        }, grace);
        waits.push(
          e.exited.then(() => {
            clearTimeout(killer);
            // the leader is gone; make sure nothing else in its group lingers
            signalGroup(child, 'SIGKILL');
          }),
        );
      }
      await Promise.all(waits);
    },
  };
}
