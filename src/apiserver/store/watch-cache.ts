/**
 * One etcd watch shared by every API watch of a store, fanned out in
 * process — what kube-apiserver's watch cache (the "cacher",
 * k8s.io/apiserver storage/cacher) does so that N `kubectl get -w` cost one
 * etcd watch, not N. Before it, each API watch opened its own etcd watch;
 * the etcd3 client creates watchers one at a time on its stream, so with
 * hundreds of watchers an event reached the last of them only after every
 * watcher had been created (the 1,000-watcher bench never finished).
 *
 * The shared watch starts at the first subscriber's revision and keeps the
 * last {@link HISTORY} events, so a later subscriber starting at or after the
 * window's start is served from memory (replay, then live); one starting
 * before it gets a watch of its own (which ends with Gone when etcd has
 * compacted that revision). When the shared watch fails, every subscriber
 * gets the error and the next watch starts a new one.
 */
import { StoreError, type StoreEvent, type StoreWatch } from './types.js';

/** Events kept for subscribers that start behind the newest revision (the embedded store keeps as many). */
export const HISTORY = 10_000;

interface Subscriber {
  readonly prefix: string;
  readonly after: number;
  readonly onEvent: (e: StoreEvent) => void;
  readonly onError: ((e: StoreError) => void) | undefined;
}

/** The shared source: a watch on the whole store from `afterRevision`, delivering in revision order. */
export type SharedSource = (
  afterRevision: number,
  onEvents: (events: readonly StoreEvent[]) => void,
  onError: (e: StoreError) => void,
) => { cancel(): void };

/** A separate watch for a subscriber the cache cannot serve. */
export type OwnWatch = (
  prefix: string,
  afterRevision: number,
  onEvent: (e: StoreEvent) => void,
  onError?: (e: StoreError) => void,
) => StoreWatch;

export class WatchCache {
  readonly #source: SharedSource;
  readonly #own: OwnWatch;
  #shared: { cancel(): void } | undefined;
  /** Every event with a revision above this one is in `#events` (or not yet received). */
  #windowStart = 0;
  #events: StoreEvent[] = [];
  readonly #subscribers = new Set<Subscriber>();

  constructor(source: SharedSource, own: OwnWatch) {
    this.#source = source;
    this.#own = own;
  }

  watch(
    prefix: string,
    afterRevision: number,
    onEvent: (e: StoreEvent) => void,
    onError?: (e: StoreError) => void,
  ): StoreWatch {
    if (this.#shared === undefined) this.#start(afterRevision);
    else if (afterRevision < this.#windowStart)
      return this.#own(prefix, afterRevision, onEvent, onError);
    const sub: Subscriber = { prefix, after: afterRevision, onEvent, onError };
    for (const e of this.#events)
      if (e.revision > afterRevision && e.key.startsWith(prefix)) onEvent(e);
    this.#subscribers.add(sub);
    return {
      cancel: () => {
        this.#subscribers.delete(sub);
      },
    };
  }

  close(): void {
    this.#subscribers.clear();
    this.#shared?.cancel();
    this.#shared = undefined;
    this.#events = [];
  }

  #start(afterRevision: number): void {
    this.#windowStart = afterRevision;
    this.#events = [];
    const shared = this.#source(
      afterRevision,
      (events) => {
        if (this.#shared !== shared) return;
        for (const e of events) {
          this.#events.push(e);
          for (const s of this.#subscribers)
            if (e.revision > s.after && e.key.startsWith(s.prefix)) s.onEvent(e);
        }
        const excess = this.#events.length - HISTORY;
        if (excess > 0) {
          this.#windowStart = this.#events[excess - 1]?.revision ?? this.#windowStart;
          this.#events = this.#events.slice(excess);
        }
      },
      (err) => {
        if (this.#shared !== shared) return;
        const subs = [...this.#subscribers];
        this.close();
        for (const s of subs) s.onError?.(err);
      },
    );
    this.#shared = shared;
  }
}
