/**
 * The storage interface of the API server, shaped like etcd's key-value model
 * as kube-apiserver uses it (k8s.io/apiserver/pkg/storage.Interface): one
 * global, strictly increasing revision; every object carries the revision of
 * its last write (its `metadata.resourceVersion`); conditional update and
 * delete on that revision; watch from a revision with "410 Gone" when the
 * history no longer reaches back that far. Every backend passes the same
 * conformance suite (test/apiserver/store-conformance.ts).
 */

/** A Kubernetes object as stored (JSON). */
export type KubeObject = Record<string, unknown> & {
  metadata?: Record<string, unknown>;
};

/** An object read back from a store, stamped with its revision. */
export interface StoredObject {
  readonly key: string;
  /** The object with `metadata.resourceVersion` set to `String(revision)`. */
  readonly object: KubeObject;
  /** The revision of the object's last write (etcd's mod_revision). */
  readonly revision: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, in revision order. */
export interface StoreEvent {
  readonly type: WatchEventType;
  readonly key: string;
  /** For DELETED: the last state, stamped with the delete's revision (as kube-apiserver does). */
  readonly object: KubeObject;
  readonly revision: number;
}

export interface StoreWatch {
  /** Stops delivery; idempotent. */
  cancel(): void;
}

export type StoreErrorReason = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Gone' | 'Unavailable';

/** A storage failure the API maps to a Kubernetes Status (404, 409, 410, 503). */
export class StoreError extends Error {
  readonly reason: StoreErrorReason;
  readonly key: string;
  constructor(reason: StoreErrorReason, key: string, message?: string) {
    super(message ?? `${reason}: ${key}`);
    this.name = 'StoreError';
    this.reason = reason;
    this.key = key;
  }
}

/** A storage backend. Keys are `/registry/...` paths; prefixes end in `/`. */
export interface ObjectStore {
  /** `embedded` or `etcd`. */
  readonly kind: string;
  get(key: string): Promise<StoredObject | undefined>;
  /** Every object under `prefix`, sorted by key, and the revision the list is consistent at. */
  list(prefix: string): Promise<{ items: StoredObject[]; revision: number }>;
  /** Creates; `AlreadyExists` when the key holds an object. */
  create(key: string, object: KubeObject): Promise<StoredObject>;
  /**
   * Replaces; `NotFound` when absent, `Conflict` when `expectedRevision` is
   * given and differs from the stored object's revision (optimistic locking).
   */
  update(key: string, object: KubeObject, expectedRevision?: number): Promise<StoredObject>;
  /** Deletes and returns the last state; `NotFound`, or `Conflict` as for update. */
  delete(key: string, expectedRevision?: number): Promise<StoredObject>;
  /**
   * Delivers every change under `prefix` with a revision greater than
   * `afterRevision`, in order, then every later change as it happens.
   * When that history has been compacted away it throws `Gone`, or (a
   * backend that learns it later) calls `onError` with `Gone`; a broken
   * connection is `onError` with `Unavailable`. After `onError` nothing more
   * is delivered.
   */
  watch(
    prefix: string,
    afterRevision: number,
    onEvent: (e: StoreEvent) => void,
    onError?: (e: StoreError) => void,
  ): StoreWatch;
  /** The newest revision. */
  currentRevision(): Promise<number>;
  close(): Promise<void>;
}

/** Returns a copy of `object` with `metadata.resourceVersion` set to the revision. */
export function stampRevision(object: KubeObject, revision: number): KubeObject {
  const metadata = { ...(object.metadata ?? {}), resourceVersion: String(revision) };
  return { ...object, metadata };
}

/** The object without `metadata.resourceVersion` (the store keeps revisions, not copies of them). */
export function stripRevision(object: KubeObject): KubeObject {
  if (object.metadata === undefined) return object;
  const { resourceVersion: _rv, ...metadata } = object.metadata;
  return { ...object, metadata };
}
