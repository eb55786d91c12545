/**
 * The embedded store: an append-only, fsync'd log of JSON records plus an
 * in-memory index, compacted by an atomic rewrite.
 *
 * Why this design: Node 20 has no `node:sqlite`, and `better-sqlite3` needs a
 * native build that this project's install (no install scripts) cannot run;
 * sql.js would rewrite the whole database file on every commit. The API
 * server's data is small (config objects) and its access pattern is etcd's —
 * whole-object puts and deletes under one global revision — so a write-ahead
 * log that is the database is both the simplest durable design and the one
 * whose crash behaviour is easy to state:
 *
 *  - A write is acknowledged only after its record is written and
 *    `fdatasync`ed (writes arriving together share one sync: group commit).
 *  - A crash mid-write leaves at most a torn last line, which the next start
 *    drops (that write was never acknowledged). A bad line anywhere else is
 *    corruption and the store refuses to open, naming the file and line.
 *  - Compaction writes the live objects to `store.log.tmp`, syncs it, renames
 *    it over `store.log` and syncs the directory, so a crash leaves either the
 *    old log or the new one.
 *  - A `store.lock` file holding the owner's PID keeps two servers off one
 *    directory.
 *
 * Watch history is kept in memory (the last `historyLimit` events); a watch
 * from an older revision, or from before a restart, gets `Gone` (410), and
 * clients re-list, as with a compacted etcd.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
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

export interface EmbeddedStoreOptions {
  /** Directory for `store.log`; undefined keeps everything in memory (tests, benches). */
  readonly dir?: string;
  /** Watch events kept for resuming watches (default 10,000). */
  readonly historyLimit?: number;
  /** Compact once the log holds this many records and twice the live objects (default 10,000). */
  readonly compactAfter?: number;
}

interface Entry {
  readonly object: KubeObject;
  readonly revision: number;
}

