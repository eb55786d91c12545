/**
 * Config source backed by the Kubernetes API (`palisade control --kubeconfig
 * FILE`): one `@kubernetes/client-node` informer (list, then watch from the
 * list's resourceVersion, re-listing on 410 Gone) per kind the mesh reads —
 * the pattern of client-go's SharedInformer that istiod's kube config
 * controller uses — so the same code watches Palisade's API server or a real
 * kube-apiserver. Every event triggers a debounced rebuild of the whole set,
 * validated as one unit by `validateManifests` exactly as the directory source
 * does: a bad object is logged and reported in `problems` (named by its API
 * path) and the last good snapshot keeps serving.
 *
 * Kinds the server does not serve (no Istio CRDs installed, say) are skipped
 * after discovery, as istiod skips absent CRDs, and logged once.
 */
import { existsSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import {
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import {
  asManifestObject,
  basePath,
  WATCHED_KINDS,
  type Manifest,
  type WatchedKind,
} from '../../api/index.js';
import { PalisadeError } from '../../errors/index.js';
import type { Logger } from '../../logging/index.js';
import { createDebouncer } from '../debounce.js';
import {
  createSnapshot,
  formatProblem,
  validateManifests,
  type ConfigProblem,
  type ConfigSnapshot,
} from './config-snapshot.js';
import type { ConfigSource } from './config-source.js';

/** Options of {@link openApiConfigSource}. */
export interface ApiConfigSourceOptions {
  /** Path of a kubeconfig file (its current context is used). */
  readonly kubeconfig: string;
  readonly logger: Logger;
  /** Called with every accepted snapshot (not called for rejected changes). */
  readonly onSnapshot: (snapshot: ConfigSnapshot) => void;
  /** Quiet period after an event before rebuilding (default 100 ms). */
  readonly debounceMs?: number;
  /** Longest delay after the first change of a steady stream (default 10 s, PILOT_DEBOUNCE_MAX). */
  readonly debounceMaxMs?: number;
  /** Bound on discovery plus the first list of every kind (default 30 s). */
  readonly syncTimeoutMs?: number;
  /** Delay before restarting an informer whose list or watch failed (default 1 s). */
  readonly retryMs?: number;
}

/** A config source reading the API; `synced` kinds are the ones watched. */
export interface ApiConfigSource extends ConfigSource {
  /** `apiVersion Kind` of every watched kind. */
  readonly watched: readonly string[];
}

interface Watch {
  readonly kind: WatchedKind;
  readonly version: string;
  readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  listed: boolean;
}

/** GET `path` on the kubeconfig's server with its credentials; JSON or a status-coded error. */
async function getJson(kc: KubeConfig, path: string, timeoutMs: number): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null)
    throw new PalisadeError('PAL_ERR_USAGE', 'the kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  const opts: RequestOptions = {
    method: 'GET',
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port,
    path: `${url.pathname}${url.search}`,
    headers: { Accept: 'application/json' },
    timeout: timeoutMs,
  };
  await kc.applyToHTTPSOptions(opts);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return await new Promise((resolve, reject) => {
    const req = send(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          let message = body.slice(0, 300);
          try {
            const m = (JSON.parse(body) as { message?: unknown }).message;
            if (typeof m === 'string') message = m;
          } catch {
            /* not a Status object */
          }
          reject(
            Object.assign(new Error(`GET ${path}: ${String(status)} ${message}`), {
              statusCode: status,
            }),
          );
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new Error(`GET ${path}: no answer in ${String(timeoutMs)} ms`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/** The served version of each kind (discovery, as client-go's RESTMapper). */
async function discover(
  kc: KubeConfig,
  timeoutMs: number,
): Promise<{ served: Map<WatchedKind, string>; absent: string[] }> {
  const groupVersions = new Map<string, Promise<Set<string> | undefined>>();
  const resourcesOf = (path: string): Promise<Set<string> | undefined> => {
    let p = groupVersions.get(path);
    if (p === undefined) {
      p = getJson(kc, path, timeoutMs).then(
        (list) =>
          new Set(
            ((list as { resources?: { name?: string }[] }).resources ?? []).map(
              (r) => r.name ?? '',
            ),
          ),
        (error: unknown) => {
          // 404: the group/version is not served (CRD not installed) — skip it.
          if ((error as { statusCode?: number }).statusCode === 404) return undefined;
          throw error;
        },
      );
      groupVersions.set(path, p);
    }
    return p;
  };
  const served = new Map<WatchedKind, string>();
  const absent: string[] = [];
  for (const kind of WATCHED_KINDS) {
    let found: string | undefined;
    for (const version of kind.versions)
      if ((await resourcesOf(basePath(kind, version)))?.has(kind.plural) === true) {
        found = version;
        break;
      }
    if (found === undefined) absent.push(`${kind.plural}.${kind.group || 'core'}`);
    else served.set(kind, found);
  }
  return { served, absent };
}

/**
 * Discovers, lists and starts watching every served kind, and resolves once
 * each has been listed and the first snapshot validated. Throws
 * `PAL_ERR_CONTROL_CONFIG_API` when the server cannot be read in time and
 * `PAL_ERR_CONTROL_CONFIG_INVALID` naming every problem when the first
 * snapshot is invalid: the control plane does not start on a bad config.
 */
export async function openApiConfigSource(
  options: ApiConfigSourceOptions,
): Promise<ApiConfigSource> {
  const { logger } = options;
  const syncTimeoutMs = options.syncTimeoutMs ?? 30_000;
  const retryMs = options.retryMs ?? 1000;
  const kc = new KubeConfig();
  try {
    if (!existsSync(options.kubeconfig)) throw new Error('no such file');
    kc.loadFromFile(options.kubeconfig);
  } catch (cause) {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--kubeconfig ${options.kubeconfig}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const server = kc.getCurrentCluster()?.server ?? '';
  if (server === '')
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--kubeconfig ${options.kubeconfig}: no current context with a cluster server`,
    );

  let discovered;
  try {
    discovered = await discover(kc, syncTimeoutMs);
  } catch (cause) {
    throw new PalisadeError(
      'PAL_ERR_CONTROL_CONFIG_API',
      `cannot read the API at ${server}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  if (discovered.absent.length > 0)
    logger.warn(
      { absent: discovered.absent },
      'the API server does not serve these kinds; not watched',
    );

  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  let firstError: unknown;
  const watches: Watch[] = [];
  for (const [kind, version] of discovered.served) {
    const path = `${basePath(kind, version)}/${kind.plural}`;
    const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const list = (await getJson(
        kc,
        path,
        syncTimeoutMs,
      )) as KubernetesListObject<KubernetesObject>;
      w.listed = true;
      return list;
    };
    const w: Watch = { kind, version, informer: makeInformer(kc, path, listFn), listed: false };
    const changed = (): void => {
      if (started) debounced.trigger();
    };
    w.informer.on('add', changed);
    w.informer.on('update', changed);
    w.informer.on('delete', changed);
    w.informer.on('error', (error: unknown) => {
      firstError ??= error;
      if (closed) return;
      logger.warn(
        { kind: kind.kind, error: error instanceof Error ? error.message : String(error) },
        'watch of the API failed; restarting',
      );
      // The informer stops on error (client-node does not retry): restart it
      // after a pause; it re-lists when its resourceVersion is gone.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closed) void w.informer.start();
      }, retryMs);
      timers.add(timer);
    });
    watches.push(w);
  }

  // The accepted snapshot's version: 1 for the first, +1 for each accepted change.
  let version = 0;
  let current: ConfigSnapshot = createSnapshot(0, []);
  let problems: ConfigProblem[] = [];
  let started = false;

  const build = ():
    { ok: true; snapshot: ConfigSnapshot } | { ok: false; problems: ConfigProblem[] } => {
    const manifests: Manifest[] = [];
    for (const w of watches)
      for (const o of w.informer.list()) {
        const ns = o.metadata?.namespace;
        const file = `${server}${basePath(w.kind, w.version)}${ns === undefined ? '' : `/namespaces/${ns}`}/${w.kind.plural}/${o.metadata?.name ?? ''}`;
        manifests.push({ file, index: 0, object: asManifestObject(w.kind, w.version, o) });
      }
    const result = validateManifests(manifests);
    if (!result.ok) return result;
    return { ok: true, snapshot: createSnapshot(version + 1, result.objects) };
  };

  const rebuild = (): void => {
    if (closed) return;
    const result = build();
    if (!result.ok) {
      problems = result.problems;
      for (const problem of problems)
        logger.error(
          { file: problem.file, object: problem.object, issues: problem.issues },
          `config change rejected: ${formatProblem(problem)}`,
        );
      return;
    }
    problems = [];
    version += 1;
    current = result.snapshot;
    logger.info({ version, objects: current.objects.size }, 'config accepted');
    options.onSnapshot(current);
  };

  const debounced = createDebouncer(rebuild, {
    ...(options.debounceMs === undefined ? {} : { afterMs: options.debounceMs }),
    ...(options.debounceMaxMs === undefined ? {} : { maxMs: options.debounceMaxMs }),
  });

  const stopAll = (): void => {
    closed = true;
    debounced.cancel();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const w of watches) void w.informer.stop();
  };

  // First sync: every informer listed (its start() resolves once the watch is open).
  let deadline: NodeJS.Timeout | undefined;
  const synced = await Promise.race([
    Promise.all(watches.map((w) => w.informer.start())).then(() => {
      const pending = watches.filter((w) => !w.listed);
      return pending.length === 0 ? true : pending;
    }),
    new Promise<'timeout'>((resolve) => {
      deadline = setTimeout(() => {
        resolve('timeout');
      }, syncTimeoutMs);
    }),
  ]);
  clearTimeout(deadline);
  if (synced !== true) {
    stopAll();
    const reason =
      synced === 'timeout'
        ? `not listed within ${String(syncTimeoutMs / 1000)} s`
        : `cannot list ${synced.map((w) => w.kind.plural).join(', ')}`;
    throw new PalisadeError(
      'PAL_ERR_CONTROL_CONFIG_API',
      `cannot read the API at ${server}: ${reason}${firstError instanceof Error ? `: ${firstError.message}` : ''}`,
      { cause: firstError },
    );
  }
  const first = build();
  if (!first.ok) {
    stopAll();
    throw new PalisadeError(
      'PAL_ERR_CONTROL_CONFIG_INVALID',
      `config in ${server} rejected:\n  ${first.problems.map(formatProblem).join('\n  ')}`,
    );
  }
  current = first.snapshot;
  version = current.version;
  started = true;
  options.onSnapshot(current);

  return {
    origin: server,
    watched: watches.map(
      (w) => `${basePath(w.kind, w.version).replace(/^\/apis?\//, '')} ${w.kind.kind}`,
    ),
    get current() {
      return current;
    },
    get problems() {
      return problems;
    },
    close: stopAll,
  };
}
