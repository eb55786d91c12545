/**
 * `palisade up --apiserver`: the mesh's config lives in an API server
 * (`palisade apiserver`, embedded store in `<state>/apiserver`) in front of
 * the control plane, which watches it (`palisade control --kubeconfig`).
 * Here: load the mesh's objects into it once it serves, and write the admin
 * kubeconfig to `<state>/kubeconfig` for kubectl and `palisade apply`.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigSnapshot } from '../control/index.js';
import { PalisadeError } from '../errors/index.js';
import { meshApiClient, replyMessage } from './mesh-api.js';

/** Namespaces the API server creates itself. */
const BUILT_IN_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);

/**
 * Waits (bounded by `deadline`) for the API server's admin kubeconfig and for
 * it to answer, copies the kubeconfig to `<stateDir>/kubeconfig`, then
 * server-side-applies every object of `snapshot`: namespaces first (the
 * NamespaceLifecycle admission refuses objects in a namespace that does not
 * exist; namespaces objects use but do not declare are created), then the
 * rest. Objects applied earlier (the store is durable) are kept.
 */
export async function loadMeshIntoApiServer(options: {
  readonly dataDir: string;
  readonly stateDir: string;
  readonly snapshot: ConfigSnapshot;
  readonly deadline: number;
  readonly failed: () => readonly string[];
}): Promise<string> {
  const admin = join(options.dataDir, 'admin.kubeconfig');
  const kubeconfig = join(options.stateDir, 'kubeconfig');
  for (;;) {
    if (existsSync(admin)) {
      try {
        const reply = await meshApiClient(admin, 2000).call('GET', '/version');
        if (reply.status === 200) break;
      } catch {
        /* not serving yet */
      }
    }
    const failed = options.failed();
    if (failed.length > 0 || Date.now() > options.deadline)
      throw new PalisadeError(
        'PAL_ERR_RUNTIME_NOT_READY',
        `the API server did not become ready; see ${join(options.stateDir, 'logs', 'apiserver.log')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
  copyFileSync(admin, kubeconfig);
  const api = meshApiClient(kubeconfig);
  const objects = [...options.snapshot.objects.values()];
  const declared = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.name));
  const implied = new Set(
    objects
      .map((o) => o.namespace)
      .filter((ns) => ns !== '' && !declared.has(ns) && !BUILT_IN_NAMESPACES.has(ns)),
  );
  const load = async (resource: unknown, what: string): Promise<void> => {
    const reply = await api.apply(resource);
    if (reply.status !== 200 && reply.status !== 201)
      throw new PalisadeError(
        'PAL_ERR_RUNTIME_NOT_READY',
        `the API server refused ${what}: ${replyMessage(reply)}`,
      );
  };
  for (const ns of implied)
    await load({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, `Namespace ${ns}`);
  const namespacesFirst = [
    ...objects.filter((o) => o.kind === 'Namespace'),
    ...objects.filter((o) => o.kind !== 'Namespace'),
  ];
  // A few at a time: the store serialises writes anyway, and this bounds the sockets.
  for (let i = 0; i < namespacesFirst.length; i += 8)
    await Promise.all(
      namespacesFirst
        .slice(i, i + 8)
        .map((o) => load(o.resource, `${o.kind} ${o.namespace}/${o.name}`)),
    );
  return kubeconfig;
}
