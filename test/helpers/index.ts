/**
 * Shared test helpers: run the compiled CLI as a real process, make throwaway
 * directories, find free loopback ports. Tests only talk to loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/helpers). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The compiled CLI entry point. */
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `palisade ARGS` as a child process; `input` goes to stdin. */
export function runPalisade(
  args: readonly string[],
  options: {
    input?: string | Buffer;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
  } = {},
): Promise<RunResult> {
  return runProcess(process.execPath, [CLI, ...args], options);
}

/** Runs any program (openssl, curl, …) and collects its output. */
export function runProcess(
  file: string,
  args: readonly string[],
  options: {
    input?: string | Buffer;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(prefix = 'palisade-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    cleanup: () => {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** A port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

/** Whether `port` can be listened on on `host` now. */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => {
      resolve(false);
    });
    srv.listen(port, host, () => {
      srv.close(() => {
        resolve(true);
      });
    });
  });
}

/**
 * The first of `count` consecutive ports free on `host`, below the kernel's ephemeral range. A
 * base from {@link freePort} lies inside that range, where any connection's source port can take
 * one of the ports after it before the process that needs it binds it (a sidecar's admin port in
 * `palisade up`, which then exits and is restarted on the same port).
 */
export async function freePortRun(count: number, host = '127.0.0.1'): Promise<number> {
  let ephemeralStart = 32768;
  try {
    const range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/);
    ephemeralStart = Number(range[0]) || ephemeralStart;
  } catch {
    // not Linux: the IANA dynamic range starts higher still
  }
  const low = 20000;
  const high = Math.max(low + count, ephemeralStart - count);
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    let free = true;
    for (let port = base; port < base + count && free; port += 1) free = await portFree(port, host);
    if (free) return base;
  }
  throw new Error(
    `no ${String(count)} consecutive free ports on ${host} below ${String(ephemeralStart)}`,
  );
}

/**
 * Writes `bytes` on a new connection (then half-closes, unless `halfClose` is false) and returns
 * everything the server sent until it closed; rejects when it has not closed within 5 s.
 */
export function rawUntilClose(
  host: string,
  port: number,
  bytes: string | Buffer,
  halfClose = true,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      if (halfClose) socket.end(bytes);
      else socket.write(bytes);
    });
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${JSON.stringify(out)}`));
    }, 5000);
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `waitFor timed out after ${timeoutMs} ms${last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A long-running `palisade` child process started by {@link spawnPalisade}. */
export interface PalisadeProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `palisade ARGS` and resolves once a line of its stdout matches
 * `ready` (rejects with the output when it exits first or `timeoutMs` passes).
 */
export async function spawnPalisade(
  args: readonly string[],
  options: { ready: RegExp; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<PalisadeProcess & { match: RegExpMatchArray }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, PALISADE_LOG_LEVEL: 'info', ...options.env },
    // stdin stays an open pipe: if this test process dies (a file timeout kills it, not its
    // children), the pipe closes and `palisade up` stops its mesh instead of leaking it.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => undefined);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      // The stdin pipe is this process's handle: left open, it keeps the test file alive.
      child.stdin.destroy();
      resolve(code);
    });
  });
  const stop = async (graceMs = 5000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const output = (): string => `${stdout}${stderr}`;
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop().then(() => {
        reject(new Error(`palisade ${args.join(' ')} not ready:\n${output()}`));
      });
    }, options.timeoutMs ?? 20_000);
    const check = (): void => {
      const m = options.ready.exec(stdout);
      if (m !== null) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(m);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`palisade ${args.join(' ')} exited ${String(code)}:\n${output()}`));
    });
  });
  return { child, output, stop, match };
}
