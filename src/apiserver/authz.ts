/**
 * Authorization: members of `system:masters` are allowed everything (the
 * privileged-group authorizer kube-apiserver puts before RBAC), then RBAC —
 * the same engine `palisade auth can-i` uses — over the roles and bindings
 * in the store, rebuilt when a watch on the RBAC group reports a change.
 */
import {
  clusterObjectsFrom,
  createRbacAuthorizer,
  type PolicyRule,
  type RbacAuthorizer,
  type RequestAttributes,
} from '../kubernetes/index.js';
import type { ObjectStore, StoreWatch } from './store/types.js';

const RBAC_PREFIX = '/registry/rbac.authorization.k8s.io/';

export interface Authorizer {
  authorize(
    attrs: RequestAttributes,
  ): Promise<{ allowed: boolean; denied?: boolean; reason: string }>;
  rulesFor(
    user: { name: string; groups: readonly string[] },
    namespace: string,
  ): Promise<PolicyRule[]>;
  close(): void;
  /** Rule lists leave out what a mode that cannot list rules (Webhook) may allow. */
  readonly rulesIncomplete?: boolean;
}

export async function createStoreAuthorizer(store: ObjectStore): Promise<Authorizer> {
  let engine: RbacAuthorizer | undefined;
  let building: Promise<RbacAuthorizer> | undefined;
  let generation = 0;
  const rebuild = async (): Promise<RbacAuthorizer> => {
    const started = generation;
    const { items } = await store.list(RBAC_PREFIX);
    const objects = clusterObjectsFrom(
      items.map((i) => ({ file: i.key, index: 0, object: i.object })),
      { validatePods: false },
    );
    const built = createRbacAuthorizer({ roles: objects.roles, bindings: objects.bindings });
    if (started === generation) engine = built;
    return built;
  };
  const current = async (): Promise<RbacAuthorizer> => {
    if (engine !== undefined) return engine;
    building ??= rebuild().finally(() => {
      building = undefined;
    });
    return building;
  };
  let watch: StoreWatch | undefined;
  const startWatch = async (): Promise<void> => {
    const rev = await store.currentRevision();
    watch = store.watch(RBAC_PREFIX, rev, () => {
      generation++;
      engine = undefined;
    });
  };
  await startWatch();
  return {
    async authorize(attrs) {
      if (attrs.user.groups.includes('system:masters')) return { allowed: true, reason: '' };
      return (await current()).authorize(attrs);
    },
    async rulesFor(user, namespace) {
      return (await current()).rulesFor({ name: user.name, groups: user.groups }, namespace);
    },
    close() {
      watch?.cancel();
    },
  };
}