interface Pending {
  readonly line: string;
  readonly event: StoreEvent;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

interface Watcher {
  readonly prefix: string;
  readonly onEvent: (e: StoreEvent) => void;
  active: boolean;
}

const LOG = 'store.log';
const LOCK = 'store.lock';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function takeLock(dir: string): string {
  const path = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return path;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        throw new PalisadeError(
          'PAL_ERR_FILE_READ',
          `${dir}: the store is in use by process ${owner} (${path})`,
        );
      }
      unlinkSync(path);
    }
  }
  throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: could not take the store lock`);
}

/** Opens (or creates) the embedded store. */
export async function openEmbeddedStore(options: EmbeddedStoreOptions = {}): Promise<ObjectStore> {
  const store = new EmbeddedStore(options);
  await store.open();
  return store;
}

class EmbeddedStore implements ObjectStore {
  readonly kind = 'embedded';
  readonly #dir: string | undefined;
  readonly #historyLimit: number;
  readonly #compactAfter: number;
  /** Committed (durable) objects. */
  readonly #data = new Map<string, Entry>();
  /** Writes assigned a revision but not yet durable; `null` object for a pending delete. */
  readonly #overlay = new Map<string, { object: KubeObject | null; revision: number }>();
  /** Newest revision assigned (may include writes still being synced). */
  #rev = 0;
  readonly #history: StoreEvent[] = [];
  /** A watch must start at or after this revision. */
  #oldestWatchable = 0;
  readonly #watchers = new Set<Watcher>();
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #log: FileHandle | undefined;
  #logRecords = 0;
  #lockPath: string | undefined;
  #failed: Error | undefined;
  #closed = false;

  constructor(options: EmbeddedStoreOptions) {
    this.#dir = options.dir;
    this.#historyLimit = options.historyLimit ?? 10_000;
    this.#compactAfter = options.compactAfter ?? 10_000;
  }

  async open(): Promise<void> {
    if (this.#dir === undefined) return;
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#lockPath = takeLock(this.#dir);
    const path = join(this.#dir, LOG);
    if (existsSync(path)) this.#load(path);
    this.#oldestWatchable = this.#rev;
    this.#log = await open(path, 'a', 0o600);
  }

  #load(path: string): void {
    const text = readFileSync(path, 'utf8');
    let offset = 0;
    let lineNo = 0;
    while (offset < text.length) {
      const nl = text.indexOf('\n', offset);
      lineNo++;
      if (nl === -1) {
        // A torn final record: the write it belonged to was never acknowledged.
        truncateSync(path, Buffer.byteLength(text.slice(0, offset)));
        break;
      }
      const line = text.slice(offset, nl);
      offset = nl + 1;
      let rec: { r?: unknown; k?: unknown; v?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        if (offset >= text.length) {
          truncateSync(path, Buffer.byteLength(text.slice(0, offset - line.length - 1)));
          break;
        }
        throw new PalisadeError('PAL_ERR_FILE_READ', `${path}:${lineNo}: corrupt store record`);
      }
      if (typeof rec.r !== 'number' || !Number.isSafeInteger(rec.r) || rec.r < 0) {
        throw new PalisadeError(
          'PAL_ERR_FILE_READ',
          `${path}:${lineNo}: bad revision in store record`,
        );
      }
      // A compacted log lists live objects (older revisions) after its header.
      this.#rev = Math.max(this.#rev, rec.r);
      this.#logRecords++;
      if (rec.k === undefined) continue; // compaction header
      if (typeof rec.k !== 'string')
        throw new PalisadeError('PAL_ERR_FILE_READ', `${path}:${lineNo}: bad key in store record`);
      if (rec.v === null) this.#data.delete(rec.k);
      else if (typeof rec.v === 'object' && !Array.isArray(rec.v))
        this.#data.set(rec.k, { object: rec.v as KubeObject, revision: rec.r });
      else
        throw new PalisadeError(
          'PAL_ERR_FILE_READ',
          `${path}:${lineNo}: bad value in store record`,
        );
    }
  }

  #check(): void {
    if (this.#closed) throw new StoreError('Unavailable', '', 'the store is closed');
    if (this.#failed !== undefined)
      throw new StoreError('Unavailable', '', `the store failed: ${this.#failed.message}`);
  }

  #stored(key: string, e: Entry): StoredObject {
    return { key, object: stampRevision(e.object, e.revision), revision: e.revision };
  }

  /** The newest state of a key, pending writes included. */
  #lookup(key: string): Entry | undefined {
    const o = this.#overlay.get(key);
    if (o !== undefined)
      return o.object === null ? undefined : { object: o.object, revision: o.revision };
    return this.#data.get(key);
  }

  get(key: string): Promise<StoredObject | undefined> {
    this.#check();
    const e = this.#lookup(key);
    return Promise.resolve(e === undefined ? undefined : this.#stored(key, e));
  }

  list(prefix: string): Promise<{ items: StoredObject[]; revision: number }> {
    this.#check();
    const items: StoredObject[] = [];
    for (const [key, e] of this.#data) {
      if (!key.startsWith(prefix) || this.#overlay.has(key)) continue;
      items.push(this.#stored(key, e));
    }
    for (const [key, o] of this.#overlay) {
      if (key.startsWith(prefix) && o.object !== null)
        items.push(this.#stored(key, { object: o.object, revision: o.revision }));
    }
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return Promise.resolve({ items, revision: this.#rev });
  }

  currentRevision(): Promise<number> {
    return Promise.resolve(this.#rev);
  }

  create(key: string, object: KubeObject): Promise<StoredObject> {
    this.#check();
    if (this.#lookup(key) !== undefined)
      return Promise.reject(new StoreError('AlreadyExists', key));
    return this.#write(key, stripRevision(object), 'ADDED');
  }

  update(key: string, object: KubeObject, expectedRevision?: number): Promise<StoredObject> {
    this.#check();
    const cur = this.#lookup(key);
    if (cur === undefined) return Promise.reject(new StoreError('NotFound', key));
    if (expectedRevision !== undefined && cur.revision !== expectedRevision)
      return Promise.reject(new StoreError('Conflict', key));
    return this.#write(key, stripRevision(object), 'MODIFIED');
  }

  delete(key: string, expectedRevision?: number): Promise<StoredObject> {
    this.#check();
    const cur = this.#lookup(key);
    if (cur === undefined) return Promise.reject(new StoreError('NotFound', key));
    if (expectedRevision !== undefined && cur.revision !== expectedRevision)
      return Promise.reject(new StoreError('Conflict', key));
    return this.#write(key, cur.object, 'DELETED');
  }

  /** Makes a write visible now; acknowledges it (and tells watchers) once it is durable. */
  #write(key: string, object: KubeObject, type: StoreEvent['type']): Promise<StoredObject> {
    const revision = ++this.#rev;
    this.#overlay.set(key, { object: type === 'DELETED' ? null : object, revision });
    const stored: StoredObject = { key, object: stampRevision(object, revision), revision };
    const event: StoreEvent = { type, key, object: stored.object, revision };
    const line = `${JSON.stringify({ r: revision, k: key, v: type === 'DELETED' ? null : object })}\n`;
    return new Promise<StoredObject>((resolve, reject) => {
      this.#pending.push({
        line,
        event,
        resolve: () => {
          resolve(stored);
        },
        reject,
      });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        // Let writes issued in the same turn join this batch.
        await new Promise<void>((r) => setImmediate(r));
        const batch = this.#pending;
        this.#pending = [];
        try {
          if (this.#log !== undefined) {
            await this.#log.write(batch.map((p) => p.line).join(''));
            await this.#log.datasync();
            this.#logRecords += batch.length;
          }
        } catch (e) {
          // The index already holds writes the disk does not: stop serving (fail-stop).
          this.#failed = e instanceof Error ? e : new Error(String(e));
          const err = new StoreError(
            'Unavailable',
            '',
            `store write failed: ${this.#failed.message}`,
          );
          for (const p of [...batch, ...this.#pending]) p.reject(err);
          this.#pending = [];
          return;
        }
        for (const p of batch) {
          const { key, revision, type } = p.event;
          if (type === 'DELETED') this.#data.delete(key);
          else this.#data.set(key, { object: stripRevision(p.event.object), revision });
          if (this.#overlay.get(key)?.revision === revision) this.#overlay.delete(key);
          this.#publish(p.event);
          p.resolve();
        }
        if (
          this.#log !== undefined &&
          this.#logRecords > this.#compactAfter &&
          this.#logRecords > 2 * this.#data.size
        ) {
          await this.#compact();
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #compact(): Promise<void> {
    const dir = this.#dir;
    if (dir === undefined || this.#log === undefined) return;
    const path = join(dir, LOG);
    const tmp = `${path}.tmp`;
    // #data holds only durable writes; pending ones are appended to the new log by the next batch.
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const committed = this.#rev - this.#pending.length;
      writeSync(fd, `${JSON.stringify({ r: committed })}\n`);
      let records = 1;
      for (const [k, e] of this.#data) {
        writeSync(fd, `${JSON.stringify({ r: e.revision, k, v: e.object })}\n`);
        records++;
      }
      fsyncSync(fd);
      closeSync(fd);
      await this.#log.close();
      renameSync(tmp, path);
      const dfd = openSync(dir, 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
      this.#log = await open(path, 'a', 0o600);
      this.#logRecords = records;
    } catch (e) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      throw e;
    }
  }

  #publish(event: StoreEvent): void {
    this.#history.push(event);
    if (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.shift();
      if (dropped !== undefined) this.#oldestWatchable = dropped.revision;
    }
    for (const w of this.#watchers) {
      if (w.active && event.key.startsWith(w.prefix)) w.onEvent(event);
    }
  }

  watch(prefix: string, afterRevision: number, onEvent: (e: StoreEvent) => void): StoreWatch {
    this.#check();
    if (afterRevision < this.#oldestWatchable) {
      throw new StoreError(
        'Gone',
        prefix,
        `too old resource version: ${afterRevision} (${this.#oldestWatchable})`,
      );
    }
    const w: Watcher = { prefix, onEvent, active: true };
    // Replay the retained history, then go live; #publish runs on a later turn, so nothing is missed.
    for (const e of this.#history) {
      if (e.revision > afterRevision && e.key.startsWith(prefix)) onEvent(e);
    }
    this.#watchers.add(w);
    return {
      cancel: () => {
        w.active = false;
        this.#watchers.delete(w);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#flushing !== undefined) await this.#flushing;
    this.#closed = true;
    for (const w of this.#watchers) w.active = false;
    this.#watchers.clear();
    await this.#log?.close();
    this.#log = undefined;
    if (this.#lockPath !== undefined && existsSync(this.#lockPath)) unlinkSync(this.#lockPath);
  }
}
