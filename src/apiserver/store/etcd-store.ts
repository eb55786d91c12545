/**
 * The etcd store (`--store etcd --etcd-endpoints …`), laid out as
 * kube-apiserver lays out its data (k8s.io/apiserver storage/etcd3): one key
 * per object under `/registry/…`, the object's resourceVersion is the key's
 * `mod_revision`, creates are transactions on `create_revision == 0`,
 * conditional updates and deletes on `mod_revision == expected`, and watches
 * start at `revision + 1`; a compacted revision ends the watch with Gone.
 * Through the `etcd3` client (gRPC), TLS when credentials are given.
 */
import { Etcd3, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import {
  stampRevision,
  stripRevision,
  StoreError,
  type KubeObject,
  type ObjectStore,
  type StoreEvent,
  type StoredObject,
  type StoreWatch,
} from './types.js';
import { WatchCache } from './watch-cache.js';

export interface EtcdStoreOptions {
  /** `http://127.0.0.1:2379`, … */
  readonly endpoints: readonly string[];
  /** Client TLS (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`). */
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** Key prefix (`--etcd-prefix`, default `/registry` is already in every key). */
  readonly prefix?: string;
}

function unavailable(e: unknown): StoreError {
  return new StoreError('Unavailable', '', `etcd: ${e instanceof Error ? e.message : String(e)}`);
}

function decode(kv: IKeyValue, key: string): StoredObject {
  const revision = Number(kv.mod_revision);
  const object = JSON.parse(kv.value.toString('utf8')) as KubeObject;
  return { key, object: stampRevision(object, revision), revision };
}

/** Connects to etcd. */
export function openEtcdStore(options: EtcdStoreOptions): Promise<ObjectStore> {
  const client = new Etcd3({
    hosts: [...options.endpoints],
    dialTimeout: 5000,
    ...(options.tls === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: options.tls.ca,
            ...(options.tls.key === undefined ? {} : { privateKey: options.tls.key }),
            ...(options.tls.cert === undefined ? {} : { certChain: options.tls.cert }),
          },
        }),
  });
  return Promise.resolve(new EtcdStore(client, options.prefix ?? ''));
}

class EtcdStore implements ObjectStore {
  readonly kind = 'etcd';
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #watchers = new Set<Watcher>();
  /** Every API watch shares one etcd watch on the whole store (watch-cache.ts). */
  readonly #cache = new WatchCache(
    (after, onEvents, onError) => this.#etcdWatch('/', after, onEvents, onError),
    (prefix, after, onEvent, onError) =>
      this.#etcdWatch(
        prefix,
        after,
        (events) => {
          for (const e of events) onEvent(e);
        },
        onError,
      ),
  );

  constructor(client: Etcd3, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  #k(key: string): string {
    return `${this.#prefix}${key}`;
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw unavailable(e);
    }
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const res = await this.#call(() => this.#client.get(this.#k(key)).exec());
    const kv = res.kvs[0];
    return kv === undefined ? undefined : decode(kv, key);
  }

  async list(prefix: string): Promise<{ items: StoredObject[]; revision: number }> {
    const res = await this.#call(() =>
      this.#client.getAll().prefix(this.#k(prefix)).sort('Key', 'Ascend').exec(),
    );
    const items = res.kvs.map((kv) =>
      decode(kv, kv.key.toString('utf8').slice(this.#prefix.length)),
    );
    return { items, revision: Number(res.header.revision) };
  }

  async currentRevision(): Promise<number> {
    const res = await this.#call(() => this.#client.get('/registry/.revision').exec());
    return Number(res.header.revision);
  }

  async create(key: string, object: KubeObject): Promise<StoredObject> {
    const value = JSON.stringify(stripRevision(object));
    const res = await this.#call(() =>
      this.#client
        .if(this.#k(key), 'Create', '==', 0)
        .then(this.#client.put(this.#k(key)).value(value))
        .commit(),
    );
    if (!res.succeeded) throw new StoreError('AlreadyExists', key);
    const revision = Number(res.header.revision);
    return { key, object: stampRevision(stripRevision(object), revision), revision };
  }

  async update(key: string, object: KubeObject, expectedRevision?: number): Promise<StoredObject> {
    const value = JSON.stringify(stripRevision(object));
    const k = this.#k(key);
    const res = await this.#call(() =>
      (expectedRevision === undefined
        ? this.#client.if(k, 'Create', '>', 0)
        : this.#client.if(k, 'Mod', '==', expectedRevision)
      )
        .then(this.#client.put(k).value(value))
        .else(this.#client.get(k))
        .commit(),
    );
    if (!res.succeeded) {
      const exists = (res.responses[0]?.response_range.kvs.length ?? 0) > 0;
      throw new StoreError(exists ? 'Conflict' : 'NotFound', key);
    }
    const revision = Number(res.header.revision);
    return { key, object: stampRevision(stripRevision(object), revision), revision };
  }

  async delete(key: string, expectedRevision?: number): Promise<StoredObject> {
    // Read, then delete only that revision (so the returned state is the one deleted).
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.get(key);
      if (cur === undefined) throw new StoreError('NotFound', key);
      if (expectedRevision !== undefined && cur.revision !== expectedRevision)
        throw new StoreError('Conflict', key);
      const res = await this.#call(() =>
        this.#client
          .if(this.#k(key), 'Mod', '==', cur.revision)
          .then(this.#client.delete().key(this.#k(key)))
          .commit(),
      );
      if (res.succeeded) {
        const revision = Number(res.header.revision);
        return { key, object: stampRevision(stripRevision(cur.object), revision), revision };
      }
    }
    throw new StoreError('Conflict', key);
  }

  watch(
    prefix: string,
    afterRevision: number,
    onEvent: (e: StoreEvent) => void,
    onError?: (e: StoreError) => void,
  ): StoreWatch {
    return this.#cache.watch(prefix, afterRevision, onEvent, onError);
  }

  /** Store events of one etcd watch response, in order (DELETED carries the last state). */
  #events(res: IWatchResponse): StoreEvent[] {
    const out: StoreEvent[] = [];
    for (const ev of res.events) {
      const key = ev.kv.key.toString('utf8').slice(this.#prefix.length);
      const revision = Number(ev.kv.mod_revision);
      if (ev.type === 'Delete') {
        const prevKv = ev.prev_kv as IKeyValue | undefined;
        if (prevKv === undefined) continue;
        const prev = JSON.parse(prevKv.value.toString('utf8')) as KubeObject;
        out.push({ type: 'DELETED', key, object: stampRevision(prev, revision), revision });
      } else {
        const object = JSON.parse(ev.kv.value.toString('utf8')) as KubeObject;
        const type = ev.kv.create_revision === ev.kv.mod_revision ? 'ADDED' : 'MODIFIED';
        out.push({ type, key, object: stampRevision(object, revision), revision });
      }
    }
    return out;
  }

  /** One etcd watch on `prefix` from `afterRevision + 1`; a compacted start ends it with Gone. */
  #etcdWatch(
    prefix: string,
    afterRevision: number,
    onEvents: (e: readonly StoreEvent[]) => void,
    onError?: (e: StoreError) => void,
  ): StoreWatch {
    let cancelled = false;
    const fail = (e: unknown): void => {
      if (cancelled) return;
      const msg = e instanceof Error ? e.message : String(e);
      // etcd cancels a watch whose start revision was compacted (compact_revision set, often no reason).
      const err = /compacted|Watcher canceled/.test(msg)
        ? new StoreError('Gone', prefix, `too old resource version: ${afterRevision}`)
        : unavailable(e);
      onError?.(err);
    };
    // watcher() attaches at once, so no event or error can arrive before the handlers.
    const w = this.#client
      .watch()
      .prefix(this.#k(prefix))
      .startRevision(String(afterRevision + 1))
      .withPreviousKV()
      .watcher();
    this.#watchers.add(w);
    w.on('error', (e: unknown) => {
      this.#watchers.delete(w);
      fail(e);
      cancelled = true;
    });
    w.on('data', (res: IWatchResponse) => {
      if (!cancelled) onEvents(this.#events(res));
    });
    return {
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        this.#watchers.delete(w);
        void w.cancel().catch(() => undefined);
      },
    };
  }

  close(): Promise<void> {
    this.#cache.close();
    // Closing the client ends every watch stream; a cancel round-trip per watcher is not needed.
    this.#watchers.clear();
    this.#client.close();
    return Promise.resolve();
  }
}
